package mesh

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/modules"
)

// HealthHandler serves /healthz, /readyz and /metrics only: safe to expose
// to probes and scrapers on a pod's address.
func (g *Gateway) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// AdminHandler serves the admin API; docs/admin-api.md describes it.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/config", g.getConfig)
	mux.HandleFunc("POST /v1/config/reload", g.postReload)
	mux.HandleFunc("GET /v1/services", g.getServices)
	mux.HandleFunc("GET /v1/colours", g.getColours)
	mux.HandleFunc("POST /v1/artifacts", g.postArtifact)
	mux.HandleFunc("POST /v1/services/{name}/deploy", g.postDeploy)
	mux.HandleFunc("POST /v1/services/{name}/promote", g.postPromote)
	mux.HandleFunc("POST /v1/services/{name}/rollback", g.postRollback)
	// Go's profiler, as Caddy and most Go servers expose it on their admin
	// listener (loopback by default).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	return mux
}

func (g *Gateway) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case g.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case g.state.Load() == nil:
		http.Error(w, "no config loaded", http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "ready\n")
	}
}

// ConfigStatus is the body of GET /v1/config.
type ConfigStatus struct {
	File       string    `json:"file"`
	Generation int64     `json:"generation"`
	Hash       string    `json:"sha256,omitempty"`
	LoadedAt   time.Time `json:"loaded_at,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	LastErrAt  time.Time `json:"last_error_at,omitzero"`
	Draining   bool      `json:"draining"`
}

func (g *Gateway) configStatus() ConfigStatus {
	cs := ConfigStatus{File: g.opts.ConfigPath, Draining: g.draining.Load()}
	if st := g.state.Load(); st != nil {
		cs.Generation, cs.Hash, cs.LoadedAt = st.gen, st.hash, st.loadedAt
	}
	if e := g.lastErr.Load(); e != nil {
		cs.LastError, cs.LastErrAt = e.err.Error(), e.at
	}
	return cs
}

func (g *Gateway) getConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, g.configStatus())
}

func (g *Gateway) postReload(w http.ResponseWriter, r *http.Request) {
	if err := g.LoadFile(r.Context()); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, g.configStatus())
}

// ServiceStatus is one service in GET /v1/services.
type ServiceStatus struct {
	Name     string          `json:"name"`
	Sticky   string          `json:"sticky,omitempty"`
	Versions []VersionStatus `json:"versions"`
}

// VersionStatus is one version of a service, with what it served since the
// gateway started.
type VersionStatus struct {
	Digest   string `json:"digest"`
	Name     string `json:"name,omitempty"`
	Weight   int    `json:"weight"`
	Requests int64  `json:"requests"`
	Errors   int64  `json:"errors"`
}

// Services describes the active config's services.
func (g *Gateway) Services() []ServiceStatus {
	st := g.state.Load()
	if st == nil {
		return nil
	}
	out := make([]ServiceStatus, 0, len(st.cfg.Services))
	for _, s := range st.cfg.Services {
		ss := ServiceStatus{Name: s.Name, Versions: versionStatuses(g, s)}
		if s.Sticky.Kind != "" {
			ss.Sticky = s.Sticky.Kind + ":" + s.Sticky.Name
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func versionStatuses(g *Gateway, s *config.Service) []VersionStatus {
	vs := make([]VersionStatus, len(s.Versions))
	for i, v := range s.Versions {
		stats := g.statsFor(s.Name, v.Digest)
		vs[i] = VersionStatus{Digest: v.Digest, Name: v.Name, Weight: v.Weight,
			Requests: stats.requests.Load(), Errors: stats.errors.Load()}
	}
	return vs
}

func (g *Gateway) getServices(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, g.Services())
}

// ColoursStatus is the body of GET /v1/colours.
type ColoursStatus struct {
	Mode    string         `json:"mode"`
	Reason  string         `json:"reason"`
	Colours []ColourStatus `json:"colours"`
}

func (g *Gateway) getColours(w http.ResponseWriter, _ *http.Request) {
	mode, reason, colours, err := g.Colours()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ColoursStatus{Mode: mode, Reason: reason, Colours: colours})
}

// postArtifact stores an uploaded module: POST /v1/artifacts with the .wasm
// as the body answers 201 {"digest": "sha256:…"}.
func (g *Gateway) postArtifact(w http.ResponseWriter, r *http.Request) {
	cfg := g.Config()
	if cfg == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no config loaded"))
		return
	}
	store, err := modules.Open(cfg.Store, modules.Options{Validate: g.engine.Validate})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	digest, err := store.Put(r.Context(), http.MaxBytesReader(w, r.Body, modules.MaxModuleSize))
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"digest": digest})
}

// ReleaseRequest is the body of the deploy and promote operations.
type ReleaseRequest struct {
	// Module is a digest, or a prefix of at least 8 hex digits, in the store;
	// for deploy also an oci:// reference, pulled first.
	Module string `json:"module"`
	// Weight is the new version's percentage (deploy only).
	Weight int    `json:"weight"`
	Name   string `json:"name,omitempty"`
}

func (g *Gateway) postDeploy(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !readJSON(w, r, &req) {
		return
	}
	vs, err := g.Deploy(r.Context(), r.PathValue("name"), req.Module, req.Weight, req.Name)
	g.writeRelease(w, r.PathValue("name"), vs, err)
}

func (g *Gateway) postPromote(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !readJSON(w, r, &req) {
		return
	}
	vs, err := g.Promote(r.Context(), r.PathValue("name"), req.Module)
	g.writeRelease(w, r.PathValue("name"), vs, err)
}

func (g *Gateway) postRollback(w http.ResponseWriter, r *http.Request) {
	vs, err := g.Rollback(r.Context(), r.PathValue("name"))
	g.writeRelease(w, r.PathValue("name"), vs, err)
}

func (g *Gateway) writeRelease(w http.ResponseWriter, service string, vs []*config.Version, err error) {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, modules.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, err)
	default:
		writeJSON(w, http.StatusOK, ServiceStatus{Name: service, Versions: versionStatuses(g, &config.Service{Name: service, Versions: vs})})
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
