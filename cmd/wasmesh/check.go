package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wasmesh/wasmesh/mesh"
)

// checkCmd loads a config file as serve's first load does, listening on
// nothing: what serve would refuse, check refuses with the same errors.
func checkCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("check", "--config FILE")
	configFile := fs.String("config", "wasmesh.yaml", "config file")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "wazero compilation cache directory (serve's: what check compiles, serve starts from)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	path, err := filepath.Abs(*configFile)
	if err != nil {
		return exitWith(2, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return exitWith(2, err)
	}
	// The load logs what serve's would (warnings about the config among
	// them); its refusal is the command's error, said once, not logged too.
	log := slog.New(belowError{slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})})
	g, err := mesh.New(ctx, mesh.Options{ConfigPath: path, CacheDir: *cacheDir, Logger: log, RecordNothing: true})
	if err != nil {
		return err
	}
	defer g.Close(context.Background())
	if err := g.Reload(ctx, data); err != nil {
		return exitWith(2, err)
	}
	cfg := g.Config()
	versions := 0
	for _, s := range cfg.Services {
		versions += len(s.Versions)
	}
	fmt.Fprintf(stdout, "%s: ok: %d services, %d versions, %d routes; every module compiled\n", *configFile, len(cfg.Services), versions, len(cfg.Routes))
	return nil
}

// belowError is a handler that drops records of level Error and above.
type belowError struct{ slog.Handler }

func (h belowError) Enabled(ctx context.Context, l slog.Level) bool {
	return l < slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h belowError) WithAttrs(attrs []slog.Attr) slog.Handler {
	return belowError{h.Handler.WithAttrs(attrs)}
}

func (h belowError) WithGroup(name string) slog.Handler { return belowError{h.Handler.WithGroup(name)} }
