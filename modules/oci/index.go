package oci

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/modules"
)

// The index maps pulled manifests to the modules they hold, one file per
// manifest under the store's root: oci/sha256/<64 hex> holding the module's
// "sha256:<64 hex>". A manifest digest names its content for ever, so an
// entry never goes stale; it is ignored when its module has been removed.

func indexPath(store *modules.Store, manifest string) (string, bool) {
	d, err := digest.Parse(manifest)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", false
	}
	return filepath.Join(store.Dir(), "oci", "sha256", d.Encoded()), true
}

// Cached returns the module a manifest digest was pulled as, when the index
// has it and the module is still in the store.
func Cached(store *modules.Store, manifest string) (module string, ok bool) {
	path, ok := indexPath(store, manifest)
	if !ok {
		return "", false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	module = strings.TrimSpace(string(data))
	if got, err := store.Resolve(module); err != nil || got != module {
		return "", false
	}
	return module, true
}

// record writes an index entry.
func record(store *modules.Store, manifest, module string) error {
	path, _ := indexPath(store, manifest)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(module+"\n"), 0o644, filepath.Join(store.Dir(), "tmp"))
}
