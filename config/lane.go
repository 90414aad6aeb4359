package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Defaults of a lane's eviction (Lane.Evict).
const (
	DefaultEvictErrorRate   = 0.2
	DefaultEvictWindow      = 30 * time.Second
	DefaultEvictMinRequests = 20
)

// Lane is a traffic lane: a set of versions, at most one per service, that
// a request entering the lane is served by on every hop of its path, in
// this gateway and in those it calls.
type Lane struct {
	Name string
	// Strict makes a service without a version in the lane (or whose lane
	// version is evicted) answer 503 naming the lane and the service.
	// Default false (permissive): such a service serves the request as it
	// serves one outside any lane.
	Strict bool
	// Versions names, by service, the lane's version of that service: the
	// version's name, or a digest prefix of a version given by module
	// ("sha256:" and at least 8 hex digits), as written. Default none: an
	// edge gateway puts requests in a lane that only the gateways it calls
	// have versions in.
	Versions map[string]string
	// Entry are the rules by which a request without a lane enters this
	// one at the edge; any rule suffices. Default none: only a lane carried
	// by a trusted peer (Config.LanePeers) leads into it.
	Entry []LaneEntry
	// Evict takes a lane version out of the lane when it fails.
	Evict Evict
	// Line is where the lane's name is in the file.
	Line int

	col      int
	versions map[string]pos // of Versions' values
}

// LaneEntry is one entry rule of a lane, written "header: NAME=VALUE",
// "cookie: NAME=VALUE" or "{share: PERCENT, key: header:NAME|cookie:NAME}".
type LaneEntry struct {
	// Kind is "header", "cookie" or "share".
	Kind string
	// Name and Value: a request whose header (or cookie) Name has the value
	// Value enters the lane.
	Name, Value string
	// Share is the percentage (0 < Share <= 100) of the values of Key that
	// enter the lane, chosen by hashing the value with the lane's name: the
	// same on every service, replica and restart.
	Share float64
	Key   Sticky
}

// Evict is when a lane's version of a service is taken out of the lane:
// when, over the last Window, at least MinRequests of the lane's requests
// reached it and more than ErrorRate of them failed (5xx: guest faults,
// timeouts, overload; never a client's fault). An evicted version stays
// out until an operator admits it again.
type Evict struct {
	// Off disables eviction ("evict: off").
	Off bool
	// ErrorRate is a fraction in (0, 1]. Default 0.2.
	ErrorRate float64
	// Window is the span the rate is measured over. Default 30s.
	Window time.Duration
	// MinRequests is how many requests the window must hold before the
	// rate counts. Default 20.
	MinRequests int
}

var (
	laneFields      = []string{"mode", "versions", "entry", "evict"}
	laneEntryFields = []string{"header", "cookie", "share", "key"}
	evictFields     = []string{"error_rate", "window", "min_requests"}
)

// LaneBaggageKey is the W3C baggage member that carries a request's lane
// between services and gateways.
const LaneBaggageKey = "wasmesh-lane"

// LaneNames returns the names of c's lanes, sorted.
func (c *Config) LaneNames() []string { return slices.Sorted(maps.Keys(c.Lanes)) }

func defaultEvict() Evict {
	return Evict{ErrorRate: DefaultEvictErrorRate, Window: DefaultEvictWindow, MinRequests: DefaultEvictMinRequests}
}

func (d *decoder) lane(name string, k, v *yaml.Node) *Lane {
	path := "lanes." + name
	l := &Lane{Name: name, Versions: map[string]string{}, Evict: defaultEvict(), Line: k.Line, col: k.Column, versions: map[string]pos{}}
	d.check(!ValidName(name), k, "lanes", "invalid lane name %q: want letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63 long", name)
	d.fields(v, path, laneFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "mode":
			if s, ok := d.str(v, f); ok && d.check(s != "strict" && s != "permissive", v, f, `must be "permissive" or "strict", got %q`, s) {
				l.Strict = s == "strict"
			}
		case "versions":
			d.pairs(v, f, func(svc string, _, v *yaml.Node) {
				if ref, ok := d.str(v, join(f, svc)); ok {
					l.Versions[svc], l.versions[svc] = ref, posOf(deref(v))
				}
			})
		case "entry":
			items, _ := d.list(v, f)
			for i, item := range items {
				if e, ok := d.laneEntry(item, fmt.Sprintf("%s[%d]", f, i)); ok {
					l.Entry = append(l.Entry, e)
				}
			}
		case "evict":
			l.Evict = d.evict(v, f)
		}
	})
	return l
}

// laneEntry decodes one entry rule.
func (d *decoder) laneEntry(n *yaml.Node, path string) (LaneEntry, bool) {
	var e LaneEntry
	if m := deref(n); m == nil || m.Kind != yaml.MappingNode {
		d.errorf(n, path, `must be a mapping ("header: NAME=VALUE", "cookie: NAME=VALUE" or "share: PERCENT" with "key"), got %s`, describe(m))
		return e, false
	}
	ok, kinds := true, 0
	var keyNode *yaml.Node
	d.fields(n, path, laneEntryFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "header", "cookie":
			kinds++
			e.Kind = key
			s, _ := d.str(v, f)
			name, value, found := strings.Cut(s, "=")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			ok = d.check(!found || !isToken(name) || value == "", v, f, "must be NAME=VALUE, got %q", s) && ok
			e.Name, e.Value = name, value
		case "share":
			kinds++
			e.Kind = key
			s, _ := d.str(v, f)
			pct, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
			ok = d.check(err != nil || !(pct > 0 && pct <= 100), v, f, "must be a percentage above 0 and at most 100, got %q", s) && ok
			e.Share = pct
		case "key":
			keyNode = v
			if spec, sok := d.str(v, f); sok {
				e.Key = d.sticky(v, f, spec)
			}
		}
	})
	switch {
	case kinds != 1:
		d.errorf(n, path, "set exactly one of header, cookie or share")
		return e, false
	case e.Kind == "share" && keyNode == nil:
		d.errorf(n, path, `share needs a key ("header:NAME" or "cookie:NAME") whose value is hashed`)
		return e, false
	case e.Kind != "share" && keyNode != nil:
		d.errorf(keyNode, join(path, "key"), "goes with share only")
		return e, false
	}
	return e, ok && (e.Kind != "share" || e.Key.Kind != "")
}

// evict decodes "evict: off" or its settings.
func (d *decoder) evict(n *yaml.Node, path string) Evict {
	e := defaultEvict()
	if m := deref(n); m != nil && m.Kind == yaml.ScalarNode {
		s, _ := d.str(n, path)
		d.check(s != "off", n, path, `must be "off" or a mapping (error_rate, window, min_requests), got %q`, s)
		return Evict{Off: true}
	}
	d.fields(n, path, evictFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "error_rate":
			s, _ := d.str(v, f)
			r, err := ParseFraction(s)
			if d.check(err != nil || !(r > 0 && r <= 1), v, f, `must be a fraction in (0, 1] or a percentage ("20%%"), got %q`, s) {
				e.ErrorRate = r
			}
		case "window":
			d.durationAtLeast(v, f, time.Second, &e.Window)
		case "min_requests":
			if m, ok := d.integer(v, f); ok && d.check(m < 1, v, f, "must be at least 1, got %d", m) {
				e.MinRequests = m
			}
		}
	})
	return e
}

// checkLanes validates the lanes' references to services and versions,
// and lane_peers.
func (d *decoder) checkLanes(c *Config) {
	switch {
	case len(c.LanePeers) > 0 && c.TLS == nil:
		d.errorAt(d.lanePeers.line, d.lanePeers.col, "lane_peers", "needs a tls block: without mTLS no peer has an identity")
	case len(c.LanePeers) > 0 && c.TLS.ClientAuth == "none":
		d.errorAt(d.lanePeers.line, d.lanePeers.col, "lane_peers", `needs client certificates: tls.client_auth is "none", so no peer has an identity ("request" or "require")`)
	}
	for _, name := range c.ServiceNames() {
		if r := c.Services[name].Release; r != nil && r.Lane != "" && c.Lanes[r.Lane] == nil {
			d.errorAt(r.lane.line, r.lane.col, "services."+name+".release.lane", "unknown lane %q%s", r.Lane, suggest(r.Lane, c.LaneNames()))
		}
	}
	for _, name := range c.LaneNames() {
		l := c.Lanes[name]
		for _, svcName := range slices.Sorted(maps.Keys(l.Versions)) {
			at, f := l.versions[svcName], fmt.Sprintf("lanes.%s.versions.%s", name, svcName)
			s := c.Services[svcName]
			if s == nil {
				d.errorAt(at.line, at.col, f, "unknown service %q%s", svcName, suggest(svcName, c.ServiceNames()))
				continue
			}
			if _, err := s.LaneVersion(l.Versions[svcName]); err != nil {
				d.errorAt(at.line, at.col, f, "%v", err)
			}
		}
	}
}

// LaneVersion finds the version of s that ref names in a lane: by name, or
// by a digest prefix of its module ("sha256:" and 8 or more hex digits).
// Once the config's digests are resolved (WithDigests), a prefix also
// matches a version given by path.
func (s *Service) LaneVersion(ref string) (*Version, error) {
	for _, v := range s.Versions {
		if v.Name != "" && v.Name == ref {
			return v, nil
		}
	}
	if validModule(ref) {
		var found *Version
		for _, v := range s.Versions {
			if strings.HasPrefix(v.Module, ref) || (v.Digest != "" && strings.HasPrefix(v.Digest, ref)) || (v.Module != "" && strings.HasPrefix(ref, v.Module)) {
				if found != nil && found != v {
					return nil, fmt.Errorf("%q matches more than one version of service %q", ref, s.Name)
				}
				found = v
			}
		}
		if found != nil {
			return found, nil
		}
	}
	var names []string
	for _, v := range s.Versions {
		if v.Name != "" {
			names = append(names, v.Name)
		}
	}
	return nil, fmt.Errorf("service %q has no version %q: a lane names a version by its name or a digest prefix of its module%s", s.Name, ref, suggest(ref, names))
}

// ParseFraction parses a fraction ("0.2") or a percentage ("20%").
func ParseFraction(s string) (float64, error) {
	t := strings.TrimSpace(s)
	r, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if strings.HasSuffix(t, "%") {
		r /= 100
	}
	return r, err
}
