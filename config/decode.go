package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree, collecting every problem with its position.
type decoder struct {
	file string
	dir  string
	errs []*Error
	// allowIDs is admin.allow_ids, for crossCheck (it needs tls).
	allowIDs *yaml.Node
	// lanePeers is where lane_peers is, for checkLanes (it needs tls).
	lanePeers pos
	// expectIDs are where upstreams' expect_id are, for crossCheck (they
	// need tls).
	expectIDs []fieldPos
	// memo, when set, holds what the last decode made of the services and
	// routes whose nodes this one decodes again (see Parser).
	memo *memo
	// reads counts the files the decode has read (an upstream's ca): what
	// is decoded from a file is not kept in memo.
	reads int
}

// fieldPos is a field's place in the file.
type fieldPos struct {
	pos
	field string
}

// errorf reports a problem at n (which may be nil).
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	var line, col int
	if n != nil {
		line, col = n.Line, n.Column
	}
	d.errorAt(line, col, field, format, args...)
}

func (d *decoder) errorAt(line, col int, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Column: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// deref follows aliases and unwraps a document node.
func deref(n *yaml.Node) *yaml.Node {
	for range 100 {
		switch {
		case n == nil:
			return nil
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names what n is, for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "an invalid node"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields calls fn for each pair of mapping n (at path) whose key is in known.
// It reports other keys, duplicate keys and a non-mapping n; null counts as
// an empty mapping.
func (d *decoder) fields(n *yaml.Node, path string, known []string, fn func(key string, k, v *yaml.Node)) {
	d.pairs(n, path, func(key string, k, v *yaml.Node) {
		if !slices.Contains(known, key) {
			d.errorf(k, path, "unknown field %q%s", key, suggest(key, known))
			return
		}
		fn(key, k, v)
	})
}

// pairs is fields without the check against known keys.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	at := n
	if n = deref(n); isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(at, path, "must be a mapping, got %s", describe(n))
		return
	}
	var seen map[string]int // the first line of each key, for mappings of more than smallMapping keys
	if len(n.Content) > 2*smallMapping {
		seen = make(map[string]int, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if !validKey(k) {
			if k != nil && k.Kind == yaml.ScalarNode && !isNull(k) {
				d.errorf(n.Content[i], path, "merge keys (<<) are not supported")
			} else {
				d.errorf(n.Content[i], path, "keys must be strings, got %s", describe(k))
			}
			continue
		}
		line, dup := seen[k.Value]
		for j := 0; seen == nil && j < i; j += 2 {
			if first := deref(n.Content[j]); validKey(first) && first.Value == k.Value {
				line, dup = n.Content[j].Line, true
				break
			}
		}
		if dup {
			d.errorf(n.Content[i], path, "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		if seen != nil {
			seen[k.Value] = n.Content[i].Line
		}
		fn(k.Value, n.Content[i], n.Content[i+1])
	}
}

// smallMapping is the most keys a mapping has whose duplicates pairs
// finds by looking at the keys before each, without a map.
const smallMapping = 16

// validKey reports whether k, a mapping's key dereferenced, is a string
// and not a merge key.
func validKey(k *yaml.Node) bool {
	return k != nil && k.Kind == yaml.ScalarNode && !isNull(k) && k.Tag != "!!merge"
}

// list returns the items of sequence n (at path); null counts as empty. ok
// is false, and the problem reported, if n is something else.
func (d *decoder) list(n *yaml.Node, path string) (items []*yaml.Node, ok bool) {
	at := n
	if n = deref(n); isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(at, path, "must be a list, got %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

// scalar returns the scalar behind n, reporting anything else as not being a want.
func (d *decoder) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	s := deref(n)
	if s == nil || s.Kind != yaml.ScalarNode || isNull(s) {
		d.errorf(n, path, "must be %s, got %s", want, describe(s))
		return nil, false
	}
	return s, true
}

// str decodes any non-null scalar as its text.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	return s.Value, true
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return 0, false
	}
	var i int
	if s.Tag != "!!int" || s.Decode(&i) != nil {
		d.errorf(s, path, "must be an integer, got %s", describe(s))
		return 0, false
	}
	return i, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.scalar(n, path, "true or false")
	if !ok {
		return false, false
	}
	var b bool
	if s.Tag != "!!bool" || s.Decode(&b) != nil {
		d.errorf(s, path, "must be true or false, got %s", describe(s))
		return false, false
	}
	return b, true
}

// duration decodes a Go duration string such as "2s" or "150ms"; >= 0.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s.Value)
	switch {
	case err != nil:
		d.errorf(s, path, `must be a duration like "2s" or "150ms", got %q`, s.Value)
		return 0, false
	case v < 0:
		d.errorf(s, path, "must not be negative, got %s", s.Value)
		return 0, false
	}
	return v, true
}

// size decodes a byte size, see ParseSize.
func (d *decoder) size(n *yaml.Node, path string) (int64, bool) {
	s, ok := d.scalar(n, path, "a size")
	if !ok {
		return 0, false
	}
	v, err := ParseSize(s.Value)
	if err != nil {
		d.errorf(s, path, "%v", err)
		return 0, false
	}
	return v, true
}

// check reports msg at n when bad.
func (d *decoder) check(bad bool, n *yaml.Node, path, format string, args ...any) bool {
	if bad {
		d.errorf(deref(n), path, format, args...)
	}
	return !bad
}

// stringMap decodes a mapping of strings to scalars.
func (d *decoder) stringMap(n *yaml.Node, path string, key func(string) string) map[string]string {
	m := map[string]string{}
	d.pairs(n, path, func(k string, kn, v *yaml.Node) {
		nk := key(k)
		if _, dup := m[nk]; dup {
			d.errorf(kn, path, "duplicate key %q", k)
			return
		}
		if s, ok := d.str(v, join(path, k)); ok {
			m[nk] = s
		}
	})
	return m
}

func identity(s string) string { return s }

// validName reports whether s is a usable service or version name.
// ValidName reports whether s is a valid name of a service, version or
// lane: 1 to 63 letters, digits, '-', '_' or '.', starting with a letter
// or digit.
func ValidName(s string) bool {
	if s == "" || len(s) > 63 || !isAlnum(s[0]) {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return r > 0x7f || !(isAlnum(byte(r)) || r == '-' || r == '_' || r == '.')
	}) < 0
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isToken reports whether s is an HTTP token (RFC 9110), as used for method
// and header names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// durationAtLeast decodes a duration of at least least into *into; least 0
// means "greater than 0".
func (d *decoder) durationAtLeast(n *yaml.Node, path string, least time.Duration, into *time.Duration) {
	t, ok := d.duration(n, path)
	switch {
	case !ok:
	case least == 0:
		if d.check(t <= 0, n, path, "must be greater than 0") {
			*into = t
		}
	default:
		if d.check(t < least, n, path, "must be at least %s, got %s", least, t) {
			*into = t
		}
	}
}
