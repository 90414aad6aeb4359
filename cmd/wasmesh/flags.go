package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmesh/wasmesh/modules"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("wasmesh "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: wasmesh %s %s\n", name, args)
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses flags anywhere among the arguments ("sign DIGEST --key K"),
// returning the positional ones. "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(fs, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseUntilPositional parses flags up to the first positional argument and
// returns it with everything after it untouched (for `run`, whose trailing
// arguments belong to the guest).
func parseUntilPositional(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		return nil, flagError(fs, err)
	}
	return fs.Args(), nil
}

func flagError(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) { // the flag package has printed the usage
		return &exitError{code: 0, err: errors.New("")}
	}
	return usageError("%v (see 'wasmesh %s -h')", err, strings.TrimPrefix(fs.Name(), "wasmesh "))
}

// storeFlag registers --store.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", modules.DefaultDir(), "content-addressed store directory: $WASMESH_HOME/store when WASMESH_HOME is set, else .wasmesh/store")
}

// outputFlag registers -o with the formats allowed, the first the default.
func outputFlag(fs *flag.FlagSet, formats ...string) *string {
	out := formats[0]
	fs.Func("o", "output format: "+strings.Join(formats, " or ")+" (default "+formats[0]+")", func(v string) error {
		for _, f := range formats {
			if v == f {
				out = v
				return nil
			}
		}
		return fmt.Errorf("want %s, got %q", strings.Join(formats, " or "), v)
	})
	return &out
}

// defaultCacheDir is where wazero's compilation cache lives by default.
func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "wasmesh-cache")
	}
	return filepath.Join(dir, "wasmesh", "wazero")
}
