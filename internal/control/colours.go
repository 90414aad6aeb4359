package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
// assigned, and saves the table. Versions beyond MaxColour get none (0),
// with a warning.
func (c *Controller) assignColours(cfg *config.Config) (map[string]bpf.Colour, error) {
	path := filepath.Join(cfg.Store, ColourFile)
	old := map[string]bpf.Colour{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	var keys []string
	for _, s := range cfg.Services {
		for _, v := range s.Versions {
			keys = append(keys, dataplane.ColourKey(s.Name, v.Digest))
		}
	}
	sort.Strings(keys)
	maxColour := c.opts.MaxColour
	table, used := map[string]bpf.Colour{}, map[bpf.Colour]bool{}
	for _, k := range keys {
		if col, ok := old[k]; ok && col != 0 && col <= maxColour {
			table[k], used[col] = col, true
		}
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
	out, _ := json.MarshalIndent(table, "", "  ")
	if err := atomicfile.WriteFile(path, append(out, '\n'), 0o644, ""); err != nil {
		return nil, err
	}
	return table, nil
}
