package dataplane

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// How a service served a request in a lane: the label result of
// wasmesh_lane_requests_total.
const (
	laneServed   = "lane"     // by the lane's version
	laneBaseline = "baseline" // by its baseline selection (permissive)
	laneRefused  = "refused"  // not at all (strict)
)

// enterLane sets the lane of req, a client's request, and puts it in the
// baggage of the request's context, which its calls carry.
//
// A request from a peer of lane_peers (another gateway of the mesh) is in
// the lane its baggage carries, or in none: the gateway it comes from
// decided, and entry rules do not apply to it (a guest there could
// otherwise steer its calls into a lane with a header). Any other request
// enters a lane by the lanes' entry rules, or none; a lane its baggage
// carries is dropped, and counted. The request's Baggage header, which its
// guest sees, is made to say what its calls will carry: the baggage as
// parsed (a malformed or oversized header parses to nothing), with the
// host's lane member.
func (p *Plane) enterLane(req *Request, st *Snapshot) {
	raw, hadRaw := req.HTTP.Header["Baggage"]
	bag := baggage.FromContext(req.ctx)
	carried := bag.Member(config.LaneBaggageKey).Value()
	if st.LanePeers != nil && req.PeerID != "" && st.LanePeers.Allows(req.Peer) {
		switch {
		case carried == "":
		case !config.ValidName(carried):
			p.ignoreLane(req, carried, "not a lane name")
		case st.Table.Lane(carried) != nil:
			req.Lane = st.Table.Lane(carried)
		default:
			req.Lane = router.CarriedLane(carried)
		}
		if req.Lane != nil {
			return // the baggage carries it already
		}
	} else {
		if carried != "" || (hadRaw && mentionsLane(raw)) {
			p.ignoreLane(req, carried, "not from a peer of lane_peers")
		}
		if req.Lane = st.Table.Enter(req.HTTP); req.Lane != nil {
			m, err := baggage.NewMemberRaw(config.LaneBaggageKey, req.Lane.Name)
			if err == nil {
				var with baggage.Baggage
				var header string
				if with, header, err = withLane(bag, m); err == nil {
					req.ctx = baggage.ContextWithBaggage(req.ctx, with)
					req.bag = header
					req.HTTP.Header["Baggage"] = []string{header}
					return
				}
			}
			// A lane name is a valid baggage value: never.
			p.log.Warn("lane not carried", "lane", req.Lane.Name, "error", err)
		}
	}
	if carried != "" && req.Lane == nil {
		bag = bag.DeleteMember(config.LaneBaggageKey)
	}
	if carried == "" && req.Lane == nil && !hadRaw {
		return // nothing to say
	}
	req.ctx = baggage.ContextWithBaggage(req.ctx, bag)
	if req.bag = bag.String(); req.bag != "" {
		req.HTTP.Header["Baggage"] = []string{req.bag}
	} else {
		delete(req.HTTP.Header, "Baggage")
	}
}

// W3C Baggage's limits on a header, which a peer holds a longer one to.
const (
	maxBaggageMembers = 64
	maxBaggageBytes   = 8192
)

// withLane is bag with lane, a member, within W3C Baggage's limits, and
// its header: the lane's member first, so that a peer keeping what fits
// of a header keeps it, then bag's others by key, but those that would
// not fit (a client's baggage at the limits would otherwise make the
// header one that peers refuse whole, or cut the lane from).
func withLane(bag baggage.Baggage, lane baggage.Member) (baggage.Baggage, string, error) {
	others := bag.Members()
	slices.SortFunc(others, func(a, b baggage.Member) int { return strings.Compare(a.Key(), b.Key()) })
	kept := []baggage.Member{lane}
	var h strings.Builder
	h.WriteString(lane.String())
	for _, m := range others {
		s := m.String()
		if m.Key() == lane.Key() || len(kept) == maxBaggageMembers || h.Len()+1+len(s) > maxBaggageBytes {
			continue
		}
		kept = append(kept, m)
		h.WriteByte(',')
		h.WriteString(s)
	}
	b, err := baggage.New(kept...)
	return b, h.String(), err
}

// ignoreLane counts and logs a lane a request's baggage carried that is
// not honoured, and why.
func (p *Plane) ignoreLane(req *Request, lane, why string) {
	p.metrics.LaneUntrusted.Inc()
	p.log.Debug("lane ignored: "+why, "lane", lane, "peer_id", req.PeerID, "request_id", req.ID)
}

// mentionsLane reports whether raw Baggage header values name the lane
// member, parsed or not.
func mentionsLane(raw []string) bool {
	for _, v := range raw {
		if strings.Contains(strings.ToLower(v), config.LaneBaggageKey) {
			return true
		}
	}
	return false
}

// laneHealthKey names what eviction watches: one lane's version of one
// service.
type laneHealthKey struct{ lane, service, digest string }

// laneBuckets is how many parts a lane's eviction window is counted in.
const laneBuckets = 10

// laneHealth is the state of one lane version: whether it is evicted, and
// its recent requests and their failures, in laneBuckets buckets over the
// window of its eviction. It lives in the plane, not in a snapshot, so that
// every snapshot that has the version shares it (router.Lane.UseEviction).
type laneHealth struct {
	evicted atomic.Bool

	mu      sync.Mutex
	width   int64 // of a bucket, in ns: what the slots were counted in
	buckets [laneBuckets]struct {
		slot           int64 // time / width, of the requests counted
		requests, fail int
	}
}

// record counts one request at now (clock.Mono: monotonic, so that a
// change of the wall clock moves no request between buckets) and reports
// the window's requests and failures.
func (h *laneHealth) record(now time.Duration, window time.Duration, failed bool) (requests, failures int) {
	width := max(int64(window)/laneBuckets, 1)
	slot := int64(now) / width
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.width != width { // the window changed with a reload: start over
		h.width = width
		clear(h.buckets[:])
	}
	b := &h.buckets[slot%laneBuckets]
	if b.slot != slot {
		b.slot, b.requests, b.fail = slot, 0, 0
	}
	b.requests++
	if failed {
		b.fail++
	}
	for i := range h.buckets {
		if d := slot - h.buckets[i].slot; d >= 0 && d < laneBuckets {
			requests, failures = requests+h.buckets[i].requests, failures+h.buckets[i].fail
		}
	}
	return requests, failures
}

// laneHealthOf is the health of one lane version, made at first use: it
// outlives the snapshots that see it, so that a reload forgets nothing.
func (p *Plane) laneHealthOf(key laneHealthKey) *laneHealth {
	if h, ok := p.laneHealth.Load(key); ok {
		return h.(*laneHealth)
	}
	h, _ := p.laneHealth.LoadOrStore(key, new(laneHealth))
	return h.(*laneHealth)
}

func (h *laneHealth) clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.buckets[:])
}

// shareEvictions makes the lanes of st, not yet published, read and set
// the eviction of each lane version in the plane's state of it, which the
// snapshots before it share: an eviction or an admission on any of them
// holds on all. The evicted gauge is set again from them, so that a
// version a reload took out of a lane, or a lane deleted, leaves no series
// at 1.
func (p *Plane) shareEvictions(st *Snapshot) {
	p.metrics.LaneEvicted.Reset()
	for _, l := range st.Table.Lanes() {
		for _, svc := range l.Services() {
			h := p.laneHealthOf(laneHealthKey{l.Name, svc, l.Version(svc).Digest})
			l.UseEviction(svc, &h.evicted)
			if h.evicted.Load() {
				p.metrics.LaneEvicted.WithLabelValues(l.Name, svc).Set(1)
			}
		}
	}
}

// watchLane counts the answer of req, served by its lane's version (its
// series has the version's health), towards that version's eviction, and
// evicts it when the failures of the window pass the lane's error rate. A
// client's fault is no failure of the version, and is not counted at all.
func (p *Plane) watchLane(req *Request) {
	l, svc, h := req.Lane, req.Service.Name, req.series.laneHealth
	ev := l.Evict
	if ev.Off || req.ClientFault != "" || h.evicted.Load() {
		return
	}
	n, failed := h.record(clock.Mono(), ev.Window, req.Status >= 500 && !req.stopped)
	if n < ev.MinRequests || float64(failed) <= ev.ErrorRate*float64(n) {
		return
	}
	if !h.evicted.CompareAndSwap(false, true) {
		return // another request evicted it
	}
	reason := fmt.Sprintf("%d of the last %d requests failed (%.0f%%) within %s, over the error rate %.0f%%",
		failed, n, 100*float64(failed)/float64(n), ev.Window, 100*ev.ErrorRate)
	p.metrics.LaneEvictions.WithLabelValues(l.Name, svc).Inc()
	p.metrics.LaneEvicted.WithLabelValues(l.Name, svc).Set(1)
	fallback := "its baseline"
	if l.Strict {
		fallback = "nothing: the strict lane answers 503"
	}
	p.log.Warn("lane version evicted", "lane", l.Name, "service", svc, "version", modules.Short(req.Version.Digest),
		"reason", reason, "fallback", fallback, "request_id", req.ID)
	req.span.AddEvent("wasmesh.lane.evicted", trace.WithAttributes(attribute.String("wasmesh.lane", l.Name),
		attribute.String("wasmesh.service", svc), attribute.String("wasmesh.version", req.Version.Digest),
		attribute.String("wasmesh.reason", reason)))
}

// AdmitLane puts lane's version of service back in the lane after an
// eviction, its failures forgotten.
func (p *Plane) AdmitLane(lane, service string) error {
	st := p.snap.Load()
	if st == nil {
		return ErrNoConfig
	}
	l := st.Table.Lane(lane)
	if l == nil {
		return fmt.Errorf("not found: lane %q", lane)
	}
	v := l.Version(service)
	if v == nil {
		return fmt.Errorf("lane %q has no version of service %q", lane, service)
	}
	h := p.laneHealthOf(laneHealthKey{lane, service, v.Digest})
	h.clear()
	h.evicted.Store(false)
	p.metrics.LaneEvicted.WithLabelValues(lane, service).Set(0)
	p.log.Info("lane version admitted", "lane", lane, "service", service, "version", modules.Short(v.Digest))
	return nil
}

// ErrNoConfig is the error of what needs a config before one is loaded.
var ErrNoConfig = errors.New("no config loaded yet")
