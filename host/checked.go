package host

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
)

// checkedModules records the core modules of components that
// wasmbin.Resettable has accepted, by the sha256 of their bytes, so that
// linking the same component again (a restart, a reload, a validation)
// does not read megabytes of code again: in memory, and as empty files in
// the compilation cache's directory, which is trusted as the compiled code
// beside them is.
type checkedModules struct {
	dir string // "": in memory only
	mu  sync.Mutex
	m   map[[sha256.Size]byte]bool
}

func newCheckedModules(cacheDir string) *checkedModules {
	c := &checkedModules{m: map[[sha256.Size]byte]bool{}}
	if cacheDir != "" {
		c.dir = filepath.Join(cacheDir, "wasmesh-resettable")
	}
	return c
}

func (c *checkedModules) Known(sum [sha256.Size]byte) bool {
	c.mu.Lock()
	known := c.m[sum]
	c.mu.Unlock()
	if known || c.dir == "" {
		return known
	}
	_, err := os.Stat(filepath.Join(c.dir, hex.EncodeToString(sum[:])))
	return err == nil
}

func (c *checkedModules) Record(sum [sha256.Size]byte) {
	c.mu.Lock()
	c.m[sum] = true
	c.mu.Unlock()
	if c.dir == "" {
		return
	}
	// A record that cannot be written costs the next process a read of
	// the code, nothing else.
	if os.MkdirAll(c.dir, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(c.dir, hex.EncodeToString(sum[:])), nil, 0o644)
	}
}
