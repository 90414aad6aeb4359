package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmesh/wasmesh/modules"
)

// optionalFloat is a fraction flag (0 to 1) whose default depends on
// other flags: its usage states it, and it prints none of its own while
// unset.
type optionalFloat struct {
	v   float64
	set bool
}

func (f *optionalFloat) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatFloat(f.v, 'g', -1, 64)
}

func (f *optionalFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil:
		return errors.New("want a number")
	case !(v >= 0 && v <= 1):
		return errors.New("want a fraction from 0 to 1")
	}
	f.v, f.set = v, true
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("wasmesh "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on -h and on every bad flag; the flags
	// are printed for -h only (flagError), the error alone otherwise.
	fs.Usage = func() {}
	usageLines.Store(fs, "usage: wasmesh "+name+" "+args)
	return fs
}

// usageLines are the FlagSets' usage lines, for -h.
var usageLines sync.Map // *flag.FlagSet → string

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
	if errors.Is(err, flag.ErrHelp) { // asked for: the flags, on stdout
		line, _ := usageLines.Load(fs)
		fmt.Fprintln(os.Stdout, line)
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return &exitError{code: 0, err: errors.New("")}
	}
	msg := err.Error()
	if m := badValue.FindStringSubmatch(msg); m != nil {
		if f := fs.Lookup(m[1]); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case time.Duration:
					msg += ": want a duration such as 500ms, 5s or 1m30s"
				case int, int64, uint, uint64:
					msg += ": want a whole number"
				}
			}
		}
	} else if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		if near := nearestFlag(fs, m[1]); near != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", near)
		}
	}
	return usageError("%s (see 'wasmesh %s -h')", msg, strings.TrimPrefix(fs.Name(), "wasmesh "))
}

var (
	badValue      = regexp.MustCompile(`^invalid value ".*" for flag -(\S+): `)
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -(\S+)$`)
)

// nearestFlag is the flag of fs whose name is within two edits of name
// (the closest), "" if none is.
func nearestFlag(fs *flag.FlagSet, name string) string {
	best, bestDist := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(name, f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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
