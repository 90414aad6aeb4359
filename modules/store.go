package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// MaxModuleSize is the largest module Put accepts: 256 MiB.
const MaxModuleSize = 256 << 20

// ErrNotFound is wrapped by errors for a digest that is not in the store.
var ErrNotFound = errors.New("artifact not found")

// Options configure a Store.
type Options struct {
	// Validate checks a module before it is stored, typically by compiling it
	// (host.Engine.Validate). Default nil: only the binary's header and
	// sections are checked.
	Validate func(ctx context.Context, wasm []byte) error
}

// Store is a content-addressed store rooted at a directory. It is safe for
// concurrent use by goroutines and by processes.
type Store struct {
	root string
	opts Options
}

// DefaultDir is the store used when none is named: $WASMESH_HOME/store when
// WASMESH_HOME is set, else ".wasmesh/store".
func DefaultDir() string {
	if home := os.Getenv("WASMESH_HOME"); home != "" {
		return filepath.Join(home, "store")
	}
	return filepath.Join(".wasmesh", "store")
}

// Open opens the store at dir, creating it if needed.
func Open(dir string, opts Options) (*Store, error) {
	for _, sub := range []string{"blobs/sha256", "tmp", "signatures", "refs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	return &Store{root: dir, opts: opts}, nil
}

// ErrNoStore is OpenExisting's error when dir holds no store.
var ErrNoStore = errors.New("no store")

// OpenExisting opens the store at dir as Open does, for a command that only
// reads or removes: a directory that holds no store is ErrNoStore (saying
// where), not made (a mistyped --store would list an empty store).
func OpenExisting(dir string, opts Options) (*Store, error) {
	if fi, err := os.Stat(filepath.Join(dir, "blobs")); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w at %s (one is made by the first push, pull or serve; --store or $WASMESH_HOME names another)", ErrNoStore, dir)
	}
	return Open(dir, opts)
}

// Dir returns the store's root directory.
func (s *Store) Dir() string { return s.root }

func (s *Store) blobPath(hexDigest string) string {
	return filepath.Join(s.root, "blobs", "sha256", hexDigest[:2], hexDigest)
}

// ReadFile reads the module file at path: at most MaxModuleSize bytes,
// refused past them without reading them (a `path:` that names a
// multi-gigabyte file, or a blob replaced by a link to /dev/zero, would
// take the gateway's memory).
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	tooLarge := &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("more than the %d bytes a module may have", MaxModuleSize)}
	if size > MaxModuleSize {
		return nil, tooLarge
	}
	var wasm []byte
	if size >= 0 {
		// Its size, read once into as much (a file that grew since its
		// stat is read no further than the limit: one byte more says so).
		wasm = make([]byte, size)
		n, err := io.ReadFull(f, wasm)
		if err != nil && err != io.ErrUnexpectedEOF {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		wasm = wasm[:n]
		if n == len(wasm) {
			rest, err := io.ReadAll(io.LimitReader(f, MaxModuleSize+1-int64(n)))
			if err != nil {
				return nil, &fs.PathError{Op: "read", Path: path, Err: err}
			}
			wasm = append(wasm, rest...)
		}
	} else if wasm, err = io.ReadAll(io.LimitReader(f, MaxModuleSize+1)); err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(wasm) > MaxModuleSize {
		return nil, tooLarge
	}
	return wasm, nil
}

// Put reads a module from r, validates it, and stores it under its digest,
// which it returns. Storing bytes already present is a no-op (they were
// validated when first stored). Nothing is left in the store when
// validation or the policy refuses the module.
func (s *Store) Put(ctx context.Context, r io.Reader) (string, error) {
	wasm, err := io.ReadAll(io.LimitReader(r, MaxModuleSize+1))
	if err != nil {
		return "", fmt.Errorf("read module: %w", err)
	}
	return s.PutBytes(ctx, wasm)
}

// PutBytes is Put of a module already in memory, which it does not copy
// (a 13 MB component read through Put's reader was copied as it grew).
func (s *Store) PutBytes(ctx context.Context, wasm []byte) (string, error) {
	if len(wasm) > MaxModuleSize {
		return "", fmt.Errorf("module is larger than %d bytes", MaxModuleSize)
	}
	digest := DigestOf(wasm)
	if err := s.checkPolicy(digest); err != nil {
		return "", err
	}
	h := strings.TrimPrefix(digest, Prefix)
	dst := s.blobPath(h)
	if stored, err := ReadFile(dst); err == nil && bytes.Equal(stored, wasm) {
		return digest, nil // stored, so checked, before: the same bytes
	}
	// Not stored, or stored corrupt (Get and Verify refuse it): the same
	// bytes again replace it.
	if err := Check(wasm); err != nil {
		return "", err
	}
	if s.opts.Validate != nil {
		if err := s.opts.Validate(ctx, wasm); err != nil {
			return "", err
		}
	}
	if err := writeAtomic(filepath.Join(s.root, "tmp"), dst, wasm, 0o444); err != nil {
		return "", fmt.Errorf("store %s: %w", digest, writeError{err})
	}
	return digest, nil
}

// ErrWrite is wrapped by the error of a put the store could not write
// (full, read-only): the store's failure, not the module's.
var ErrWrite = errors.New("the store could not be written")

// writeError is a write's error, which is ErrWrite too.
type writeError struct{ err error }

func (e writeError) Error() string   { return e.err.Error() }
func (e writeError) Unwrap() []error { return []error{e.err, ErrWrite} }

// Check decodes wasm as a put does before it compiles it: a core module's
// sections, or a component's, with an error that says where it is wrong.
func Check(wasm []byte) error {
	if component.IsComponent(wasm) {
		_, err := component.Decode(wasm)
		return err
	}
	_, err := wasmbin.Parse(wasm)
	return err
}

// writeAtomic writes data to dst through a temporary file in tmpDir.
func writeAtomic(tmpDir, dst string, data []byte, perm fs.FileMode) error {
	return atomicfile.WriteFile(dst, data, perm, tmpDir)
}

// Resolve turns a reference — "sha256:<hex>" or bare hex, full or a prefix of
// at least MinPrefix digits — into the full digest of a stored module. An
// ambiguous prefix is an error that lists the candidates.
func (s *Store) Resolve(ref string) (string, error) {
	h, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	if len(h) == 64 {
		if _, err := os.Stat(s.blobPath(h)); err != nil {
			return "", fmt.Errorf("%w: %s%s in %s", ErrNotFound, Prefix, h, s.root)
		}
		return Prefix + h, nil
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "blobs", "sha256", h[:2]))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var matches []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), h) && len(e.Name()) == 64 {
			matches = append(matches, Prefix+e.Name())
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w: no artifact matches %s in %s", ErrNotFound, ref, s.root)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("ambiguous digest %s: matches %s", ref, strings.Join(matches, ", "))
}

// Get returns the bytes of the module ref resolves to, checking that they
// still hash to its digest and, when the policy requires it, that the module
// is signed by a trusted key.
func (s *Store) Get(ref string) (digest string, wasm []byte, err error) {
	digest, err = s.Resolve(ref)
	if err != nil {
		return "", nil, err
	}
	wasm, err = ReadFile(s.blobPath(strings.TrimPrefix(digest, Prefix)))
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", digest, err)
	}
	if got := DigestOf(wasm); got != digest {
		return "", nil, fmt.Errorf("artifact %s is corrupt: its bytes hash to %s", digest, got)
	}
	if err := s.checkPolicy(digest); err != nil {
		return "", nil, err
	}
	return digest, wasm, nil
}

// Entry describes a stored module.
type Entry struct {
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	PushedAt time.Time `json:"pushed_at"`
	// Language is the source language, from the producers section where present.
	Language string `json:"language,omitempty"`
	// WASI is the WASI version the module imports ("preview1"), or the
	// highest a component names ("0.2.10"); "" for none.
	WASI string `json:"wasi,omitempty"`
	// Imports lists the modules a module imports functions from, or the
	// packages of a component's imports ("wasi:http@0.2.10").
	Imports []string `json:"imports"`
	Signed  bool     `json:"signed"`
}

// List describes every stored module, oldest push first.
func (s *Store) List() ([]Entry, error) {
	out := []Entry{}
	err := filepath.WalkDir(filepath.Join(s.root, "blobs", "sha256"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(d.Name()) != 64 {
			return err
		}
		if _, err := fullHex(Prefix + d.Name()); err != nil || path != s.blobPath(d.Name()) {
			return nil // not an artifact: a name that is no digest, or a file out of its place
		}
		e, err := s.entry(d.Name())
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].PushedAt.Equal(out[j].PushedAt) {
			return out[i].PushedAt.Before(out[j].PushedAt)
		}
		return out[i].Digest < out[j].Digest
	})
	return out, err
}

func (s *Store) entry(h string) (Entry, error) {
	path := s.blobPath(h)
	fi, err := os.Stat(path)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Digest: Prefix + h, Size: fi.Size(), PushedAt: fi.ModTime().UTC(), Imports: []string{}}
	if wasm, err := ReadFile(path); err == nil {
		if component.IsComponent(wasm) {
			if c, err := component.Decode(wasm); err == nil {
				w := c.World()
				e.WASI, e.Imports = w.WASI(), w.Packages()
			}
		} else if info, err := wasmbin.Parse(wasm); err == nil {
			e.Language, e.WASI, e.Imports = info.Language(), info.WASI(), info.ImportModules()
		}
	}
	sigs, _ := s.Signatures(Prefix + h) // those that hold a signature at all
	e.Signed = len(sigs) > 0
	return e, nil
}

// Inspection is what Inspect reports of a module or component.
type Inspection struct {
	Entry
	// Module describes a core module; nil for a component.
	Module *wasmbin.Info `json:"module"`
	// Component is a component's world; nil for a core module.
	Component *component.World `json:"component,omitempty"`
	// Reusable says whether a gateway can reset and reuse the module's
	// instances (wasmbin.Prepare); NotReusable says why not.
	Reusable    bool   `json:"reusable"`
	NotReusable string `json:"not_reusable,omitempty"`
}

// Inspect describes the module ref resolves to: its imports, exports, memory
// limits, custom sections and producers.
func (s *Store) Inspect(ref string) (*Inspection, error) {
	digest, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	h := strings.TrimPrefix(digest, Prefix)
	e, err := s.entry(h)
	if err != nil {
		return nil, err
	}
	wasm, err := ReadFile(s.blobPath(h))
	if err != nil {
		return nil, err
	}
	if component.IsComponent(wasm) {
		c, err := component.Decode(wasm)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", digest, err)
		}
		in := &Inspection{Entry: e, Component: c.World(), Reusable: true}
		for i, m := range c.Modules { // as the engine decides (component.LinkWith)
			if _, err := wasmbin.Resettable(m.Bytes); err != nil {
				in.Reusable, in.NotReusable = false, fmt.Sprintf("core module %d: %v", i, err)
				break
			}
		}
		return in, nil
	}
	info, err := wasmbin.Parse(wasm)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", digest, err)
	}
	in := &Inspection{Entry: e, Module: info, Reusable: true}
	if _, err := wasmbin.Prepare(wasm); err != nil {
		in.Reusable, in.NotReusable = false, err.Error()
	}
	return in, nil
}

// Remove deletes the module ref resolves to, and its signatures. It refuses
// while a ref file (see SetRefs) names the module, unless force is set.
func (s *Store) Remove(ref string, force bool) (string, error) {
	digest, err := s.Resolve(ref)
	if err != nil {
		return "", err
	}
	if owners := s.referrers(digest); len(owners) > 0 && !force {
		return "", fmt.Errorf("artifact %s is in use by %s", digest, strings.Join(owners, ", "))
	}
	h := strings.TrimPrefix(digest, Prefix)
	if err := os.Remove(s.blobPath(h)); err != nil {
		return "", err
	}
	return digest, os.RemoveAll(filepath.Join(s.root, "signatures", h))
}

// SetRefs records that owner (for example a gateway's config file) uses the
// given digests, so that Remove refuses to delete them. An empty list clears
// owner's references.
func (s *Store) SetRefs(owner string, digests []string) error {
	path := filepath.Join(s.root, "refs", refName(owner))
	if len(digests) == 0 {
		err := os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	data := owner + "\n" + strings.Join(digests, "\n") + "\n"
	if old, err := os.ReadFile(path); err == nil && string(old) == data {
		return nil // as recorded: a reload that changed no module writes nothing
	}
	return writeAtomic(filepath.Join(s.root, "tmp"), path, []byte(data), 0o644)
}

// refName makes a file name of an owner such as a config path.
func refName(owner string) string {
	return strings.TrimPrefix(DigestOf([]byte(owner)), Prefix)[:16]
}

func (s *Store) referrers(digest string) []string {
	entries, _ := os.ReadDir(filepath.Join(s.root, "refs"))
	var owners []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(s.root, "refs", e.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, l := range lines[1:] {
			if l == digest {
				owners = append(owners, lines[0])
				break
			}
		}
	}
	sort.Strings(owners)
	return owners
}

// Problem is something Verify found wrong.
type Problem struct {
	Digest string `json:"digest"`
	Err    string `json:"error"`
}

// Verify re-hashes every stored module and, when the policy requires
// signatures, checks them. It returns what it found wrong, or nothing.
func (s *Store) Verify() ([]Problem, error) {
	entries, err := s.List()
	if err != nil {
		return nil, err
	}
	var problems []Problem
	for _, e := range entries {
		wasm, err := ReadFile(s.blobPath(strings.TrimPrefix(e.Digest, Prefix)))
		if err == nil {
			if got := DigestOf(wasm); got != e.Digest {
				err = fmt.Errorf("corrupt: bytes hash to %s", got)
			} else {
				err = s.checkPolicy(e.Digest)
			}
		}
		if err != nil {
			problems = append(problems, Problem{Digest: e.Digest, Err: err.Error()})
		}
	}
	return problems, nil
}
