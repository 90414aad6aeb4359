package mesh

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

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
}

func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmesh_requests_total",
			Help: "Requests served, by service, version (short digest) and status code.",
		}, []string{"service", "version", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmesh_request_duration_seconds",
			Help:    "Time from request to response, by service.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
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
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(x *exchange) {
	service, version := "", ""
	if x.service != nil {
		service = x.service.Name
	}
	if x.version != nil {
		version = modules.Short(x.version.Digest)
	}
	m.requests.WithLabelValues(service, version, strconv.Itoa(x.status)).Inc()
	m.duration.WithLabelValues(service).Observe(time.Since(x.start).Seconds())
}

// reloadCount reads wasmesh_config_reload_total for result.
func (m *metrics) reloadCount(result string) float64 {
	var out dto.Metric
	_ = m.reloads.WithLabelValues(result).Write(&out)
	return out.GetCounter().GetValue()
}
