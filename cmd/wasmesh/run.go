package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/wasi"
)

func runCmd(ctx context.Context, args []string, _ io.Writer) error {
	fs := newFlags("run", "[flags] FILE.wasm|DIGEST [ARGS...]")
	var envs, dirs listFlag
	fs.Var(&envs, "env", "set a guest environment variable KEY=VALUE (repeatable)")
	inherit := fs.Bool("env-inherit", false, "pass the host's environment to the guest (default: none)")
	fs.Var(&dirs, "dir", "preopen HOST[:GUEST][:ro] for the guest; :ro refuses writes (repeatable)")
	timeout := fs.Duration("timeout", 0, "stop the guest after this long, exit status 124 (default: no limit)")
	memory := fs.String("memory", "", "cap the guest's memory, e.g. 64MiB (default: 4GiB)")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "wazero compilation cache directory")
	store := storeFlag(fs)
	rest, err := parseUntilPositional(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return usageError("nothing to run given: wasmesh run [flags] FILE.wasm|DIGEST [ARGS...]")
	}

	call := host.Call{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Timeout: *timeout}
	call.Args = append([]string{filepath.Base(rest[0])}, rest[1:]...)
	if *inherit {
		call.Env = os.Environ()
	}
	for _, kv := range envs {
		if _, _, err := wasi.ParseEnv(kv); err != nil {
			return usageError("--env: %v", err)
		}
		call.Env = append(call.Env, kv)
	}
	for _, d := range dirs {
		m, err := wasi.ParseMount(d)
		if err != nil {
			return usageError("--dir: %v", err)
		}
		if fi, err := os.Stat(m.HostPath); err != nil {
			return usageError("--dir %s: %v", d, unwrapPath(err))
		} else if !fi.IsDir() {
			return usageError("--dir %s: %s is not a directory", d, m.HostPath)
		}
		call.Mounts = append(call.Mounts, m)
	}
	if *memory != "" {
		if call.MemoryLimit, err = config.ParseSize(*memory); err != nil {
			return usageError("--memory: %v", err)
		}
		if m := call.MemoryLimit; m < 64<<10 || m > 4<<30 { // a page, and wasm32's 4 GiB, as the config's limits.memory
			return usageError("--memory %s: must be between 64KiB and 4GiB", *memory)
		}
	}
	if *timeout < 0 {
		return usageError("--timeout %s: must not be negative (leave it out for no limit)", *timeout)
	}

	eng, err := host.New(ctx, host.Options{CacheDir: *cacheDir})
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	digest, wasm, err := readArtifact(*store, rest[0])
	if err != nil {
		return exitWith(2, err)
	}
	start := time.Now()
	var res host.Result
	if component.IsComponent(wasm) {
		// A wasi:cli/command component: its wasi:cli/run export.
		res, err = eng.RunComponent(ctx, wasm, call)
	} else {
		mod, cerr := eng.Compile(ctx, digest, wasm)
		if cerr != nil {
			return exitWith(2, fmt.Errorf("%s: %w", rest[0], cerr))
		}
		res, err = eng.Run(ctx, mod, call)
	}
	if err := runExit(res, err, time.Since(start)); err != nil {
		var exit *exitError
		if errors.As(err, &exit) && exit.err.Error() != "" {
			exit.err = fmt.Errorf("%s: %w", rest[0], exit.err)
		}
		return err
	}
	return nil
}

// readArtifact reads a module or component named by a file path or, when
// no such file exists, by a digest (or prefix) in the store.
func readArtifact(storeDir, ref string) (digest string, wasm []byte, err error) {
	wasm, err = modules.ReadFile(ref)
	switch {
	case err == nil:
		return "", wasm, nil
	case errors.Is(err, fs.ErrNotExist) && modules.IsDigest(ref):
		s, err := modules.OpenExisting(storeDir, modules.Options{})
		if errors.Is(err, modules.ErrNoStore) {
			return "", nil, fmt.Errorf("%w: %s: %w", modules.ErrNotFound, ref, err)
		}
		if err != nil {
			return "", nil, err
		}
		return s.Get(ref)
	}
	return "", nil, fmt.Errorf("%s: %w", ref, unwrapPath(err))
}

// unwrapPath drops the "open X:" prefix of a path error, already named.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func runExit(res host.Result, err error, elapsed time.Duration) error {
	switch {
	case err == nil:
		if res.ExitCode != 0 {
			return &exitError{code: int(res.ExitCode & 0xff), err: errors.New("")}
		}
		return nil
	case errors.Is(err, host.ErrNoStart), errors.Is(err, host.ErrNotCommand), errors.Is(err, host.ErrMemoryLimit):
		return exitWith(2, err)
	case errors.Is(err, host.ErrDeadline):
		return exitWith(124, fmt.Errorf("timed out after %s: %w", elapsed.Round(time.Millisecond), err))
	case errors.Is(err, host.ErrCanceled):
		return exitWith(130, errors.New("interrupted"))
	}
	return exitWith(1, err)
}
