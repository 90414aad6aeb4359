// Package atomicfile replaces files so that readers see the old content or
// the new, never a part: write a temporary file, fsync it, rename it over the
// target, fsync the directory.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data and mode perm. The temporary file is made
// in tmpDir, which must be on the same file system; "" means path's own
// directory. A crash leaves at most a stray temporary file there.
func WriteFile(path string, data []byte, perm fs.FileMode, tmpDir string) error {
	s, err := Stage(path, data, perm, tmpDir)
	if err != nil {
		return err
	}
	return s.Commit()
}

// Staged is a replacement of a file written and synced, not yet in place.
type Staged struct{ path, tmp string }

// Stage does what WriteFile does but the rename: the temporary file made
// and synced, for Commit to put in place or Abort to remove. A write that
// cannot be made (a read-only directory, a full disk) fails here, before
// anything is done that depends on it.
func Stage(path string, data []byte, perm fs.FileMode, tmpDir string) (*Staged, error) {
	dir := filepath.Dir(path)
	if tmpDir == "" {
		tmpDir = dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &Staged{path: path, tmp: f.Name()}, nil
}

// Commit renames the staged file over its path and syncs the directory.
// The temporary file is removed if the rename fails.
func (s *Staged) Commit() error {
	if err := os.Rename(s.tmp, s.path); err != nil {
		os.Remove(s.tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Abort removes the staged file.
func (s *Staged) Abort() { os.Remove(s.tmp) }
