package config

import (
	"slices"

	yaml "go.yaml.in/yaml/v3"
)

// memo keeps the services and routes a decode made, by the nodes it made
// them from, for the next decode of the same file (a Parser's): a Parser
// hands the next parse the very nodes of every piece that did not change
// or move, and the same nodes decode to the same service or route. What
// the decode of a node found wrong, or read from a file, is not kept.
// Decoded values are never changed once made, so the configs of both
// decodes share them.
type memo struct {
	file, dir string
	last      memoEntries // what the decode before this one made
	next      memoEntries // what this one made or took from last
}

type memoEntries struct {
	services map[*yaml.Node]memoService // by the service's key
	routes   map[memoRoute]*Route
}

type memoService struct {
	value     *yaml.Node
	s         *Service
	expectIDs []fieldPos // what decoding it added to decoder.expectIDs
}

type memoRoute struct {
	n     *yaml.Node
	index int // a route's name and errors say where it is in the list
}

// start readies m for a decode of file, in dir.
func (m *memo) start(file, dir string) {
	if m.file != file || m.dir != dir {
		m.file, m.dir, m.next = file, dir, memoEntries{}
	}
	m.last = m.next
	m.next = memoEntries{services: make(map[*yaml.Node]memoService, len(m.last.services)), routes: make(map[memoRoute]*Route, len(m.last.routes))}
}

// service is d.service(name, k, v), or what it made of k and v last time.
func (m *memo) service(d *decoder, name string, k, v *yaml.Node) *Service {
	if m == nil {
		return d.service(name, k, v)
	}
	if e, ok := m.last.services[k]; ok && e.value == v {
		d.expectIDs = append(d.expectIDs, e.expectIDs...)
		m.next.services[k] = e
		return e.s
	}
	errs, ids, reads := len(d.errs), len(d.expectIDs), d.reads
	s := d.service(name, k, v)
	if len(d.errs) == errs && d.reads == reads {
		m.next.services[k] = memoService{value: v, s: s, expectIDs: slices.Clone(d.expectIDs[ids:])}
	}
	return s
}

// route is d.route(i, n), or what it made of n at i last time.
func (m *memo) route(d *decoder, i int, n *yaml.Node) *Route {
	if m == nil {
		return d.route(i, n)
	}
	key := memoRoute{n, i}
	if r, ok := m.last.routes[key]; ok {
		m.next.routes[key] = r
		return r
	}
	errs := len(d.errs)
	r := d.route(i, n)
	if r != nil && len(d.errs) == errs {
		m.next.routes[key] = r
	}
	return r
}
