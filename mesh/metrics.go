package mesh

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/modules"
)

// metrics are the gateway's Prometheus series, in a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	reloads    *prometheus.CounterVec
	generation prometheus.Gauge
	draining   prometheus.Gauge
	inflight   prometheus.Gauge
	rejections *prometheus.CounterVec
	outbound   *prometheus.CounterVec
	instTime   *prometheus.HistogramVec
	runTime    *prometheus.HistogramVec
	svidExpiry prometheus.Gauge
}

var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_requests_total",
			Help: "Requests served, by route, service, version (short digest) and status class (2xx…).",
		}, []string{"route", "service", "version", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_request_duration_seconds",
			Help:    "Time from request to response, by route, service, version and status class.",
			Buckets: latencyBuckets,
		}, []string{"route", "service", "version", "status"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_rejections_total",
			Help: "Requests refused by a service's max_concurrency and queue (503).",
		}, []string{"service"}),
		outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_outbound_calls_total",
			Help: "Guests' http_call calls, by calling service, target (scheme://host) and result.",
		}, []string{"service", "target", "result"}),
		svidExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_svid_expiry_timestamp_seconds",
			Help: "When the gateway's current SVID expires (Unix time); alert well before it.",
		}),
		instTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_guest_instantiate_seconds",
			Help:    "Time to create a guest instance, by service.",
			Buckets: latencyBuckets,
		}, []string{"service"}),
		runTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_guest_run_seconds",
			Help:    "Time a guest ran, by service.",
			Buckets: latencyBuckets,
		}, []string{"service"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_config_reload_total",
			Help: "Config loads, by result (success or error).",
		}, []string{"result"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_config_generation",
			Help: "Generation number of the active config.",
		}),
		draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_draining",
			Help: "1 while the gateway drains for shutdown.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_inflight_requests",
			Help: "Requests being served now.",
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("error")
	m.reg.MustRegister(m.requests, m.duration, m.reloads, m.generation, m.draining, m.inflight,
		m.rejections, m.outbound, m.instTime, m.runTime, m.svidExpiry,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wasmesh_guest_instances",
			Help: "Guest instances running now.",
		}, func() float64 { return float64(g.engine.Stats().Active) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "wasmesh_compile_total",
			Help:        "Module compilations asked of the engine, by result: hit (already compiled) or miss.",
			ConstLabels: prometheus.Labels{"result": "hit"},
		}, func() float64 { return float64(g.engine.Stats().CompileHits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "wasmesh_compile_total",
			Help:        "Module compilations asked of the engine, by result: hit (already compiled) or miss.",
			ConstLabels: prometheus.Labels{"result": "miss"},
		}, func() float64 { return float64(g.engine.Stats().CompileMisses) }),
		instanceCounter(g, "created", func(s host.Stats) int64 { return s.InstancesCreated }),
		instanceCounter(g, "reused", func(s host.Stats) int64 { return s.InstancesReused }),
		instanceCounter(g, "discarded", func(s host.Stats) int64 { return s.InstancesDiscarded }),
		instanceCounter(g, "expired", func(s host.Stats) int64 { return s.InstancesExpired }),
		&queueCollector{g: g, desc: prometheus.NewDesc("wasmesh_queue_depth",
			"Requests waiting for a slot of a service's max_concurrency.", []string{"service"}, nil)},
		newColourCollector(g),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// queueCollector reports each limited service's queue.
type queueCollector struct {
	g    *Gateway
	desc *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.g.limiters.Range(func(name, l any) bool {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.(*limiter).queued.Load()), name.(string))
		return true
	})
}

func (m *metrics) guestTimes(x *exchange, res host.Result) {
	var inst, run prometheus.Observer
	if s := x.series; s != nil {
		inst, run = s.instTime, s.runTime
	} else {
		inst, run = m.instTime.WithLabelValues(x.service.Name), m.runTime.WithLabelValues(x.service.Name)
	}
	inst.Observe(res.Instantiate.Seconds())
	if res.Run > 0 {
		run.Observe(res.Run.Seconds())
	}
}

func (m *metrics) observe(x *exchange) {
	class := x.status / 100
	if s := x.series; s != nil && class >= 1 && class <= 5 {
		c := s.classes[class].Load()
		if c == nil {
			c = &classSeries{
				requests: m.requests.WithLabelValues(s.route, s.service, s.version, classNames[class]),
				duration: m.duration.WithLabelValues(s.route, s.service, s.version, classNames[class]),
			}
			s.classes[class].Store(c)
		}
		c.requests.Inc()
		c.duration.Observe(time.Since(x.start).Seconds())
		return
	}
	route, service, version := "", "", ""
	if x.route != nil {
		route, service = x.route.Name, x.service.Name
	}
	if x.version != nil {
		version = modules.Short(x.version.Digest)
	}
	name := strconv.Itoa(class) + "xx"
	m.requests.WithLabelValues(route, service, version, name).Inc()
	m.duration.WithLabelValues(route, service, version, name).Observe(time.Since(x.start).Seconds())
}

var classNames = [6]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// seriesKey names the requests of one route and version of a config.
type seriesKey struct {
	route   *config.Route
	version *config.Version
}

// series are the metrics of one route and version, resolved once per
// config rather than on every request: WithLabelValues hashes every label
// value and takes a lock. A status class's are resolved when first seen,
// so that no series appears before it has a request.
type series struct {
	route, service, version string
	instTime, runTime       prometheus.Observer
	stats                   *versionStats
	colour                  bpf.Colour // 0: none
	classes                 [6]atomic.Pointer[classSeries]
}

type classSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesFor returns the series of route r and version v in st, made on
// first use. They live as long as st, the config they belong to.
func (g *Gateway) seriesFor(st *state, r *config.Route, s *config.Service, v *config.Version) *series {
	key := seriesKey{r, v}
	if got, ok := st.series.Load(key); ok {
		return got.(*series)
	}
	got, _ := st.series.LoadOrStore(key, &series{
		route: r.Name, service: s.Name, version: modules.Short(v.Digest),
		instTime: g.metrics.instTime.WithLabelValues(s.Name),
		runTime:  g.metrics.runTime.WithLabelValues(s.Name),
		stats:    g.statsFor(s.Name, v.Digest),
		colour:   st.colours[colourKey(s.Name, v.Digest)],
	})
	return got.(*series)
}

// reloadCount reads wasmesh_config_reload_total for result.
func (m *metrics) reloadCount(result string) float64 {
	var out dto.Metric
	_ = m.reloads.WithLabelValues(result).Write(&out)
	return out.GetCounter().GetValue()
}

func instanceCounter(g *Gateway, event string, stat func(host.Stats) int64) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "wasmesh_instances_total",
		Help:        "Guest instances of reusable modules, by event: created, reused, discarded, expired (closed after the idle timeout).",
		ConstLabels: prometheus.Labels{"event": event},
	}, func() float64 { return float64(stat(g.engine.Stats())) })
}
