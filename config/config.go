package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wasmesh/wasmesh/internal/ociref"
)

// Defaults for fields a config file leaves out.
const (
	DefaultListen       = ":8080"
	DefaultAdmin        = "127.0.0.1:9901"
	DefaultStore        = ".wasmesh/store" // used when $WASMESH_HOME is unset
	DefaultDrainDelay   = 5 * time.Second
	DefaultDrainTimeout = 30 * time.Second

	DefaultMemory  = 64 << 20 // bytes
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 4 << 20 // bytes
)

// Config is a parsed, validated config file. Treat it as read-only: it is
// shared by every request of the generation it belongs to.
type Config struct {
	// Listen is the address of the gateway. Default ":8080".
	Listen string
	// Admin is the address of the admin API. Default "127.0.0.1:9901";
	// "" when the file says admin: off.
	Admin string
	// AdminAuth is how the admin API authenticates its callers. Read at
	// start only.
	AdminAuth AdminAuth
	// Health, when set, is an address serving only /healthz, /readyz and
	// /metrics, with nothing that changes the gateway: for probes and
	// scrapers on the pod IP while the admin API stays on loopback. Default
	// "": none.
	Health string
	// Store is the module store directory. Default $WASMESH_HOME/store when
	// WASMESH_HOME is set (as for the CLI), else ".wasmesh/store". A relative
	// path in the file (or the default ".wasmesh/store") is joined to Dir.
	Store string
	// DrainDelay is how long to keep serving after a shutdown signal before
	// draining. Default 5s; 0 is allowed.
	DrainDelay time.Duration
	// DrainTimeout bounds the wait for in-flight requests. Default 30s; 0 is
	// allowed.
	DrainTimeout time.Duration
	// Services by name.
	Services map[string]*Service
	// Routes in file order (router.Table orders them by precedence).
	Routes []*Route
	// Lanes by name: traffic lanes, which keep a request on the lane's
	// versions of every service on its path. Default none.
	Lanes map[string]*Lane
	// LanePeers lists the mTLS peers (SPIFFE IDs or "spiffe://domain/*")
	// whose requests' lane (the baggage member LaneBaggageKey) is honoured:
	// other gateways of the mesh. A lane from any other client is ignored
	// and counted. Default none. Needs tls.
	LanePeers []string
	// TrustedProxies are the clients (IP addresses or CIDR prefixes) whose
	// X-Forwarded-For, -Host and -Proto an upstream version gets as they
	// sent them, with the client appended to X-Forwarded-For: proxies in
	// front of the gateway (a load balancer). Any other client's are
	// replaced by what the gateway sees. Default none.
	TrustedProxies []netip.Prefix
	// BPF chooses how versions' packets are coloured: Mode "auto" (the
	// default: eBPF if the kernel allows it, else setsockopt), "require" or
	// "off"; MarkMask the skb->mark bits used (default 0xff000000). Read at
	// start only.
	BPF BPF
	// TLS, when set, makes the gateway's listener and its outbound calls
	// mutually authenticated with SPIFFE X.509 identities.
	TLS *TLS
	// HTTP are the limits of the gateway's HTTP/1 listener on a request's
	// head. Read at start only.
	HTTP HTTP
	// Registries holds per-registry settings for oci:// modules, by
	// registry as written in references (host[:port]). Default none: every
	// registry over HTTPS, with the Docker config file's credentials.
	Registries map[string]Registry
	// Dir is the directory of the config file: filepath.Dir(name) for Parse,
	// the absolute directory for Load.
	Dir string
	// Raw is a copy of the bytes parsed.
	Raw []byte

	names []string // the services' names, sorted, as decoded (ServiceNames)
}

// ServiceNames returns the names of c's services, sorted. The slice is
// shared: do not change it.
func (c *Config) ServiceNames() []string {
	if len(c.names) != len(c.Services) { // a Config not made by Parse
		return slices.Sorted(maps.Keys(c.Services))
	}
	return c.names
}

// TLS is where the gateway's SPIFFE identity comes from: the Workload API
// (SpiffeSocket, default $SPIFFE_ENDPOINT_SOCKET) or PEM files (SVID, Key
// and Bundle together, watched for changes).
type TLS struct {
	SpiffeSocket      string
	SVID, Key, Bundle string // absolute, or joined to the config's directory
	// ClientAuth is "require" (the default: clients must present an SVID
	// from the bundle), "request" (verified when presented) or "none".
	ClientAuth string
}

// Registry is how the gateway reaches one OCI registry.
type Registry struct {
	// PlainHTTP reaches the registry over plain HTTP instead of HTTPS.
	// Default false. For registries on loopback or a trusted network only:
	// nothing then protects the credentials sent, and only the digests
	// protect the content.
	PlainHTTP bool
}

// PlainHTTPRegistries lists the registries with plain_http, sorted.
func (c *Config) PlainHTTPRegistries() []string {
	var names []string
	for name, r := range c.Registries {
		if r.PlainHTTP {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// AdminAuth is how the admin API authenticates a call: a bearer token
// (TokenFile) and/or an mTLS client certificate whose SPIFFE ID is in
// AllowIDs; either suffices. With neither, and not Insecure, the gateway
// makes a random token at start and writes it to DefaultAdminTokenFile.
// /healthz, /readyz and /metrics need no authentication.
type AdminAuth struct {
	// TokenFile holds the bearer token (surrounding space trimmed), re-read
	// when the file changes, so that a token is rotated by rewriting it.
	TokenFile string
	// AllowIDs are the SPIFFE IDs (or "spiffe://domain/*" patterns) whose
	// mTLS client certificates are let in: the admin listener then serves
	// TLS with the gateway's SVID, which needs a tls block.
	AllowIDs []string
	// Insecure lets every call in, unauthenticated: for a laptop, and only
	// when said.
	Insecure bool
	// Generated says the token is the one made at start (neither TokenFile
	// nor AllowIDs nor Insecure set); TokenFile is then where it is
	// written (DefaultAdminTokenFile).
	Generated bool
}

// DefaultAdminTokenFile is where the gateway writes the admin token it
// makes when the config sets no authentication, and where the CLI looks
// for it: $WASMESH_HOME/admin-token when WASMESH_HOME is set, else
// admin-token beside the store directory (.wasmesh/admin-token with the
// default store; /var/lib/wasmesh/admin-token for store:
// /var/lib/wasmesh/store).
func DefaultAdminTokenFile(store string) string {
	if home := os.Getenv("WASMESH_HOME"); home != "" {
		return filepath.Join(home, "admin-token")
	}
	return filepath.Join(filepath.Dir(store), "admin-token")
}

// HTTP bounds what the gateway's HTTP/1 listener reads of a request's
// head; past a limit the request is answered with 414 or 431, the
// connection closed, and counted as a client error. Zero fields take the
// defaults.
type HTTP struct {
	// MaxRequestLine bounds the request line. Default 8 KiB.
	MaxRequestLine int64
	// MaxHeaderBytes bounds the header fields (and a body's trailers).
	// Default 64 KiB.
	MaxHeaderBytes int64
	// MaxHeaders bounds the number of header fields (and of trailer
	// fields). Default 100.
	MaxHeaders int
	// MaxHeadMemory bounds what all connections together hold for request
	// heads beyond 4 KiB each. Default 64 MiB.
	MaxHeadMemory int64
	// MaxBodyMemory bounds what requests' bodies read into memory (a
	// module's whole, a component's first 64 KiB) hold, all requests
	// together: past it a request is answered 503. Default
	// DefaultMaxBodyMemory.
	MaxBodyMemory int64
	// SendTimeout bounds how long an answer's write waits for a client
	// that takes no bytes (pipelined requests whose answers it never
	// reads, an HTTP/2 stream whose window it keeps shut) when nothing
	// else bounds it (the service's timeout does for large answers): its
	// connection (HTTP/1) or stream (HTTP/2) is then closed. Default
	// DefaultSendTimeout.
	SendTimeout time.Duration
}

// DefaultSendTimeout is http.send_timeout's default, nginx's.
const DefaultSendTimeout = 60 * time.Second

// DefaultMaxBodyMemory is http.max_body_memory's default.
const DefaultMaxBodyMemory = 256 << 20

// BPF configures packet colouring; see Config.BPF.
type BPF struct {
	Mode     string
	MarkMask uint32
	// Cgroup is the cgroup v2 directory the programs attach to. Default: the
	// gateway's own (in auto mode, not the root cgroup).
	Cgroup string
}

// Outbound is one entry of a service's outbound allow-list.
type Outbound struct {
	URL *url.URL
	// ExpectID is the SPIFFE ID an https server must present; "" accepts
	// any SVID from the trust bundle.
	ExpectID string
}

// Service is one microservice: a set of weighted versions of a module.
type Service struct {
	Name     string
	Versions []*Version
	// Sticky, when set, keeps requests with the same key on the same version.
	// The zero value means no stickiness.
	Sticky Sticky
	// PinHeader allows the X-Wasmesh-Version request header to pin a version.
	// Default true.
	PinHeader bool
	Limits    Limits
	// Env is passed to the module as environment variables. Values may be
	// written as any YAML scalar (GREETING: hi, RETRIES: 3).
	Env map[string]string
	// Outbound lists what the service's guests may call with http_call:
	// "wasmesh://SERVICE" (another service of this config) or an
	// "http(s)://host[:port]" origin, optionally with a path prefix, and for
	// https the SPIFFE ID the server must present. Default none: every call
	// is refused. See AllowsOutbound.
	Outbound []Outbound
	// AllowPeers lists the mTLS peers that may call the service: SPIFFE IDs
	// ("spiffe://example.org/ns/web/sa/frontend") or whole trust domains
	// ("spiffe://example.org/*"). Default none: any peer the listener
	// accepted. Only meaningful with tls.
	AllowPeers []string
	// Warmup, when set, is the path of a GET that each new instance of a
	// component version serves once, before its state is kept for reuse:
	// every request then starts from the state that GET left (an
	// interpreter warmed up) instead of instantiation's. Module versions
	// ignore it. Default "": none.
	Warmup string
	// Release, when set, declares a progressive release of the service,
	// started when the config is loaded. Default nil.
	Release *Release
	// Links name, by WIT interface ("example:crypto/hash", or with a
	// version: "example:crypto/hash@0.1.0", which matches the versions
	// semver-compatible with it), the service whose components export
	// what this service's components import: their calls of it are typed
	// calls to a version of that service, chosen as for any request to
	// it. Default none: a component that imports an interface other than
	// WASI's is refused.
	Links map[string]string
	// Line is where the service's name is in the file.
	Line int

	col int
	// pos is where some of its fields' entries are in the file
	// ("outbound[0]", "links.IFACE", "allow_peers"), for the errors
	// found once the whole config is decoded.
	pos map[string]pos
}

// at records where the field named is in the file.
func (s *Service) at(field string, n *yaml.Node) {
	if s.pos == nil {
		s.pos = map[string]pos{}
	}
	s.pos[field] = posOf(deref(n))
}

// where is where the field named is in the file, or the service's name.
func (s *Service) where(field string) pos {
	if p, ok := s.pos[field]; ok {
		return p
	}
	return pos{s.Line, s.col}
}

// Sticky selects the request attribute that keeps a client on one version,
// written "header:<name>" or "cookie:<name>".
type Sticky struct {
	Kind string // "header", "cookie" or "" (none)
	Name string // header or cookie name, as written
}

// Limits bounds what one service may use.
type Limits struct {
	// Memory is the most linear memory one instance may grow to, in bytes,
	// between 64KiB and 4GiB. Default 64MiB.
	Memory int64
	// MaxBody is the largest request body accepted, in bytes, > 0.
	// Default 4MiB.
	MaxBody int64
	// Timeout bounds one request, > 0. Default 10s.
	Timeout time.Duration
	// MaxConcurrency is the most requests served at once; 0, the default,
	// means unlimited.
	MaxConcurrency int
	// MaxQueue is how many requests may wait for a slot when MaxConcurrency
	// is reached. Default 2*MaxConcurrency (so 0 when unlimited); setting it
	// requires MaxConcurrency.
	MaxQueue int
}

// Version is one deployable version of a service: a module in the store, or
// a .wasm file during development.
type Version struct {
	// Module is a store digest as written, "sha256:" and 8 to 64 lowercase
	// hex digits, or an OCI reference pinned to a manifest digest,
	// "oci://registry/repository@sha256:<64 hex>" (see IsOCI). Exactly one
	// of Module and Path is set.
	Module string
	// Path is a .wasm file as written; see AbsPath.
	Path string
	// Upstream, when set, makes the version a proxy to native HTTP
	// endpoints instead of a module (docs/config.md, upstream versions).
	Upstream *Upstream
	// Name is an optional label, unique within the service, that can also
	// pin the version.
	Name string
	// Weight is the percentage of unpinned traffic, 0..100. Weights of a
	// service sum to 100; a lone version may omit it (100).
	Weight int
	// DSCP, 0..63, is set on the packets of this version's connections, e.g.
	// to give a canary its own QoS class. Default 0 (best effort): a
	// keep-alive connection that served a canary with DSCP 10 goes back to 0
	// for the next request to a version without one.
	DSCP int
	// Digest is the full "sha256:<64 hex>": "" in a parsed config for a
	// version given by a digest prefix, Path or OCI reference; set in the
	// copy that WithDigests makes (router.NewTable does so).
	Digest string
	// Line is where Module or Path is in the file.
	Line int

	file  string // config file name, for errors
	col   int
	field string // e.g. "services.hello.versions[1].module"
	dir   string // Config.Dir
}

// source is what the version runs, for duplicate checks: its module,
// path, or upstream's address.
func (v *Version) source() string {
	if v.Upstream != nil {
		return v.Upstream.UpstreamDigest()
	}
	return v.Module + v.Path
}

// IsOCI reports whether Module is an OCI reference: the module is pulled
// from a registry into the store, and Digest is the sha256 of the wasm, not
// the manifest's digest.
func (v *Version) IsOCI() bool { return ociref.IsReference(v.Module) }

// ErrorAt returns err as an *Error at the version's module or path in the
// config file.
func (v *Version) ErrorAt(err error) *Error {
	return &Error{File: v.file, Line: v.Line, Column: v.col, Field: v.field, Msg: err.Error(), err: err}
}

// Field is the version's place in the config, e.g.
// "services.hello.versions[1].module".
func (v *Version) Field() string { return v.field }

// WithDigests returns a copy of c in which each version that digests has a
// digest for carries it in Digest. c itself is not changed; the copy shares
// c's routes and everything else that WithDigests does not set.
func (c *Config) WithDigests(digests map[*Version]string) *Config {
	out := *c
	out.Services = make(map[string]*Service, len(c.Services))
	for name, s := range c.Services {
		sc := *s
		sc.Versions = make([]*Version, len(s.Versions))
		for i, v := range s.Versions {
			vc := *v
			if d, ok := digests[v]; ok {
				vc.Digest = d
			}
			sc.Versions[i] = &vc
		}
		out.Services[name] = &sc
	}
	return &out
}

// AbsPath returns Path joined to the config file's directory (unchanged if
// absolute), or "" when the version has no Path.
func (v *Version) AbsPath() string {
	if v.Path == "" || filepath.IsAbs(v.Path) {
		return v.Path
	}
	return filepath.Join(v.dir, v.Path)
}

// Route sends matching requests to a service.
type Route struct {
	// Name defaults to "<index>:<service>", e.g. "0:hello".
	Name    string
	Match   Match
	Service string
	// StripPrefix removes Match.PathPrefix before the service sees the path;
	// see Rewrite.
	StripPrefix bool
	// Index is the route's position in the file's routes list.
	Index int
	// Line is where the route starts in the file.
	Line int

	col           int
	name, service pos // of the values, for errors
}

type pos struct{ line, col int }

func posOf(n *yaml.Node) pos {
	if n == nil {
		return pos{}
	}
	return pos{n.Line, n.Column}
}

// Match is what a request must have for a route to apply. Empty fields match
// anything.
type Match struct {
	// Host is an exact host ("api.example.com") or a wildcard
	// ("*.example.com", any host ending in ".example.com" but not
	// "example.com" itself), lowercased.
	Host string
	// Path matches the request path exactly.
	Path string
	// PathPrefix matches whole path segments: "/api" matches "/api", "/api/"
	// and "/api/x" but not "/apix". Stored without a trailing slash ("/"
	// stays "/").
	PathPrefix string
	// Method is an HTTP method, uppercased.
	Method string
	// Headers maps lowercased header names to values that one of the
	// request's values for that header must equal exactly.
	Headers map[string]string
}

// Load reads and parses the config file at path. Config.Dir is made absolute.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return parse(path, dir, data)
}

// Parse decodes and validates a config. name is used in error messages
// (usually the file path) and its directory becomes Config.Dir.
//
// Decoding is strict: unknown fields, values of the wrong type and duplicate
// keys are errors. All problems are reported at once, each an *Error, joined
// and sorted by line.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, filepath.Dir(name), data)
}

func parse(name, dir string, data []byte) (*Config, error) {
	root, err := decodeYAML(name, data)
	if err != nil {
		return nil, err
	}
	return decodeTree(name, dir, data, root, nil)
}

// decodeTree decodes and validates root, data's YAML tree, taking from
// memo (when not nil) what an earlier decode made of the same nodes.
func decodeTree(name, dir string, data []byte, root *yaml.Node, memo *memo) (*Config, error) {
	// An alias needs an anchor: most configs have neither.
	if bytes.IndexByte(data, '&') >= 0 && bytes.IndexByte(data, '*') >= 0 {
		if err := checkAliases(name, root); err != nil {
			return nil, err
		}
	}
	d := &decoder{file: name, dir: dir, memo: memo}
	cfg := d.config(root)
	if err := JoinErrors(d.errs); err != nil {
		return nil, err
	}
	cfg.Dir = dir
	cfg.Raw = bytes.Clone(data)
	return cfg, nil
}

// invalidUTF8 is the error for data, which is not valid UTF-8, at its
// first byte that is not.
func invalidUTF8(name string, data []byte) error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return &Error{File: name, Line: line, Column: col, Msg: fmt.Sprintf("invalid UTF-8 (byte 0x%02x): a config is UTF-8 text", data[i])}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return &Error{File: name, Msg: "invalid UTF-8"}
}

// maxAliasGrowth bounds what aliases may add to a config: the nodes they
// expand to beyond those written, when that is also more than
// aliasGrowthRatio times those written. A few kilobytes of aliases of
// aliases (a "billion laughs") would otherwise decode to gigabytes.
const (
	maxAliasGrowth   = 100_000
	aliasGrowthRatio = 4
)

// checkAliases refuses a tree whose aliases expand it past maxAliasGrowth,
// naming the alias that expands most.
func checkAliases(name string, root *yaml.Node) error {
	const capped = math.MaxInt32  // and so no overflow where int has 32 bits
	sizes := map[*yaml.Node]int{} // the nodes each node stands for, aliases expanded
	var biggest *yaml.Node        // the alias that stands for most
	most := 0
	var size func(n *yaml.Node, depth int) int
	size = func(n *yaml.Node, depth int) int {
		if n == nil || depth > 10_000 {
			return 1
		}
		if s, ok := sizes[n]; ok {
			return s
		}
		total := 1
		if n.Kind == yaml.AliasNode {
			if total = size(n.Alias, depth+1); total > most {
				biggest, most = n, total
			}
		}
		for _, c := range n.Content {
			total = min(total+size(c, depth+1), capped)
		}
		sizes[n] = total
		return total
	}
	expanded, written := size(root, 0), len(sizes)
	if expanded > written+maxAliasGrowth && expanded > aliasGrowthRatio*written {
		e := &Error{File: name, Msg: fmt.Sprintf("aliases expand the config to %d YAML nodes from the %d written (more than %d× and %d more): refused, as an alias bomb would be; write the repeated parts out, or alias smaller ones",
			expanded, written, aliasGrowthRatio, maxAliasGrowth)}
		if biggest != nil {
			e.Line, e.Column = biggest.Line, biggest.Column
		}
		return e
	}
	return nil
}

// Empty reports whether data holds no YAML document, or a null one:
// nothing but white space, comments, document markers (---, ...) and a
// null (~, null), as a file does while it is rewritten in place
// (truncated, then written; a generated file's "---" written first).
// Such a file parses as a config of defaults.
func Empty(data []byte) bool {
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if i := bytes.Index(line, []byte(" #")); i >= 0 {
			line = bytes.TrimSpace(line[:i])
		}
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t') {
			line = bytes.TrimSpace(rest)
		}
		switch string(line) {
		case "", "...", "~", "null", "Null", "NULL":
			continue
		}
		return false
	}
	return true
}

// decodeYAML parses the single YAML document in data into a node tree; nil
// for an empty document.
func decodeYAML(name string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 should not panic on any input; be defensive anyway.
		if r := recover(); r != nil {
			err = &Error{File: name, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	utf16 := bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) // which yaml.v3 reads too
	if !utf16 && !utf8.Valid(data) {                                                                // yaml.v3 says so without a position
		return nil, invalidUTF8(name, data)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(name, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: name, Line: next.Line, Column: next.Column, Msg: "only one YAML document is allowed"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(name, data, err)
	}
	return &doc, nil
}
