package admin

import (
	"errors"
	"net/http"

	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/rollout"
)

// The progressive releases (internal/rollout): start one, list them, see
// one with its figures and history, pause, resume, abort or promote it.
func (a API) releases(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/releases", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Releases.List())
	})
	mux.HandleFunc("POST /v1/releases", func(w http.ResponseWriter, r *http.Request) {
		var spec rollout.Spec
		if !readJSON(w, r, &spec, "steps", "hold", "min_requests", "max_p99_ratio") {
			return
		}
		rel, err := a.Releases.Start(r.Context(), spec)
		writeReleaseState(w, http.StatusCreated, rel, err)
	})
	mux.HandleFunc("GET /v1/releases/{service}", func(w http.ResponseWriter, r *http.Request) {
		rel, err := a.Releases.Get(r.PathValue("service"))
		writeReleaseState(w, http.StatusOK, rel, err)
	})
	for action, do := range map[string]func(r *http.Request, service string) (*rollout.Release, error){
		"pause":   func(_ *http.Request, s string) (*rollout.Release, error) { return a.Releases.Pause(s) },
		"resume":  func(_ *http.Request, s string) (*rollout.Release, error) { return a.Releases.Resume(s) },
		"abort":   func(r *http.Request, s string) (*rollout.Release, error) { return a.Releases.Abort(r.Context(), s) },
		"promote": func(r *http.Request, s string) (*rollout.Release, error) { return a.Releases.Promote(r.Context(), s) },
	} {
		mux.HandleFunc("POST /v1/releases/{service}/"+action, func(w http.ResponseWriter, r *http.Request) {
			rel, err := do(r, r.PathValue("service"))
			writeReleaseState(w, http.StatusOK, rel, err)
		})
	}
}

func writeReleaseState(w http.ResponseWriter, status int, rel *rollout.Release, err error) {
	switch {
	case errors.Is(err, rollout.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, rollout.ErrConflict):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, rollout.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, control.ErrUnavailable):
		writeUnavailable(w, err)
	case err != nil:
		writeError(w, http.StatusUnprocessableEntity, err)
	default:
		writeJSON(w, status, rel)
	}
}
