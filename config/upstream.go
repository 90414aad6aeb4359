package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Upstream is a version served by proxying to a native HTTP service
// instead of running a module: a set of endpoints, one chosen per request
// by LB.
type Upstream struct {
	// Endpoints are http:// or https:// origins (scheme, host, port; no
	// path, query or user).
	Endpoints []*url.URL
	// LB is how an endpoint is chosen: "least_request" (the default: the
	// fewer requests in flight of two chosen at random, as Envoy does) or
	// "round_robin".
	LB string
}

var upstreamFields = []string{"endpoints", "lb"}

// IsUpstream reports whether the version proxies to an upstream.
func (v *Version) IsUpstream() bool { return v.Upstream != nil }

// UpstreamDigest is an upstream version's address, as a module version's
// is the sha256 of its module: the sha256 of its endpoints and balancing,
// so that the same upstream is the same version in every config.
func (u *Upstream) UpstreamDigest() string {
	var b strings.Builder
	b.WriteString("wasmesh-upstream\nlb " + u.LB + "\n")
	for _, e := range u.Endpoints {
		b.WriteString(e.String() + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// upstream decodes a version's upstream block.
func (d *decoder) upstream(n *yaml.Node, path string) *Upstream {
	u := &Upstream{LB: "least_request"}
	d.fields(n, path, upstreamFields, func(key string, _, v *yaml.Node) {
		f := join(path, key)
		switch key {
		case "endpoints":
			items, _ := d.list(v, f)
			for i, item := range items {
				fi := fmt.Sprintf("%s[%d]", f, i)
				if s, ok := d.str(item, fi); ok {
					e, err := parseEndpoint(s)
					if d.check(err != nil, item, fi, "%v", err) {
						u.Endpoints = append(u.Endpoints, e)
					}
				}
			}
		case "lb":
			if s, ok := d.str(v, f); ok && d.check(s != "least_request" && s != "round_robin", v, f, `must be "least_request" or "round_robin", got %q`, s) {
				u.LB = s
			}
		}
	})
	if len(u.Endpoints) == 0 {
		d.errorf(n, path, "needs at least one endpoint (endpoints: [http://host:port, …])")
	}
	return u
}

// parseEndpoint checks an upstream endpoint: an http(s) origin.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("invalid endpoint %q: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("endpoint %q: want http:// or https://", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("endpoint %q: no host", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return nil, fmt.Errorf("endpoint %q: want an origin (scheme://host:port), without path, query or user", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}
