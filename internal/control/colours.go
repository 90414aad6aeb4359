package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/dataplane"
)

// Each (service, version) gets the lowest free colour when it first appears
// in a config, kept in <store>/colours.json so that it stays the same
// across loads and restarts while the version exists; a colour is freed
// when its version leaves the config.

// ColourFile is where a store keeps the colour table.
const ColourFile = "colours.json"

// assignColours gives every version of cfg a colour, keeping those already
// assigned, and returns the table with save, which saves it (nil when the
// file holds it already): a synced write, which a load makes once the new
// config serves. Versions beyond MaxColour get none (0), with a warning. A
// table that cannot be read or saved is a warning too: the colours serve
// from memory, and stay the same across restarts only while the file can
// be. c.mu held, by save too.
func (c *Controller) assignColours(cfg *config.Config) (table map[string]bpf.Colour, save func()) {
	path := filepath.Join(cfg.Store, ColourFile)
	old, saved, err := c.colours.read(path)
	if err != nil {
		c.log.Warn("the colour table could not be read: colours are given anew", "file", path, "error", err)
		old, saved = map[string]bpf.Colour{}, false
	}
	var keys []string
	for _, s := range cfg.Services {
		for _, v := range s.Versions {
			keys = append(keys, dataplane.ColourKey(s.Name, v.Digest))
		}
	}
	sort.Strings(keys)
	maxColour := c.opts.MaxColour
	table = make(map[string]bpf.Colour, len(keys))
	used := map[bpf.Colour]bool{}
	keep := func(k string, col bpf.Colour) {
		if _, done := table[k]; !done && col != 0 && col <= maxColour && !used[col] {
			table[k], used[col] = col, true
		}
	}
	// The colours serving first: a file removed, corrupt, not saved or
	// another store's recolours no version that stays (its connections'
	// packets, its counters); then the file's (across restarts), a
	// colour given twice there kept by the first key only.
	if st := c.plane.Snapshot(); st != nil {
		for _, k := range keys {
			keep(k, st.Colours[k])
		}
	}
	for _, k := range keys {
		keep(k, old[k])
	}
	next := bpf.Colour(1)
	for _, k := range keys {
		if _, ok := table[k]; ok {
			continue
		}
		for used[next] {
			next++
		}
		if next > maxColour {
			c.log.Warn("no colour left for a version: its packets are not coloured", "version", k, "max", maxColour)
			continue
		}
		table[k], used[next] = next, true
	}
	if saved && maps.Equal(table, old) {
		stamp := c.colours.stamp // the file's as read from the cache (a miss leaves it zero)
		if !stamp.known() {
			stamp = statPath(path)
		}
		c.colours = savedColours{path: path, stamp: stamp, table: table}
		return table, nil
	}
	c.colours = savedColours{} // the file no longer holds the table in use
	return table, func() {
		out, _ := json.MarshalIndent(table, "", "  ")
		if err := atomicfile.WriteFile(path, append(out, '\n'), 0o644, filepath.Join(cfg.Store, "tmp")); err != nil {
			// The table serves from memory: a store that cannot be
			// written (read-only, full) costs the colours' stability
			// across restarts, not the load.
			c.log.Warn("the colour table could not be saved: this process keeps it, a restart may colour versions otherwise", "file", path, "error", err)
			return
		}
		c.colours = savedColours{path: path, stamp: statPath(path), table: table}
	}
}

// savedColours is a colour table as a load saved it, and its file's stamp
// then: while the file has the same stamp, it holds that table.
type savedColours struct {
	path  string
	stamp pathStamp
	table map[string]bpf.Colour
}

// read is the table in the file at path: sc's when the file is as sc
// saved it, else read; an empty table, not saved, when there is no file.
func (sc *savedColours) read(path string) (table map[string]bpf.Colour, saved bool, err error) {
	if sc.table != nil && sc.path == path && statPath(path).same(sc.stamp) {
		return sc.table, true, nil
	}
	*sc = savedColours{}
	table = map[string]bpf.Colour{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &table); err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return table, true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}
	return table, false, nil
}
