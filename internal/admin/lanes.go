package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/rollout"
)

// LaneSpec is a lane as the admin API reads and writes it: the fields of
// a lane in the config file (docs/config.md, lanes).
type LaneSpec struct {
	Name string `json:"name"`
	// Mode is "permissive" (the default) or "strict".
	Mode string `json:"mode,omitempty"`
	// Versions names each service's version in the lane: a version name or
	// a digest prefix.
	Versions map[string]string `json:"versions"`
	// Entry are rules as in the file: {"header": "X-Lane=v2"},
	// {"cookie": "lane=v2"}, {"share": 5, "key": "header:X-User"}.
	Entry []LaneEntrySpec `json:"entry,omitempty"`
	// Evict is the eviction: omitted for the defaults.
	Evict *EvictSpec `json:"evict,omitempty"`
}

// LaneEntrySpec is one entry rule; exactly one of Header, Cookie and
// Share is set.
type LaneEntrySpec struct {
	Header string  `json:"header,omitempty"`
	Cookie string  `json:"cookie,omitempty"`
	Share  float64 `json:"share,omitempty"`
	Key    string  `json:"key,omitempty"`
}

// EvictSpec is a lane's eviction: Off, or its settings (zero: default).
type EvictSpec struct {
	Off         bool    `json:"off,omitempty"`
	ErrorRate   float64 `json:"error_rate,omitempty"`
	Window      string  `json:"window,omitempty"`
	MinRequests int     `json:"min_requests,omitempty"`
}

// LaneStatus is one lane in GET /v1/lanes: its spec and, by service, the
// digest of its version there and whether it is evicted.
type LaneStatus struct {
	LaneSpec
	Services []LaneServiceStatus `json:"services"`
}

// LaneServiceStatus is a lane's version of one service.
type LaneServiceStatus struct {
	Service string `json:"service"`
	Version string `json:"version"`
	Evicted bool   `json:"evicted"`
}

// Lanes describes the active config's lanes, sorted by name.
func (a API) Lanes() []LaneStatus {
	st := a.Plane.Snapshot()
	if st == nil {
		return nil
	}
	out := []LaneStatus{}
	for _, l := range st.Table.Lanes() {
		ls := LaneStatus{LaneSpec: specOf(l.Lane), Services: []LaneServiceStatus{}}
		for _, svc := range l.Services() {
			ls.Services = append(ls.Services, LaneServiceStatus{Service: svc, Version: l.Version(svc).Digest, Evicted: l.Evicted(svc)})
		}
		out = append(out, ls)
	}
	return out
}

func specOf(l *config.Lane) LaneSpec {
	s := LaneSpec{Name: l.Name, Mode: "permissive", Versions: l.Versions}
	if l.Strict {
		s.Mode = "strict"
	}
	for _, e := range l.Entry {
		switch e.Kind {
		case "header":
			s.Entry = append(s.Entry, LaneEntrySpec{Header: e.Name + "=" + e.Value})
		case "cookie":
			s.Entry = append(s.Entry, LaneEntrySpec{Cookie: e.Name + "=" + e.Value})
		case "share":
			s.Entry = append(s.Entry, LaneEntrySpec{Share: e.Share, Key: e.Key.Kind + ":" + e.Key.Name})
		}
	}
	ev := l.Evict
	s.Evict = &EvictSpec{Off: ev.Off}
	if !ev.Off {
		s.Evict = &EvictSpec{ErrorRate: ev.ErrorRate, Window: ev.Window.String(), MinRequests: ev.MinRequests}
	}
	return s
}

// lane is the config's lane of s; an error names the field that is wrong.
// What the config's own validation checks (services, versions, ranges) is
// left to it.
func (s LaneSpec) lane() (*config.Lane, error) {
	l := &config.Lane{Name: s.Name, Versions: s.Versions, Evict: config.Evict{
		ErrorRate: config.DefaultEvictErrorRate, Window: config.DefaultEvictWindow, MinRequests: config.DefaultEvictMinRequests}}
	switch s.Mode {
	case "", "permissive":
	case "strict":
		l.Strict = true
	default:
		return nil, fmt.Errorf(`mode: want "permissive" or "strict", got %q`, s.Mode)
	}
	for i, e := range s.Entry {
		var le config.LaneEntry
		switch {
		case e.Header != "" && e.Cookie == "" && e.Share == 0:
			var cut bool
			le.Kind = "header"
			if le.Name, le.Value, cut = strings.Cut(e.Header, "="); !cut {
				return nil, fmt.Errorf("entry[%d].header: want NAME=VALUE, got %q", i, e.Header)
			}
		case e.Cookie != "" && e.Header == "" && e.Share == 0:
			var cut bool
			le.Kind = "cookie"
			if le.Name, le.Value, cut = strings.Cut(e.Cookie, "="); !cut {
				return nil, fmt.Errorf("entry[%d].cookie: want NAME=VALUE, got %q", i, e.Cookie)
			}
		case e.Share == 0 && e.Key != "" && e.Header == "" && e.Cookie == "":
			return nil, fmt.Errorf("entry[%d].share: must be above 0 (a percentage of the requests), got 0", i)
		case e.Share != 0 && e.Key == "" && e.Header == "" && e.Cookie == "":
			return nil, fmt.Errorf(`entry[%d].key: required with share: "header:<name>" or "cookie:<name>", what keeps a user in the lane or out of it`, i)
		case e.Share != 0 && e.Header == "" && e.Cookie == "":
			kind, name, _ := strings.Cut(e.Key, ":")
			le = config.LaneEntry{Kind: "share", Share: e.Share, Key: config.Sticky{Kind: kind, Name: name}}
		default:
			return nil, fmt.Errorf("entry[%d]: set exactly one of header, cookie or share", i)
		}
		l.Entry = append(l.Entry, le)
	}
	if ev := s.Evict; ev != nil {
		switch {
		case ev.Off:
			l.Evict = config.Evict{Off: true}
		default:
			if ev.ErrorRate != 0 {
				l.Evict.ErrorRate = ev.ErrorRate
			}
			if ev.Window != "" {
				w, err := time.ParseDuration(ev.Window)
				if err != nil {
					return nil, fmt.Errorf("evict.window: %w", err)
				}
				l.Evict.Window = w
			}
			if ev.MinRequests != 0 {
				l.Evict.MinRequests = ev.MinRequests
			}
		}
	}
	return l, nil
}

func (a API) getLanes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Lanes())
}

func (a API) getLane(w http.ResponseWriter, r *http.Request) {
	for _, l := range a.Lanes() {
		if l.Name == r.PathValue("name") {
			writeJSON(w, http.StatusOK, l)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("not found: lane %q", r.PathValue("name")))
}

// postLanes creates a lane: POST /v1/lanes with a LaneSpec.
func (a API) postLanes(w http.ResponseWriter, r *http.Request) {
	var spec LaneSpec
	if !readJSON(w, r, &spec, laneDefaulted...) {
		return
	}
	if spec.Name == "" {
		writeError(w, http.StatusBadRequest, errors.New(`the lane needs a "name"`))
		return
	}
	a.setLane(w, r, spec, true)
}

// laneDefaulted are a LaneSpec's fields whose zero stands for the default.
var laneDefaulted = []string{"evict.error_rate", "evict.window", "evict.min_requests"}

// putLane replaces a lane: PUT /v1/lanes/{name} with a LaneSpec.
func (a API) putLane(w http.ResponseWriter, r *http.Request) {
	var spec LaneSpec
	if !readJSON(w, r, &spec, laneDefaulted...) {
		return
	}
	if spec.Name == "" {
		spec.Name = r.PathValue("name")
	}
	if spec.Name != r.PathValue("name") {
		writeError(w, http.StatusBadRequest, fmt.Errorf("the body names lane %q, the path %q", spec.Name, r.PathValue("name")))
		return
	}
	a.setLane(w, r, spec, false)
}

func (a API) setLane(w http.ResponseWriter, r *http.Request, spec LaneSpec, create bool) {
	lane, err := spec.lane()
	if err == nil {
		err = a.Control.SetLane(r.Context(), lane, create)
	}
	if err != nil {
		writeError(w, laneStatus(err), err)
		return
	}
	status := http.StatusOK
	if create {
		status = http.StatusCreated
	}
	for _, l := range a.Lanes() {
		if l.Name == spec.Name {
			writeJSON(w, status, l)
			return
		}
	}
	writeJSON(w, status, spec)
}

func (a API) deleteLane(w http.ResponseWriter, r *http.Request) {
	if err := a.Control.DeleteLane(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, laneStatus(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AdmitRequest is the body of POST /v1/lanes/{name}/admit.
type AdmitRequest struct {
	Service string `json:"service"`
}

// postAdmit puts an evicted lane version back in its lane.
func (a API) postAdmit(w http.ResponseWriter, r *http.Request) {
	var req AdmitRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Service == "" {
		writeError(w, http.StatusBadRequest, errors.New(`"service" required: the service whose lane version to admit again`))
		return
	}
	if err := a.Plane.AdmitLane(r.PathValue("name"), req.Service); err != nil {
		status := http.StatusNotFound
		if errors.Is(err, dataplane.ErrNoConfig) {
			status = http.StatusServiceUnavailable
		}
		writeError(w, status, err)
		return
	}
	a.getLane(w, r)
}

func laneStatus(err error) int {
	switch {
	case errors.Is(err, control.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, control.ErrExists), errors.Is(err, control.ErrExternal), errors.Is(err, control.ErrConflict),
		errors.Is(err, rollout.ErrConflict): // a release moving its candidate in the lane
		return http.StatusConflict
	case errors.Is(err, control.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusUnprocessableEntity
}
