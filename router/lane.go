package router

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/wasmesh/wasmesh/config"
)

// ErrLaneRefused is returned (wrapped) by [Select] for a request in a
// strict lane that has no version of the service, or whose version of it
// is evicted.
var ErrLaneRefused = errors.New("refused by a strict lane")

// Lane is a lane of a Table's config with its versions resolved: what
// Select needs of a request's lane. Its eviction state is the only thing
// that changes; see SetEvicted.
type Lane struct {
	*config.Lane
	versions map[string]*config.Version // by service, of the table's config
	evicted  map[string]*atomic.Bool    // by service
}

// CarriedLane is a lane this gateway's config does not have, carried by a
// trusted peer: permissive and without versions here, so that every
// service serves it as outside any lane, and it goes on with the
// request's calls.
func CarriedLane(name string) *Lane {
	return &Lane{Lane: &config.Lane{Name: name}}
}

// Version is the lane's version of service, nil when it has none.
func (l *Lane) Version(service string) *config.Version { return l.versions[service] }

// Services are the services the lane has a version of, sorted.
func (l *Lane) Services() []string { return slices.Sorted(maps.Keys(l.versions)) }

// Evicted reports whether the lane's version of service is evicted.
func (l *Lane) Evicted(service string) bool {
	e := l.evicted[service]
	return e != nil && e.Load()
}

// SetEvicted takes the lane's version of service out of the lane (true),
// or admits it again (false). It reports whether the lane has a version of
// service.
func (l *Lane) SetEvicted(service string, evicted bool) bool {
	e := l.evicted[service]
	if e == nil {
		return false
	}
	e.Store(evicted)
	return true
}

// newLanes resolves the lanes of cfg, whose versions carry their digests.
func newLanes(cfg *config.Config) (map[string]*Lane, []*Lane, error) {
	lanes := map[string]*Lane{}
	var sorted []*Lane
	for _, name := range cfg.LaneNames() {
		cl := cfg.Lanes[name]
		l := &Lane{Lane: cl, versions: map[string]*config.Version{}, evicted: map[string]*atomic.Bool{}}
		for _, svc := range slices.Sorted(maps.Keys(cl.Versions)) {
			s := cfg.Services[svc]
			if s == nil {
				return nil, nil, fmt.Errorf("lanes.%s.versions.%s: unknown service %q", name, svc, svc)
			}
			v, err := s.LaneVersion(cl.Versions[svc])
			if err != nil {
				return nil, nil, fmt.Errorf("lanes.%s.versions.%s: %w", name, svc, err)
			}
			l.versions[svc], l.evicted[svc] = v, new(atomic.Bool)
		}
		lanes[name] = l
		sorted = append(sorted, l)
	}
	return lanes, sorted, nil
}

// Lane returns the lane of the table's config named name, nil if none.
func (t *Table) Lane(name string) *Lane { return t.lanes[name] }

// Lanes returns the lanes of the table's config, sorted by name.
func (t *Table) Lanes() []*Lane { return slices.Clone(t.sorted) }

// UseEviction makes the lane keep whether its version of service is
// evicted in flag, which may be shared with the same lane version in other
// tables (a gateway shares it across reloads). Call it before the table is
// in use. It reports whether the lane has a version of service.
func (l *Lane) UseEviction(service string, flag *atomic.Bool) bool {
	if l.evicted[service] == nil {
		return false
	}
	l.evicted[service] = flag
	return true
}

// Enter is the lane a request without one enters by the lanes' entry
// rules, nil for none: the first lane, in name order, with a header or
// cookie rule that r matches; else, of the lanes with a share rule whose
// key r carries, the one whose share the key's hash falls in (the lowest
// hash in proportion to the share, if several).
func (t *Table) Enter(r *http.Request) *Lane {
	if len(t.sorted) == 0 {
		return nil
	}
	for _, l := range t.sorted {
		for i := range l.Entry {
			if e := &l.Entry[i]; e.Kind != "share" && entryMatches(e, r) {
				return l
			}
		}
	}
	var best *Lane
	bestScore := math.Inf(1)
	for _, l := range t.sorted {
		for i := range l.Entry {
			e := &l.Entry[i]
			if e.Kind != "share" {
				continue
			}
			key := KeyOf(e.Key, r)
			if key == "" {
				continue
			}
			u := laneHash(key, l.Name)
			if score := u / e.Share; u*100 < e.Share && score < bestScore {
				best, bestScore = l, score
			}
		}
	}
	return best
}

// laneHash is where key falls in [0, 1) for lane: a stable hash of both,
// the same on every replica and restart.
func laneHash(key, lane string) float64 {
	h := splitmix64(fnv1a(fnv1a(fnv1a(fnvOffset, key), "\x00lane\x00"), lane))
	return float64(h>>11) / (1 << 53)
}

func entryMatches(e *config.LaneEntry, r *http.Request) bool {
	switch e.Kind {
	case "header":
		for _, v := range r.Header.Values(e.Name) {
			if v == e.Value {
				return true
			}
		}
	case "cookie":
		for _, c := range r.CookiesNamed(e.Name) {
			if c.Value == e.Value {
				return true
			}
		}
	}
	return false
}
