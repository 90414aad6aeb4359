// Package telemetry holds the gateway's Prometheus metrics and builds its
// OpenTelemetry tracer provider. The data plane and the control plane each
// update their own series; the metric names are documented in
// docs/operations.md and do not change.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the gateway's Prometheus series, in a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	// The request path's.
	Requests   *prometheus.CounterVec   // route, service, version, status class
	Duration   *prometheus.HistogramVec // route, service, version, status class
	Inflight   prometheus.Gauge
	Rejections *prometheus.CounterVec // service
	// ClientErrors counts requests failed by their client: malformed,
	// over a limit, too slow, gone. Never a version's error.
	ClientErrors *prometheus.CounterVec // service ("" before routing), reason
	Outbound     *prometheus.CounterVec // service, target, result
	InstTime     *prometheus.HistogramVec
	RunTime      *prometheus.HistogramVec

	// The control plane's and the process's.
	Reloads    *prometheus.CounterVec // result
	Generation prometheus.Gauge
	Draining   prometheus.Gauge
	SVIDExpiry prometheus.Gauge
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
			Help: "Requests served, by route, service, version (short digest) and status class (2xx…).",
		}, []string{"route", "service", "version", "status"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_request_duration_seconds",
			Help:    "Time from request to response, by route, service, version and status class.",
			Buckets: LatencyBuckets,
		}, []string{"route", "service", "version", "status"}),
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
		SVIDExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_svid_expiry_timestamp_seconds",
			Help: "When the gateway's current SVID expires (Unix time); alert well before it.",
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
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_config_reload_total",
			Help: "Config loads, by result (success or error).",
		}, []string{"result"}),
		Generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_config_generation",
			Help: "Generation number of the active config.",
		}),
		Draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_draining",
			Help: "1 while the gateway drains for shutdown.",
		}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmesh_inflight_requests",
			Help: "Requests being served now.",
		}),
	}
	m.Reloads.WithLabelValues("success")
	m.Reloads.WithLabelValues("error")
	m.Registry.MustRegister(m.Requests, m.Duration, m.Reloads, m.Generation, m.Draining, m.Inflight,
		m.Rejections, m.ClientErrors, m.Outbound, m.InstTime, m.RunTime, m.SVIDExpiry,
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
