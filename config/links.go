package config

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// linkInterface is a WIT interface as links name it: namespace:package/
// interface, with an optional @version.
var linkInterface = regexp.MustCompile(`^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*(/[a-z][a-z0-9-]*)+(@[0-9][0-9A-Za-z.+-]*)?$`)

// links decodes a service's links: WIT interface to service name.
func (d *decoder) links(n *yaml.Node, path string) map[string]string {
	m := d.stringMap(n, path, identity)
	bases := map[string]string{}
	for _, iface := range slices.Sorted(maps.Keys(m)) {
		at := d.key(n, iface)
		d.check(!linkInterface.MatchString(iface), at, path, "%q is not a WIT interface (namespace:package/interface, optionally @version)", iface)
		d.check(!ValidName(m[iface]), at, join(path, iface), "%q is not a service name", m[iface])
		base, _, _ := strings.Cut(iface, "@")
		if other, dup := bases[base]; dup {
			d.errorf(at, path, "%q and %q both name %s: give one link per interface", other, iface, base)
		}
		bases[base] = iface
	}
	return m
}
