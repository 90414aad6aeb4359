package dataplane

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// seriesKey names the requests of one route and version of a snapshot.
type seriesKey struct {
	route   *config.Route
	version *config.Version
	lane    string
}

// series are the metrics of one route and version, resolved once per
// snapshot rather than on every request: WithLabelValues hashes every
// label value and takes a lock. A status class's are resolved when first
// seen, so that no series appears before it has a request.
type series struct {
	route, service, version string
	lane                    string // "" for none
	instTime, runTime       prometheus.Observer
	stats                   *VersionStats
	colour                  bpf.Colour    // 0: none
	pool                    *upstreamPool // an upstream version's, else nil
	// In a lane: its requests counted as served by the lane's version
	// (laneServed, nil when this is not it) or by the baseline, and the
	// lane version's health, nil when this is not it.
	laneServed, laneBaseline prometheus.Counter
	laneHealth               *laneHealth
	classes                  [6]atomic.Pointer[classSeries]
}

type classSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesFor returns the series of route r and version v in st, made on
// first use. They live as long as st.
func (p *Plane) seriesFor(st *Snapshot, r *config.Route, s *config.Service, v *config.Version, lane *router.Lane) *series {
	key := seriesKey{r, v, ""}
	if lane != nil {
		key.lane = lane.Name
	}
	if got, ok := st.series.Load(key); ok {
		return got.(*series)
	}
	sr := &series{
		route: r.Name, service: s.Name, version: modules.Short(v.Digest), lane: key.lane,
		instTime: p.metrics.InstTime.WithLabelValues(s.Name),
		runTime:  p.metrics.RunTime.WithLabelValues(s.Name),
		stats:    p.Stats(s.Name, v.Digest),
		colour:   st.Colours[ColourKey(s.Name, v.Digest)],
	}
	if v.IsUpstream() {
		sr.pool = p.upstreamFor(s.Name, v)
	}
	if lane != nil {
		sr.laneBaseline = p.metrics.LaneRequests.WithLabelValues(lane.Name, s.Name, laneBaseline)
		if v == lane.Version(s.Name) {
			sr.laneServed = p.metrics.LaneRequests.WithLabelValues(lane.Name, s.Name, laneServed)
			sr.laneHealth = p.laneHealthOf(laneHealthKey{lane.Name, s.Name, v.Digest})
		}
	}
	got, _ := st.series.LoadOrStore(key, sr)
	return got.(*series)
}

var classNames = [6]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// observe counts req in wasmesh_requests_total and its duration.
func (p *Plane) observe(req *Request) {
	if req.ClientFault != "" {
		service := ""
		if req.Service != nil {
			service = req.Service.Name
		}
		p.metrics.ClientErrors.WithLabelValues(service, req.ClientFault).Inc()
	}
	if req.Route == nil && req.ClientFault != "" {
		// Refused before routing (a CONNECT, a request line HTTP/1.1
		// would refuse): client_errors_total alone, as the listener's
		// refusals, so that no client moves the gateway's 5xx rate.
		return
	}
	class := req.Status / 100
	took := time.Since(req.Start)
	if s := req.series; s != nil && req.ClientFault == "" && !req.stopped && !req.shed && !req.unjudged {
		if req.answered { // the client's time to take the answer is not the version's
			s.stats.Latency.Observe(req.readyAfter)
		} else {
			s.stats.Latency.Observe(took)
		}
	}
	if s := req.series; s != nil && class >= 1 && class <= 5 && !req.stopped {
		c := s.classes[class].Load()
		if c == nil {
			c = &classSeries{
				requests: p.metrics.Requests.WithLabelValues(s.route, s.service, s.version, classNames[class], s.lane),
				duration: p.metrics.Duration.WithLabelValues(s.route, s.service, s.version, classNames[class], s.lane),
			}
			s.classes[class].Store(c)
		}
		c.requests.Inc()
		c.duration.Observe(took.Seconds())
		return
	}
	route, service, version := "", "", ""
	if req.Route != nil {
		route, service = req.Route.Name, req.Service.Name
	}
	if req.Version != nil && !req.stopped { // the drain's 503 is not the version's answer
		version = modules.Short(req.Version.Digest)
	}
	lane := ""
	if req.Lane != nil {
		lane = req.Lane.Name
	}
	name := strconv.Itoa(class) + "xx"
	p.metrics.Requests.WithLabelValues(route, service, version, name, lane).Inc()
	p.metrics.Duration.WithLabelValues(route, service, version, name, lane).Observe(took.Seconds())
}

// Refused counts and logs a request the HTTP/1 listener answered itself,
// before routing (http1.Server.Refused): a client error, with its reason
// and the client's address (there is no method or path to say).
func (p *Plane) Refused(status int, reason, remote string) {
	p.metrics.ClientErrors.WithLabelValues("", reason).Inc()
	p.log.Info("request refused", "status", status, "client", remote, "client_error", reason)
}

// accessLog writes req's line: info, or warn for a 5xx that is not the
// client's fault.
func (p *Plane) accessLog(req *Request) {
	level := slog.LevelInfo
	if req.Status >= 500 && req.ClientFault == "" {
		level = slog.LevelWarn
	}
	if !p.log.Enabled(req.ctx, level) {
		return
	}
	r := req.HTTP
	// Room for every field on the stack: grown by append, the slice was
	// a 672-byte allocation on every request.
	attrs := append(make([]slog.Attr, 0, 16),
		slog.String("request_id", req.ID),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", req.Status),
		slog.Int("bytes", req.Bytes),
		slog.Duration("duration", time.Since(req.Start)),
	)
	if req.Route != nil {
		attrs = append(attrs, slog.String("route", req.Route.Name), slog.String("service", req.Service.Name))
	}
	if req.Version != nil {
		attrs = append(attrs, slog.String("version", modules.Short(req.Version.Digest)))
	}
	if sc := req.span.SpanContext(); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	if req.Lane != nil {
		attrs = append(attrs, slog.String("lane", req.Lane.Name))
	}
	if req.Hop > 0 {
		attrs = append(attrs, slog.Int("hop", req.Hop))
	}
	if req.PeerID != "" {
		attrs = append(attrs, slog.String("peer_id", req.PeerID))
	}
	if req.Err != nil {
		attrs = append(attrs, slog.String("error", req.Err.Error()))
	}
	if req.ClientFault != "" {
		attrs = append(attrs, slog.String("client_error", req.ClientFault))
	}
	p.log.LogAttrs(req.ctx, level, "request", attrs...)
}

// queueCollector reports each limited service's queue.
type queueCollector struct {
	p    *Plane
	desc *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.p.limiters.Range(func(name, l any) bool {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.(*limiter).queued.Load()), name.(string))
		return true
	})
}

// newClient is a client for guests' outbound calls. It does not follow
// redirects: a redirect could lead outside the service's outbound list, so
// the guest gets the 3xx and decides.
func newClient(tr http.RoundTripper) *http.Client {
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
