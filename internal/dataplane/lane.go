package dataplane

import (
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/config"
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
// baggage of the request's context, which its calls carry: the lane its
// baggage carries when it comes from a peer of lane_peers, else the lane
// it enters by the lanes' entry rules, else none. A lane carried by anyone
// else is dropped from the baggage, and counted. The request's Baggage
// header, which its guest sees, is made to say the same.
func (p *Plane) enterLane(req *Request, st *Snapshot) {
	bag := baggage.FromContext(req.ctx)
	carried := bag.Member(config.LaneBaggageKey).Value()
	if carried != "" {
		if st.LanePeers != nil && req.PeerID != "" && st.LanePeers.Allows(req.Peer) && validLane(carried) {
			if req.Lane = st.Table.Lane(carried); req.Lane == nil {
				req.Lane = router.CarriedLane(carried)
			}
			return
		}
		p.metrics.LaneUntrusted.Inc()
		p.log.Debug("lane ignored: not from a peer of lane_peers", "lane", carried, "peer_id", req.PeerID, "request_id", req.ID)
		bag = bag.DeleteMember(config.LaneBaggageKey)
	}
	if req.Lane = st.Table.Enter(req.HTTP); req.Lane != nil {
		m, err := baggage.NewMemberRaw(config.LaneBaggageKey, req.Lane.Name)
		if err == nil {
			bag, err = bag.SetMember(m)
		}
		if err != nil { // a lane name is a valid baggage value: never
			p.log.Warn("lane not carried", "lane", req.Lane.Name, "error", err)
		}
	} else if carried == "" {
		return // nothing changed
	}
	req.ctx = baggage.ContextWithBaggage(req.ctx, bag)
	if req.bag = bag.String(); req.bag != "" {
		req.HTTP.Header["Baggage"] = []string{req.bag}
	} else {
		delete(req.HTTP.Header, "Baggage")
	}
}

// validLane reports whether a carried lane name is one a config could have.
func validLane(name string) bool {
	if len(name) > 63 || !isAlnum(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// laneHealthKey names what eviction watches: one lane's version of one
// service.
type laneHealthKey struct{ lane, service, digest string }

// laneBuckets is how many parts a lane's eviction window is counted in.
const laneBuckets = 10

// laneHealth counts the recent requests of a lane's version, and their
// failures, in laneBuckets buckets over the window of its eviction.
type laneHealth struct {
	mu      sync.Mutex
	buckets [laneBuckets]struct {
		slot           int64 // time / bucket width, of the requests counted
		requests, fail int
	}
}

// record counts one request at now and reports the window's requests and
// failures.
func (h *laneHealth) record(now time.Time, window time.Duration, failed bool) (requests, failures int) {
	width := max(int64(window)/laneBuckets, 1)
	slot := now.UnixNano() / width
	h.mu.Lock()
	defer h.mu.Unlock()
	b := &h.buckets[slot%laneBuckets]
	if b.slot != slot {
		b.slot, b.requests, b.fail = slot, 0, 0
	}
	b.requests++
	if failed {
		b.fail++
	}
	for i := range h.buckets {
		if b := &h.buckets[i]; slot-b.slot < laneBuckets {
			requests, failures = requests+b.requests, failures+b.fail
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

// watchLane counts the answer of req, served by its lane's version (its
// series has the version's health), towards that version's eviction, and
// evicts it when the failures of the window pass the lane's error rate. A
// client's fault is no failure of the version, and is not counted at all.
func (p *Plane) watchLane(req *Request) {
	l, svc := req.Lane, req.Service.Name
	ev := l.Evict
	if ev.Off || req.ClientFault != "" || l.Evicted(svc) {
		return
	}
	n, failed := req.series.laneHealth.record(time.Now(), ev.Window, req.Status >= 500)
	if n < ev.MinRequests || float64(failed) <= ev.ErrorRate*float64(n) {
		return
	}
	if !l.SetEvicted(svc, true) {
		return
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

// LaneState is one lane's version of one service, as the admin API shows it.
type LaneState struct {
	Lane    string `json:"lane"`
	Service string `json:"service"`
	Version string `json:"version"` // digest
	Evicted bool   `json:"evicted"`
}

// Lanes lists the lanes' versions of the snapshot served now, sorted by
// lane and service.
func (p *Plane) Lanes() []LaneState {
	st := p.snap.Load()
	if st == nil {
		return nil
	}
	var out []LaneState
	for _, l := range st.Table.Lanes() {
		for _, svc := range l.Services() {
			out = append(out, LaneState{Lane: l.Name, Service: svc, Version: l.Version(svc).Digest, Evicted: l.Evicted(svc)})
		}
	}
	return out
}

// AdmitLane puts lane's version of service back in the lane after an
// eviction, its failures forgotten.
func (p *Plane) AdmitLane(lane, service string) error {
	st := p.snap.Load()
	if st == nil {
		return fmt.Errorf("no config loaded yet")
	}
	l := st.Table.Lane(lane)
	if l == nil {
		return fmt.Errorf("no lane %q", lane)
	}
	v := l.Version(service)
	if v == nil {
		return fmt.Errorf("lane %q has no version of service %q", lane, service)
	}
	if hv, ok := p.laneHealth.Load(laneHealthKey{lane, service, v.Digest}); ok {
		hv.(*laneHealth).clear()
	}
	l.SetEvicted(service, false)
	p.metrics.LaneEvicted.WithLabelValues(lane, service).Set(0)
	p.log.Info("lane version admitted", "lane", lane, "service", service, "version", modules.Short(v.Digest))
	return nil
}
