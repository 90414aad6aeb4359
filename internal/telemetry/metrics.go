// Package telemetry holds the gateway's Prometheus metrics and builds its
// OpenTelemetry tracer provider. The data plane and the control plane each
// update their own series; the metric names are documented in
// docs/operations.md and do not change.
package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the gateway's Prometheus series, in a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	// The request path's.
	Requests *prometheus.CounterVec   // route, service, version, status class, lane
	Duration *prometheus.HistogramVec // route, service, version, status class, lane
	// Inflight counts the requests in the request path, exported as the
	// gauge wasmesh_inflight_requests (read when scraped).
	Inflight   *atomic.Int64
	Rejections *prometheus.CounterVec // service
	// ClientErrors counts requests failed by their client: malformed,
	// over a limit, too slow, gone. Never a version's error.
	ClientErrors *prometheus.CounterVec // service ("" before routing), reason
	Outbound     *prometheus.CounterVec // service, target, result
	// Typed calls over links, by calling service, interface, the service
	// and version that served them, and result; and their durations.
	LinkCalls    *prometheus.CounterVec   // service, interface, target, version, result
	LinkDuration *prometheus.HistogramVec // interface, target, version
	InstTime     *prometheus.HistogramVec
	RunTime      *prometheus.HistogramVec
	// LaneRequests counts the requests in a lane by how each service
	// served them: by the lane's version ("lane"), by its baseline
	// ("baseline"), or refused by a strict lane ("refused").
	LaneRequests  *prometheus.CounterVec // lane, service, result
	LaneUntrusted prometheus.Counter
	LaneEvictions *prometheus.CounterVec // lane, service
	LaneEvicted   *prometheus.GaugeVec   // lane, service
	// Upstream versions': tries again, and endpoints ejected.
	UpstreamRetries   *prometheus.CounterVec // version
	UpstreamEjections *prometheus.CounterVec // version, endpoint
	UpstreamHealthy   *prometheus.GaugeVec   // version, endpoint
	// Every try of a request on an endpoint: its status code ("" when it
	// got no answer) and its time to the response's head.
	UpstreamRequests *prometheus.CounterVec   // version, endpoint, code
	UpstreamDuration *prometheus.HistogramVec // version, endpoint
	UpstreamOverflow *prometheus.CounterVec   // version
	// Upstream tries that got no answer, by version, endpoint and reason;
	// requests not retried for the retry budget; names not resolved.
	UpstreamFailures    *prometheus.CounterVec // version, endpoint, reason
	UpstreamRetryBudget *prometheus.CounterVec // version
	UpstreamDNSFailures *prometheus.CounterVec // version

	// The control plane's and the process's.
	Reloads *prometheus.CounterVec // result
	// LastLoadOK is 1 while the config file's last load succeeded, 0
	// while it failed (the config before it serving).
	LastLoadOK prometheus.Gauge
	LoadTime   prometheus.Gauge // seconds the last load that succeeded took
	Generation prometheus.Gauge
	Draining   prometheus.Gauge
	// SVIDExpiry is registered by the first SVID observed: a gateway
	// without tls has none (a 0 would fire every expiry alert).
	SVIDExpiry prometheus.Gauge
	svidOnce   sync.Once
}

// LatencyBuckets are the buckets of every latency histogram, in seconds.
var LatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the gateway's series, Go's runtime collector and the
// process collector in a new registry, with extra (collectors that read
// live state, such as the engine's instance counts).
func NewMetrics(extra ...prometheus.Collector) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_requests_total",
			Help: "Requests served, by route, service, version (short digest), status class (2xx…) and lane (\"\" for none).",
		}, []string{"route", "service", "version", "status", "lane"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_request_duration_seconds",
			Help:    "Time from request to response, by route, service, version, status class and lane.",
			Buckets: LatencyBuckets,
		}, []string{"route", "service", "version", "status", "lane"}),
		Rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_rejections_total",
			Help: "Requests refused by a service's max_concurrency and queue (503).",
		}, []string{"service"}),
		ClientErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_client_errors_total",
			Help: "Requests failed by their client (malformed, over a limit, too slow, gone), by service (\"\" when refused before routing) and reason; never counted as a version's error.",
		}, []string{"service", "reason"}),
		Outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_outbound_calls_total",
			Help: "Guests' http_call calls, by calling service, target (scheme://host) and result.",
		}, []string{"service", "target", "result"}),
		LinkCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_link_calls_total",
			Help: "Typed calls of a linked interface, by calling service, interface, target service, the version that served them (short digest; \"\" when none was chosen) and result: ok, trap, timeout or unavailable.",
		}, []string{"service", "interface", "target", "version", "result"}),
		LinkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_link_call_duration_seconds",
			Help:    "Time of typed calls of a linked interface, by interface, target service and version.",
			Buckets: LatencyBuckets,
		}, []string{"interface", "target", "version"}),
		SVIDExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_svid_expiry_timestamp_seconds",
			Help: "When the gateway's current SVID expires (Unix time); alert well before it. Only with tls.",
		}),
		InstTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_guest_instantiate_seconds",
			Help:    "Time to create a guest instance, by service.",
			Buckets: LatencyBuckets,
		}, []string{"service"}),
		RunTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_guest_run_seconds",
			Help:    "Time a guest ran, by service.",
			Buckets: LatencyBuckets,
		}, []string{"service"}),
		LaneRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_lane_requests_total",
			Help: "Requests in a lane, by lane, service and result: served by the lane's version (lane), fallen back to the baseline (baseline), or refused by a strict lane (refused).",
		}, []string{"lane", "service", "result"}),
		LaneUntrusted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmesh_lane_untrusted_total",
			Help: "Requests that carried a lane (baggage wasmesh-lane) from a client not in lane_peers: the lane was ignored.",
		}),
		LaneEvictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_lane_evictions_total",
			Help: "Lane versions taken out of their lane for failing, by lane and service.",
		}, []string{"lane", "service"}),
		LaneEvicted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmesh_lane_evicted",
			Help: "1 while a lane's version of a service is evicted, until admitted again.",
		}, []string{"lane", "service"}),
		UpstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_retries_total",
			Help: "Requests to an upstream version tried again on another endpoint after one failed before answering, by version.",
		}, []string{"version"}),
		UpstreamEjections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_ejections_total",
			Help: "Endpoints of an upstream version left out for failing 5 times in a row, by version and endpoint.",
		}, []string{"version", "endpoint"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_requests_total",
			Help: "Tries of requests on an endpoint of an upstream version, by version, endpoint and status code (\"\" when the endpoint gave no answer).",
		}, []string{"version", "endpoint", "code"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_upstream_duration_seconds",
			Help:    "Time from sending a try to an endpoint of an upstream version to its response's head, by version and endpoint.",
			Buckets: LatencyBuckets,
		}, []string{"version", "endpoint"}),
		UpstreamOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_overflow_total",
			Help: "Requests to an upstream version refused (503) because its max_requests were in flight, by version.",
		}, []string{"version"}),
		UpstreamFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_failures_total",
			Help: "Tries on an endpoint of an upstream version that got no answer, by version, endpoint and reason (connect_failure, reset, timeout, invalid_response, pool_full, client, stopped).",
		}, []string{"version", "endpoint", "reason"}),
		UpstreamRetryBudget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_retry_budget_exhausted_total",
			Help: "Requests to an upstream version not tried again because the retries in flight were at the retry budget, by version.",
		}, []string{"version"}),
		UpstreamDNSFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_upstream_dns_failures_total",
			Help: "Resolutions of an upstream version's dns name that failed (its endpoints kept as they were), by version.",
		}, []string{"version"}),
		UpstreamHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmesh_upstream_healthy",
			Help: "1 while an endpoint of an upstream version with health checks passes them, 0 while it fails them.",
		}, []string{"version", "endpoint"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_config_reload_total",
			Help: "Config loads, by result (success or error).",
		}, []string{"result"}),
		LastLoadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_config_last_load_success",
			Help: "1 when the last load of the config succeeded, 0 when it failed and the config before it serves (until a load succeeds): alert on it, not on the rate of failures, which passes while the broken file stays.",
		}),
		LoadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_config_load_seconds",
			Help: "How long the last config load that succeeded took, from its bytes to the swap: parse, modules read and compiled (those not compiled already), routing table built.",
		}),
		Generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_config_generation",
			Help: "Generation number of the active config.",
		}),
		Draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_draining",
			Help: "1 while the gateway drains for shutdown.",
		}),
		Inflight: new(atomic.Int64),
	}
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wasmesh_inflight_requests",
		Help: "Requests being served now.",
	}, func() float64 { return float64(m.Inflight.Load()) })
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("error")
	m.Registry.MustRegister(m.Requests, m.Duration, m.Reloads, m.LastLoadOK, m.LoadTime, m.Generation, m.Draining, inflight,
		m.Rejections, m.ClientErrors, m.Outbound, m.LinkCalls, m.LinkDuration, m.InstTime, m.RunTime,
		m.LaneRequests, m.LaneUntrusted, m.LaneEvictions, m.LaneEvicted, m.UpstreamRetries, m.UpstreamEjections, m.UpstreamHealthy,
		m.UpstreamRequests, m.UpstreamDuration, m.UpstreamOverflow, m.UpstreamFailures, m.UpstreamRetryBudget, m.UpstreamDNSFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Registry.MustRegister(extra...)
	return m
}

// ReloadCount reads wasmesh_config_reload_total for result.
func (m *Metrics) ReloadCount(result string) float64 {
	var out dto.Metric
	_ = m.Reloads.WithLabelValues(result).Write(&out)
	return out.GetCounter().GetValue()
}

// ObserveSVIDExpiry sets SVIDExpiry to t, registering it the first time.
func (m *Metrics) ObserveSVIDExpiry(t time.Time) {
	m.svidOnce.Do(func() { m.Registry.MustRegister(m.SVIDExpiry) })
	m.SVIDExpiry.Set(float64(t.Unix()))
}
