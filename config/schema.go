package config

import (
	"fmt"
	"maps"
	"math/bits"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wasmesh/wasmesh/internal/ociref"
)

// This file maps the YAML schema onto the Config types, field by field.

var (
	configFields   = []string{"listen", "admin", "health", "store", "drain_delay", "drain_timeout", "tls", "bpf", "http", "registries", "services", "routes", "lanes", "lane_peers", "trusted_proxies"}
	adminFields    = []string{"listen", "token_file", "allow_ids", "insecure"}
	httpFields     = []string{"max_request_line", "max_header_bytes", "max_headers", "max_head_memory", "max_body_memory", "send_timeout"}
	registryFields = []string{"plain_http"}
	bpfFields      = []string{"mode", "mark_mask", "cgroup"}
	tlsFields      = []string{"spiffe_socket", "svid", "key", "bundle", "client_auth"}
	serviceFields  = []string{"versions", "sticky", "pin_header", "limits", "env", "outbound", "allow_peers", "warmup", "release", "links"}
	outboundFields = []string{"url", "expect_id"}
	versionFields  = []string{"module", "path", "upstream", "name", "weight", "dscp"}
	limitsFields   = []string{"memory", "timeout", "max_body", "max_concurrency", "max_queue"}
	routeFields    = []string{"name", "match", "service", "strip_prefix"}
	matchFields    = []string{"host", "path", "path_prefix", "method", "headers"}
)

func (d *decoder) config(root *yaml.Node) *Config {
	c := &Config{
		Listen:       DefaultListen,
		Admin:        DefaultAdmin,
		DrainDelay:   DefaultDrainDelay,
		DrainTimeout: DefaultDrainTimeout,
		BPF:          BPF{Mode: "auto"},
		Registries:   map[string]Registry{},
		Services:     map[string]*Service{},
		Lanes:        map[string]*Lane{},
	}
	store := ""
	d.fields(root, "", configFields, func(key string, k, v *yaml.Node) {
		switch key {
		case "listen":
			c.Listen = d.addr(v, key, c.Listen)
		case "admin":
			c.Admin, c.AdminAuth = d.admin(v, key)
		case "health":
			c.Health = d.addr(v, key, "")
		case "store":
			store, _ = d.str(v, key)
			d.check(store == "", v, key, "must not be empty")
		case "drain_delay":
			c.DrainDelay, _ = d.duration(v, key)
		case "drain_timeout":
			c.DrainTimeout, _ = d.duration(v, key)
		case "tls":
			c.TLS = d.tls(v, key)
		case "bpf":
			c.BPF = d.bpf(v, key)
		case "http":
			c.HTTP = d.http(v, key)
		case "registries":
			d.pairs(v, key, func(name string, k, v *yaml.Node) {
				c.Registries[name] = d.registry(name, k, v)
			})
		case "services":
			d.pairs(v, key, func(name string, k, v *yaml.Node) {
				c.Services[name] = d.memo.service(d, name, k, v)
			})
		case "lanes":
			d.pairs(v, key, func(name string, k, v *yaml.Node) {
				c.Lanes[name] = d.lane(name, k, v)
			})
		case "lane_peers":
			d.lanePeers = posOf(deref(v))
			c.LanePeers = d.peerPatterns(v, key)
		case "trusted_proxies":
			c.TrustedProxies = d.prefixes(v, key)
		case "routes":
			items, _ := d.list(v, key)
			for i, n := range items {
				if r := d.memo.route(d, i, n); r != nil {
					c.Routes = append(c.Routes, r)
				}
			}
		}
	})
	c.names = slices.Sorted(maps.Keys(c.Services))
	c.Store = d.store(store)
	if a := &c.AdminAuth; a.TokenFile == "" && len(a.AllowIDs) == 0 && !a.Insecure {
		a.Generated, a.TokenFile = true, DefaultAdminTokenFile(c.Store)
	}
	d.crossCheck(c)
	d.checkLanes(c)
	return c
}

// store resolves the store directory from the file's value (may be "").
func (d *decoder) store(s string) string {
	if s == "" {
		if home := os.Getenv("WASMESH_HOME"); home != "" {
			return filepath.Join(home, "store")
		}
		s = DefaultStore
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(d.dir, s)
}

// addr decodes a listen address "host:port"; "off" gives "".
func (d *decoder) addr(n *yaml.Node, path, def string) string {
	s, ok := d.str(n, path)
	if !ok {
		return def
	}
	if s == "off" && path == "admin" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	_, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || strings.ContainsAny(host, " /") {
		hint := ""
		if path == "admin" {
			hint = ` or "off"`
		}
		d.errorf(deref(n), path, `must be an address like ":8080" or "127.0.0.1:9901"%s, got %q`, hint, s)
	}
	return s
}

// peerPatterns decodes a list of SPIFFE IDs and "spiffe://domain/*"
// patterns (allow_peers, admin.allow_ids).
func (d *decoder) peerPatterns(v *yaml.Node, path string) []string {
	var out []string
	items, _ := d.list(v, path)
	for i, item := range items {
		fi := fmt.Sprintf("%s[%d]", path, i)
		if p, ok := d.str(item, fi); ok {
			d.check(checkPeerPattern(p) != nil, item, fi, "%v", checkPeerPattern(p))
			out = append(out, p)
		}
	}
	return out
}

// prefixes decodes a list of IP addresses and CIDR prefixes.
func (d *decoder) prefixes(v *yaml.Node, path string) []netip.Prefix {
	var out []netip.Prefix
	items, _ := d.list(v, path)
	for i, item := range items {
		fi := fmt.Sprintf("%s[%d]", path, i)
		s, ok := d.str(item, fi)
		if !ok {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if d.check(err != nil, item, fi, "want an IP address or a CIDR prefix (10.0.0.0/8), got %q", s) {
			out = append(out, pfx.Masked())
		}
	}
	return out
}

// admin decodes the admin API's address ("off" for none) and its
// authentication, either as an address or as a mapping.
func (d *decoder) admin(n *yaml.Node, path string) (string, AdminAuth) {
	var auth AdminAuth
	addr := DefaultAdmin
	if deref(n).Kind != yaml.MappingNode {
		addr = d.addr(n, path, addr)
	} else {
		d.fields(n, path, adminFields, func(key string, _, v *yaml.Node) {
			f := join(path, key)
			switch key {
			case "listen":
				addr = d.addr(v, f, addr)
			case "token_file":
				if p, ok := d.str(v, f); ok && d.check(p == "", v, f, "must not be empty") {
					auth.TokenFile = d.relPath(p)
				}
			case "allow_ids":
				d.allowIDs = v
				auth.AllowIDs = d.peerPatterns(v, f)
			case "insecure":
				auth.Insecure, _ = d.boolean(v, f)
			}
		})
		if auth.Insecure && (auth.TokenFile != "" || len(auth.AllowIDs) > 0) {
			d.errorf(deref(n), path, "insecure with token_file or allow_ids: choose one (insecure lets every call in)")
		}
	}
	return addr, auth
}

func (d *decoder) service(name string, k, v *yaml.Node) *Service {
	path := "services." + name
	s := &Service{Name: name, PinHeader: true, Line: k.Line, col: k.Column, Limits: defaultLimits(), Env: map[string]string{}}
	d.check(!ValidName(name), k, "services", "invalid service name %q: want letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63 long", name)
	hasVersions := false
	var releaseNode *yaml.Node
	d.fields(v, path, serviceFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "versions":
			hasVersions = true
			s.Versions = d.versions(v, f)
		case "sticky":
			if spec, ok := d.str(v, f); ok {
				s.Sticky = d.sticky(v, f, spec)
			}
		case "pin_header":
			if b, ok := d.boolean(v, f); ok {
				s.PinHeader = b
			}
		case "limits":
			s.Limits = d.limits(v, f)
		case "env":
			s.Env = d.stringMap(v, f, identity)
			for _, k := range slices.Sorted(maps.Keys(s.Env)) {
				at := d.key(v, k)
				d.check(k == "" || strings.ContainsAny(k, "=\x00"), at, f, "invalid variable name %q", k)
				d.check(strings.HasPrefix(k, "HTTP_") || cgiNames[k], at, f, "%q is set by the gateway for each request (CGI); choose another name", k)
			}
		case "outbound":
			items, _ := d.list(v, f)
			for i, item := range items {
				if o, ok := d.outbound(item, fmt.Sprintf("%s[%d]", f, i)); ok {
					s.at(fmt.Sprintf("outbound[%d]", len(s.Outbound)), item)
					s.Outbound = append(s.Outbound, o)
				}
			}
		case "allow_peers":
			s.AllowPeers = d.peerPatterns(v, f)
			s.at("allow_peers", v)
		case "links":
			s.Links = d.links(v, f)
			for iface := range s.Links {
				s.at("links."+iface, d.key(v, iface))
			}
		case "release":
			s.Release = d.release(v, f)
			releaseNode = v
		case "warmup":
			if p, ok := d.str(v, f); ok {
				_, err := url.ParseRequestURI(p)
				d.check(err != nil || !strings.HasPrefix(p, "/"), v, f, "must be a path starting with /, got %q", p)
				s.Warmup = p
			}
		}
	})
	if !hasVersions {
		d.errorf(k, path, `missing field "versions"`)
	}
	d.weights(s, k)
	if releaseNode != nil {
		d.releaseVersion(s, releaseNode, join(path, "release"))
	}
	return s
}

// cgiNames are the variables the gateway sets per request (see wasi.RequestEnv).
var cgiNames = map[string]bool{
	"GATEWAY_INTERFACE": true, "REQUEST_METHOD": true, "PATH_INFO": true, "SCRIPT_NAME": true, "QUERY_STRING": true,
	"REQUEST_URI": true, "SERVER_NAME": true, "SERVER_PORT": true, "SERVER_PROTOCOL": true, "SERVER_SOFTWARE": true,
	"REMOTE_ADDR": true, "CONTENT_TYPE": true, "CONTENT_LENGTH": true, "X_MATCHED_ROUTE": true,
	"X_WASMESH_VERSION": true, "X_REQUEST_ID": true, "X_SPIFFE_PEER_ID": true, "X_WASMESH_LANE": true,
}

// outbound decodes an allow-list entry: a URL, or {url, expect_id}.
func (d *decoder) outbound(n *yaml.Node, path string) (Outbound, bool) {
	var o Outbound
	raw, rawNode := "", n
	if deref(n).Kind == yaml.MappingNode {
		d.fields(n, path, outboundFields, func(key string, _, v *yaml.Node) {
			switch key {
			case "url":
				raw, _ = d.str(v, join(path, key))
				rawNode = v
			case "expect_id":
				if id, ok := d.str(v, join(path, key)); ok {
					err := checkSpiffeID(id)
					d.check(err != nil, v, join(path, key), "%v", err)
					o.ExpectID = id
				}
			}
		})
		if raw == "" {
			d.errorf(n, path, `missing field "url"`)
			return o, false
		}
	} else if s, ok := d.str(n, path); ok {
		raw = s
	} else {
		return o, false
	}
	u, err := parseOutbound(raw)
	if !d.check(err != nil, rawNode, path, "%v", err) {
		return o, false
	}
	d.check(o.ExpectID != "" && u.Scheme != "https", n, path, "expect_id needs an https:// target, got %s", raw)
	o.URL = u
	return o, true
}

// http decodes the listener's limits on request heads: each a positive
// size (count for max_headers), within what a head can sensibly be; and
// the send timeout.
func (d *decoder) http(n *yaml.Node, path string) HTTP {
	var h HTTP
	d.fields(n, path, httpFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "max_headers":
			n, ok := d.integer(v, f)
			if d.check(ok && (n < 1 || n > 10000), v, f, "must be from 1 to 10000, got %d", n) && ok {
				h.MaxHeaders = n
			}
			return
		case "send_timeout":
			t, ok := d.duration(v, f)
			if d.check(ok && (t < 100*time.Millisecond || t > time.Hour), v, f, "must be from 100ms to 1h, got %s", t) && ok {
				h.SendTimeout = t
			}
			return
		}
		size, ok := d.size(v, f)
		if !ok {
			return
		}
		lo, hi := int64(256), int64(16<<20)
		if key == "max_head_memory" || key == "max_body_memory" {
			lo, hi = 64<<10, 64<<30
		}
		if !d.check(size < lo || size > hi, v, f, "must be from %d to %d bytes, got %d", lo, hi, size) {
			return
		}
		switch key {
		case "max_request_line":
			h.MaxRequestLine = size
		case "max_header_bytes":
			h.MaxHeaderBytes = size
		case "max_head_memory":
			h.MaxHeadMemory = size
		case "max_body_memory":
			h.MaxBodyMemory = size
		}
	})
	return h
}

// bpf decodes "bpf: auto|require|off" or "bpf: {mode: …, mark_mask: 0x…}".
func (d *decoder) bpf(n *yaml.Node, path string) BPF {
	b := BPF{Mode: "auto"}
	mode := func(v *yaml.Node, f string) {
		if s, ok := d.str(v, f); ok && d.check(s != "auto" && s != "require" && s != "off", v, f, `must be "auto", "require" or "off", got %q`, s) {
			b.Mode = s
		}
	}
	if deref(n).Kind != yaml.MappingNode {
		mode(n, path)
		return b
	}
	d.fields(n, path, bpfFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "mode":
			mode(v, f)
		case "cgroup":
			if p, ok := d.str(v, f); ok {
				b.Cgroup = d.relPath(p)
			}
		case "mark_mask":
			s, _ := d.str(v, f)
			m, err := strconv.ParseUint(s, 0, 32)
			ok := err == nil && m != 0 && bits.OnesCount32(uint32(m)) == 32-bits.LeadingZeros32(uint32(m))-bits.TrailingZeros32(uint32(m))
			if d.check(!ok, v, f, "must be a non-zero contiguous run of bits such as 0xff000000, got %q", s) {
				b.MarkMask = uint32(m)
			}
		}
	})
	return b
}

// registry decodes the settings of one OCI registry, named host[:port] as
// in references.
func (d *decoder) registry(name string, k, v *yaml.Node) Registry {
	path := "registries." + name
	ref, err := ociref.Parse(ociref.Scheme + name + "/x")
	d.check(err != nil || ref.Registry != name, k, "registries", `invalid registry %q: want a host with an optional port, as in references ("ghcr.io", "127.0.0.1:5000")`, name)
	var r Registry
	d.fields(v, path, registryFields, func(key string, _, v *yaml.Node) {
		switch key {
		case "plain_http":
			r.PlainHTTP, _ = d.boolean(v, join(path, key))
		}
	})
	return r
}

// tls decodes the gateway's identity settings.
func (d *decoder) tls(n *yaml.Node, path string) *TLS {
	t := &TLS{ClientAuth: "require"}
	d.fields(n, path, tlsFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		s, ok := d.str(v, f)
		if !ok {
			return
		}
		switch key {
		case "spiffe_socket":
			t.SpiffeSocket = s
		case "svid":
			t.SVID = d.relPath(s)
		case "key":
			t.Key = d.relPath(s)
		case "bundle":
			t.Bundle = d.relPath(s)
		case "client_auth":
			d.check(s != "require" && s != "request" && s != "none", v, f, `must be "require", "request" or "none", got %q`, s)
			t.ClientAuth = s
		}
	})
	files := t.SVID != "" || t.Key != "" || t.Bundle != ""
	d.check(files && (t.SVID == "" || t.Key == "" || t.Bundle == ""), n, path, "svid, key and bundle go together")
	d.check(files && t.SpiffeSocket != "", n, path, "spiffe_socket and files (svid, key, bundle) exclude each other")
	return t
}

func (d *decoder) relPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.dir, p)
}

// sticky parses "header:<name>" or "cookie:<name>".
func (d *decoder) sticky(n *yaml.Node, path, spec string) Sticky {
	kind, name, _ := strings.Cut(spec, ":")
	if (kind != "header" && kind != "cookie") || !isToken(name) {
		d.errorf(deref(n), path, `must be "header:<name>" or "cookie:<name>", got %q`, spec)
		return Sticky{}
	}
	return Sticky{Kind: kind, Name: name}
}

func defaultLimits() Limits {
	return Limits{Memory: DefaultMemory, Timeout: DefaultTimeout, MaxBody: DefaultMaxBody}
}

func (d *decoder) limits(n *yaml.Node, path string) Limits {
	l, queue := defaultLimits(), -1
	d.fields(n, path, limitsFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		var ok bool
		switch key {
		case "memory":
			if m, ok := d.size(v, f); ok && d.check(m < 64<<10 || m > 4<<30, v, f, "must be between 64KiB and 4GiB, got %s", deref(v).Value) {
				l.Memory = m
			}
		case "max_body":
			if m, ok := d.size(v, f); ok && d.check(m == 0, v, f, "must be greater than 0") {
				l.MaxBody = m
			}
		case "timeout":
			d.durationAtLeast(v, f, 0, &l.Timeout)
		case "max_concurrency":
			l.MaxConcurrency, ok = d.integer(v, f)
			d.check(ok && l.MaxConcurrency < 0, v, f, "must not be negative, got %d", l.MaxConcurrency)
		case "max_queue":
			queue, ok = d.integer(v, f)
			if d.check(ok && queue < 0, v, f, "must not be negative, got %d", queue) && ok {
				l.MaxQueue = queue
			}
		}
	})
	if queue < 0 {
		l.MaxQueue = 2 * max(l.MaxConcurrency, 0)
	} else if l.MaxConcurrency == 0 && queue > 0 {
		d.errorf(d.key(n, "max_queue"), join(path, "max_queue"), "needs max_concurrency to be set")
	}
	return l
}

// key returns the key node named key in mapping n, or n.
func (d *decoder) key(n *yaml.Node, key string) *yaml.Node {
	if m := deref(n); m != nil && m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i]
			}
		}
	}
	return n
}

func (d *decoder) versions(n *yaml.Node, path string) []*Version {
	var vs []*Version
	items, ok := d.list(n, path)
	for i, item := range items {
		vs = append(vs, d.version(item, fmt.Sprintf("%s[%d]", path, i)))
	}
	if ok && len(vs) == 0 {
		d.errorf(deref(n), path, "must list at least one version")
	}
	return vs
}

// version decodes one item of a versions list. Problems in it are reported;
// its Weight is then -2 so the service-wide checks skip it.
func (d *decoder) version(n *yaml.Node, path string) *Version {
	v := &Version{Weight: -1, file: d.file, dir: d.dir, field: path}
	m := deref(n)
	if m == nil || m.Kind != yaml.MappingNode {
		d.errorf(n, path, `must be a mapping with "module" or "path", got %s`, describe(m))
		v.Weight = -2
		return v
	}
	v.Line, v.col = m.Line, m.Column
	sources := 0
	d.fields(m, path, versionFields, func(key string, _, val *yaml.Node) {
		f := join(path, key)
		switch key {
		case "module":
			v.Module, _ = d.str(val, f)
			if ociref.IsReference(v.Module) {
				d.ociModule(val, f, v.Module)
			} else {
				d.check(!validModule(v.Module), val, f, `must be sha256: and 8 to 64 lowercase hex digits, or oci://registry/repository@sha256:<64 hex>, got %q`, v.Module)
			}
		case "path":
			v.Path, _ = d.str(val, f)
			d.check(v.Path == "", val, f, "must not be empty")
		case "upstream":
			v.Upstream = d.upstream(val, f)
		case "name":
			v.Name, _ = d.str(val, f)
			d.check(!ValidName(v.Name), val, f, "invalid name %q: want letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63 long", v.Name)
		case "weight":
			v.Weight = -2
			if w, ok := d.integer(val, f); ok && d.check(w < 0 || w > 100, val, f, "must be between 0 and 100, got %d", w) {
				v.Weight = w
			}
		case "dscp":
			if x, ok := d.integer(val, f); ok && d.check(x < 0 || x > 63, val, f, "must be between 0 and 63, got %d", x) {
				v.DSCP = x
			}
		}
		if key == "module" || key == "path" || key == "upstream" {
			sources++
			v.Line, v.col, v.field = posOf(deref(val)).line, posOf(deref(val)).col, f
		}
	})
	switch {
	case sources == 0:
		d.errorf(m, path, `missing field "module", "path" or "upstream"`)
	case sources > 1:
		d.errorf(m, path, "set only one of module, path or upstream")
	}
	return v
}

// ociModule checks an OCI reference in a version: it must pin a manifest
// digest, so that the config names content, not a tag that can move.
func (d *decoder) ociModule(n *yaml.Node, path, s string) {
	ref, err := ociref.Parse(s)
	switch {
	case err != nil:
		d.errorf(deref(n), path, "%v", err)
	case !ref.Pinned():
		d.errorf(deref(n), path, "%s names no digest: a config must pin content, so write %s@sha256:<64 hex> (wasmesh artifact push prints it)", s, ref.WithDigest("").String())
	}
}

func validModule(m string) bool {
	hex, ok := strings.CutPrefix(m, "sha256:")
	return ok && len(hex) >= 8 && len(hex) <= 64 && isHex(hex)
}

// weights checks the versions of s as a whole and fills in a lone version's
// omitted weight.
func (d *decoder) weights(s *Service, k *yaml.Node) {
	if len(s.Versions) == 1 && s.Versions[0].Weight == -1 {
		s.Versions[0].Weight = 100
	}
	sum, valid := 0, true
	names, sources := map[string]bool{}, map[string]bool{}
	for i, v := range s.Versions {
		at := fmt.Sprintf("services.%s.versions[%d]", s.Name, i)
		if v.Weight == -1 {
			d.errorAt(v.Line, v.col, at, `missing field "weight" (required when a service has more than one version)`)
		}
		valid = valid && v.Weight >= 0
		sum += max(v.Weight, 0)
		if v.Name != "" && names[v.Name] {
			d.errorAt(v.Line, v.col, at+".name", "duplicate version name %q", v.Name)
		}
		names[v.Name] = true
		if src := v.source(); src != "" && sources[src] {
			d.errorAt(v.Line, v.col, v.field, "%q is listed twice", src)
		}
		sources[v.source()] = true
	}
	if valid && len(s.Versions) > 0 && sum != 100 {
		d.errorf(k, "services."+s.Name, "weights sum to %d, want 100", sum)
	}
}

// route decodes routes[i]; nil if it is not a mapping.
func (d *decoder) route(i int, n *yaml.Node) *Route {
	path := fmt.Sprintf("routes[%d]", i)
	m := deref(n)
	if m == nil || m.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping, got %s", describe(m))
		return nil
	}
	r := &Route{Index: i, Line: m.Line, col: m.Column, name: posOf(m)}
	var named, service bool
	var strip *yaml.Node
	d.fields(m, path, routeFields, func(key string, k, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "name":
			r.Name, named = d.str(v, f)
			r.name = posOf(deref(v))
			d.check(named && (r.Name == "" || strings.ContainsFunc(r.Name, isSpace)), v, f, "must be non-empty without spaces, got %q", r.Name)
		case "match":
			r.Match = d.match(v, f)
		case "service":
			service = true
			r.Service, _ = d.str(v, f)
			r.service = posOf(deref(v))
			d.check(r.Service == "", v, f, "must not be empty")
		case "strip_prefix":
			r.StripPrefix, _ = d.boolean(v, f)
			strip = k
		}
	})
	if !service {
		d.errorf(m, path, `missing field "service"`)
	}
	d.check(r.StripPrefix && r.Match.PathPrefix == "", strip, join(path, "strip_prefix"), "needs match.path_prefix")
	if !named {
		r.Name = fmt.Sprintf("%d:%s", i, r.Service)
	}
	return r
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func (d *decoder) match(n *yaml.Node, path string) Match {
	var m Match
	d.fields(n, path, matchFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		s, ok := "", false
		if key != "headers" {
			if s, ok = d.str(v, f); !ok {
				return
			}
		}
		switch key {
		case "host":
			m.Host = strings.ToLower(s)
			d.check(!validHost(m.Host), v, f, `invalid host pattern %q: want a host name like "api.example.com" or "*.example.com", without port`, s)
		case "path":
			m.Path = s
			d.check(!validPath(s), v, f, `must start with "/" and have no query, got %q`, s)
		case "path_prefix":
			m.PathPrefix = cleanPrefix(s)
			d.check(!validPath(s), v, f, `must start with "/" and have no query, got %q`, s)
		case "method":
			m.Method = strings.ToUpper(s)
			d.check(!isToken(s), v, f, "invalid method %q", s)
		case "headers":
			m.Headers = d.stringMap(v, f, strings.ToLower)
			for h := range m.Headers {
				d.check(!isToken(h), v, f, "invalid header name %q", h)
			}
		}
	})
	if m.Path != "" && m.PathPrefix != "" {
		d.errorf(d.key(n, "path_prefix"), path, "set only one of path or path_prefix")
	}
	return m
}

func validPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "?#")
}

// cleanPrefix drops trailing slashes from a path prefix, keeping "/".
func cleanPrefix(p string) string {
	if t := strings.TrimRight(p, "/"); t != "" || p == "" {
		return t
	}
	return "/"
}

// validHost reports whether h is a lowercase host name, optionally with a
// "*." wildcard first label.
func validHost(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// crossCheck validates references between parts of c.
func (d *decoder) crossCheck(c *Config) {
	if len(c.AdminAuth.AllowIDs) > 0 && c.TLS == nil {
		d.errorf(deref(d.allowIDs), "admin.allow_ids", "needs a tls block: the admin listener serves TLS with the gateway's SVID to see its callers' certificates")
	}
	for _, at := range d.expectIDs {
		if c.TLS == nil {
			d.errorAt(at.line, at.col, at.field, "needs a tls block: the gateway presents its own SVID to the upstream")
		}
	}
	names := map[string]*Route{}
	matches := map[string]*Route{}
	for _, s := range c.Services {
		for i, o := range s.Outbound {
			at := s.where(fmt.Sprintf("outbound[%d]", i))
			if u := o.URL; u.Scheme == "wasmesh" && c.Services[u.Host] == nil {
				d.errorAt(at.line, at.col, fmt.Sprintf("services.%s.outbound[%d]", s.Name, i), "unknown service %q%s", u.Host, suggest(u.Host, c.ServiceNames()))
			}
			if o.ExpectID != "" && c.TLS == nil {
				d.errorAt(at.line, at.col, fmt.Sprintf("services.%s.outbound[%d].expect_id", s.Name, i), "needs a tls block: the gateway presents its own SVID to that peer")
			}
		}
		for _, iface := range slices.Sorted(maps.Keys(s.Links)) {
			if to := s.Links[iface]; c.Services[to] == nil {
				at := s.where("links." + iface)
				d.errorAt(at.line, at.col, fmt.Sprintf("services.%s.links[%q]", s.Name, iface), "unknown service %q%s", to, suggest(to, c.ServiceNames()))
			}
		}
		switch at := s.where("allow_peers"); {
		case len(s.AllowPeers) > 0 && c.TLS == nil:
			d.errorAt(at.line, at.col, fmt.Sprintf("services.%s.allow_peers", s.Name), "needs a tls block: without mTLS no peer has an identity")
		case len(s.AllowPeers) > 0 && c.TLS.ClientAuth == "none":
			// Every request would be refused (403): no client shows one.
			d.errorAt(at.line, at.col, fmt.Sprintf("services.%s.allow_peers", s.Name), `needs client certificates: tls.client_auth is "none", so no peer has an identity ("request" or "require")`)
		}
	}
	for _, r := range c.Routes {
		if r.Service != "" && c.Services[r.Service] == nil {
			d.errorAt(r.service.line, r.service.col, fmt.Sprintf("routes[%d].service", r.Index), "unknown service %q%s", r.Service, suggest(r.Service, c.ServiceNames()))
		}
		if prev := names[r.Name]; prev != nil {
			d.errorAt(r.name.line, r.name.col, fmt.Sprintf("routes[%d].name", r.Index), "duplicate route name %q (also routes[%d])", r.Name, prev.Index)
		} else {
			names[r.Name] = r
		}
		key := r.Match.key()
		if prev := matches[key]; prev != nil {
			d.errorAt(r.Line, r.col, fmt.Sprintf("routes[%d].match", r.Index), "same match as routes[%d] (%s), so it can never be chosen", prev.Index, key)
		} else {
			matches[key] = r
		}
	}
}
