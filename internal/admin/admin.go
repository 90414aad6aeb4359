// Package admin serves the gateway's admin API (docs/admin-api.md) and the
// health listener: health, readiness, metrics, the active config, the
// services with their counts, the colours, artifact uploads, and the
// release operations of the control plane.
package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/rollout"
	"github.com/wasmesh/wasmesh/modules"
)

// API is the admin API over a data plane and its controller.
type API struct {
	Plane    *dataplane.Plane
	Control  *control.Controller
	Releases *rollout.Controller
}

// HealthHandler serves /healthz, /readyz and /metrics only: safe to expose
// to probes and scrapers on a pod's address.
func (a API) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	a.health(mux)
	return mux
}

func (a API) health(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Plane.Metrics().Registry, promhttp.HandlerOpts{}))
}

// Handler serves the whole admin API.
func (a API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.health(mux)
	mux.HandleFunc("GET /v1/config", a.getConfig)
	mux.HandleFunc("POST /v1/config/reload", a.postReload)
	mux.HandleFunc("GET /v1/services", a.getServices)
	mux.HandleFunc("GET /v1/colours", a.getColours)
	mux.HandleFunc("POST /v1/artifacts", a.postArtifact)
	mux.HandleFunc("POST /v1/services/{name}/deploy", a.postDeploy)
	mux.HandleFunc("POST /v1/services/{name}/promote", a.postPromote)
	mux.HandleFunc("POST /v1/services/{name}/rollback", a.postRollback)
	mux.HandleFunc("GET /v1/lanes", a.getLanes)
	mux.HandleFunc("POST /v1/lanes", a.postLanes)
	mux.HandleFunc("GET /v1/lanes/{name}", a.getLane)
	mux.HandleFunc("PUT /v1/lanes/{name}", a.putLane)
	mux.HandleFunc("DELETE /v1/lanes/{name}", a.deleteLane)
	mux.HandleFunc("POST /v1/lanes/{name}/admit", a.postAdmit)
	a.releases(mux)
	a.ui(mux)
	// Go's profiler, as Caddy and most Go servers expose it on their admin
	// listener (loopback by default).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	return mux
}

func (a API) readyz(w http.ResponseWriter, _ *http.Request) {
	switch {
	case a.Plane.Draining():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case a.Plane.Snapshot() == nil:
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

// ConfigStatus describes the active config and the last failed load.
func (a API) ConfigStatus() ConfigStatus {
	cs := ConfigStatus{File: a.Control.ConfigPath(), Draining: a.Plane.Draining()}
	if st := a.Plane.Snapshot(); st != nil {
		cs.Generation, cs.Hash, cs.LoadedAt = st.Gen, st.Hash, st.LoadedAt
	}
	if e := a.Control.LastError(); e != nil {
		cs.LastError, cs.LastErrAt = e.Err.Error(), e.At
	}
	return cs
}

func (a API) getConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.ConfigStatus())
}

func (a API) postReload(w http.ResponseWriter, r *http.Request) {
	if err := a.Control.LoadFile(r.Context()); errors.Is(err, control.ErrExternal) {
		writeError(w, http.StatusConflict, err)
		return
	} else if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, a.ConfigStatus())
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
	// Latency, with ?latency=1, is the version's latency histogram since
	// the gateway started: bucket i counts the requests that took up to
	// 50 µs × 1.25^i, the last those above (the dashboard's p50 and p99).
	Latency []int64 `json:"latency,omitempty"`
}

// Services describes the active config's services.
func (a API) Services() []ServiceStatus {
	st := a.Plane.Snapshot()
	if st == nil {
		return nil
	}
	out := make([]ServiceStatus, 0, len(st.Config.Services))
	for _, s := range st.Config.Services {
		ss := ServiceStatus{Name: s.Name, Versions: a.versionStatuses(s)}
		if s.Sticky.Kind != "" {
			ss.Sticky = s.Sticky.Kind + ":" + s.Sticky.Name
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (a API) versionStatuses(s *config.Service) []VersionStatus {
	vs := make([]VersionStatus, len(s.Versions))
	for i, v := range s.Versions {
		stats := a.Plane.Stats(s.Name, v.Digest)
		vs[i] = VersionStatus{Digest: v.Digest, Name: v.Name, Weight: v.Weight,
			Requests: stats.Requests.Load(), Errors: stats.Errors.Load()}
	}
	return vs
}

func (a API) getServices(w http.ResponseWriter, r *http.Request) {
	services := a.Services()
	if r.URL.Query().Get("latency") == "1" {
		for i := range services {
			for j := range services[i].Versions {
				v := &services[i].Versions[j]
				snap := a.Plane.Stats(services[i].Name, v.Digest).Latency.Snapshot()
				v.Latency = snap[:]
			}
		}
	}
	writeJSON(w, http.StatusOK, services)
}

// ColoursStatus is the body of GET /v1/colours.
type ColoursStatus struct {
	Mode    string                   `json:"mode"`
	Reason  string                   `json:"reason"`
	Colours []dataplane.ColourStatus `json:"colours"`
}

func (a API) getColours(w http.ResponseWriter, _ *http.Request) {
	mode, reason, colours, err := a.Plane.Colours()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, ColoursStatus{Mode: mode, Reason: reason, Colours: colours})
}

// postArtifact stores an uploaded module: POST /v1/artifacts with the .wasm
// as the body answers 201 {"digest": "sha256:…"}.
func (a API) postArtifact(w http.ResponseWriter, r *http.Request) {
	st := a.Plane.Snapshot()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, errors.New("no config loaded"))
		return
	}
	store, err := modules.Open(st.Config.Store, modules.Options{Validate: a.Plane.Engine().Validate})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	wasm, err := readUpload(r, http.MaxBytesReader(w, r.Body, modules.MaxModuleSize))
	digest := ""
	if err == nil {
		digest, err = store.PutBytes(r.Context(), wasm)
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"digest": digest})
}

// readUpload reads an uploaded module from body: first its magic, so that
// what is no WebAssembly is refused before the rest is read, then the rest
// into a buffer of the size the request declares, when it does (a buffer
// grown as it is read would take about twice the module's size, 256 MiB
// at most).
func readUpload(r *http.Request, body io.Reader) ([]byte, error) {
	size := 0
	if n := r.ContentLength; n > 0 && n <= modules.MaxModuleSize {
		size = int(n)
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(size, 8)))
	if _, err := io.CopyN(buf, body, 4); err != nil || !bytes.Equal(buf.Bytes(), []byte("\x00asm")) {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReleaseRequest is the body of the deploy and promote operations.
type ReleaseRequest struct {
	// Module is a digest, or a prefix of at least 8 hex digits, in the store;
	// for deploy also an oci:// reference, pulled first.
	Module string `json:"module"`
	// Weight is the new version's percentage (deploy only; promote refuses
	// one).
	Weight int `json:"weight,omitempty"`
	// Name is the new version's name (deploy only; promote refuses one).
	Name string `json:"name,omitempty"`
}

func (a API) postDeploy(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Module == "" {
		writeError(w, http.StatusBadRequest, errors.New(`"module" required: a digest or prefix in the store, an oci:// reference, or a version's name`))
		return
	}
	vs, err := a.Control.Deploy(r.Context(), r.PathValue("name"), req.Module, req.Weight, req.Name)
	a.writeRelease(w, r.PathValue("name"), vs, err)
}

func (a API) postPromote(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if !readJSON(w, r, &req) {
		return
	}
	// Promote sends all of the service's traffic to a version that has a
	// name already: a weight or a new name would be silently dropped.
	if req.Weight != 0 || req.Name != "" {
		writeError(w, http.StatusBadRequest, errors.New(`promote takes only "module" (a digest or a version's name): it sends all traffic to that version; "weight" and "name" are for deploy`))
		return
	}
	if req.Module == "" {
		writeError(w, http.StatusBadRequest, errors.New(`"module" required: a digest or a version's name`))
		return
	}
	vs, err := a.Control.Promote(r.Context(), r.PathValue("name"), req.Module)
	a.writeRelease(w, r.PathValue("name"), vs, err)
}

func (a API) postRollback(w http.ResponseWriter, r *http.Request) {
	vs, err := a.Control.Rollback(r.Context(), r.PathValue("name"))
	a.writeRelease(w, r.PathValue("name"), vs, err)
}

func (a API) writeRelease(w http.ResponseWriter, service string, vs []*config.Version, err error) {
	switch {
	case errors.Is(err, control.ErrNotFound), errors.Is(err, modules.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, rollout.ErrConflict), errors.Is(err, control.ErrExternal), errors.Is(err, control.ErrConflict):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, control.ErrUnavailable):
		writeUnavailable(w, err)
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, err)
	default:
		writeJSON(w, http.StatusOK, ServiceStatus{Name: service, Versions: a.versionStatuses(&config.Service{Name: service, Versions: vs})})
	}
}

// writeUnavailable answers 503 for an edit the config's source could not
// take now (control.ErrUnavailable: the API server unreachable), to be
// tried again.
func writeUnavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, err)
}

// readJSON decodes the request's body, at most 1 MiB, into v, refusing
// fields v has not. The fields named in defaulted (dotted paths into the
// object) are ones whose zero stands for their default when left out, as
// in the config file: one set to zero (0, "0s", "") is refused, as the
// file refuses it, not taken for the default.
func readJSON(w http.ResponseWriter, r *http.Request, v any, defaulted ...string) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil && len(bytes.TrimSpace(data)) == 0 {
		err = fmt.Errorf("the body is empty: want a JSON object (%s)", bodyFields(v))
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil && dec.More() {
			err = errors.New("more than one JSON value in the body")
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		err = fmt.Errorf("%s: %s is not %s", te.Field, te.Value, jsonKind(te.Type))
	}
	if err == nil && len(defaulted) > 0 {
		var raw any
		_ = json.Unmarshal(data, &raw)
		for _, f := range defaulted {
			if val, ok := field(raw, f); ok && isZero(val) {
				err = fmt.Errorf("%s: %s is out of range (leave the field out for its default)", f, bytes.TrimSpace(mustJSON(val)))
				break
			}
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

// jsonKind says what a JSON value for a field of type t must be.
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[rollout.Duration]() {
		return `a duration such as "30s"`
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// field is the value at path (keys joined by dots) in v, a decoded JSON
// object.
func field(v any, path string) (any, bool) {
	for key := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
	}
	return v, true
}

// isZero reports whether v, a decoded JSON value, is a number 0, an empty
// string or list, or a duration of 0.
func isZero(v any) bool {
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case float64:
		return v == 0
	case string:
		d, err := time.ParseDuration(v)
		return v == "" || err == nil && d == 0
	}
	return false
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // a message's <token> stays as written: not HTML
	enc.Encode(v)
}

// bodyFields names the JSON fields of the struct v points to, for a
// request whose body is missing.
func bodyFields(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return "see the API's documentation"
	}
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return "fields " + strings.Join(names, ", ")
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
