package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// snapshotCache keeps the core modules of components as wasmbin.Resettable
// rewrote them, by the sha256 of their bytes as linked or of their
// component's digest and place (component.LinkOptions.Cache), in the compilation
// cache's directory (trusted as the compiled code beside it is), so that
// linking the same component again (a restart, a reload, a validation)
// does not read megabytes of code again: 150 ms for componentize-js's
// engine. Each entry is one file: a line of JSON (the Snapshot without its
// module), then the module.
type snapshotCache struct {
	dir string
}

// snapshotDir is the cache's directory under the compilation cache's; its
// name changes when what Resettable writes does.
const snapshotDir = "wasmesh-snapshots-v4"

// newSnapshotCache returns the cache in cacheDir, nil for none.
func newSnapshotCache(cacheDir string) *snapshotCache {
	if cacheDir == "" {
		return nil
	}
	return &snapshotCache{dir: filepath.Join(cacheDir, snapshotDir)}
}

type snapshotMeta struct {
	Globals     []string `json:"globals"`
	Stop        string   `json:"stop"`
	Unstoppable string   `json:"unstoppable"`
}

func (c *snapshotCache) Load(sum [sha256.Size]byte) (*wasmbin.Snapshot, bool) {
	b, err := os.ReadFile(filepath.Join(c.dir, hex.EncodeToString(sum[:])))
	if err != nil {
		return nil, false
	}
	line, module, ok := bytes.Cut(b, []byte("\n"))
	var meta snapshotMeta
	if !ok || json.Unmarshal(line, &meta) != nil {
		return nil, false // not one of ours: rewritten again, and overwritten
	}
	return &wasmbin.Snapshot{Module: module, Globals: meta.Globals, Stop: meta.Stop, Unstoppable: meta.Unstoppable}, true
}

func (c *snapshotCache) Store(sum [sha256.Size]byte, s *wasmbin.Snapshot) {
	line, err := json.Marshal(snapshotMeta{Globals: s.Globals, Stop: s.Stop, Unstoppable: s.Unstoppable})
	if err != nil {
		return
	}
	// An entry that cannot be written costs the next link a rewrite,
	// nothing else.
	b := append(append(line, '\n'), s.Module...)
	_ = atomicfile.WriteFile(filepath.Join(c.dir, hex.EncodeToString(sum[:])), b, 0o644, "")
}
