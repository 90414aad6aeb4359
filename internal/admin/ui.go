package admin

import (
	_ "embed"
	"net/http"
)

// dashboard is the page /ui serves: HTML, CSS and JavaScript in one file,
// its charts drawn as hand-written SVG, nothing fetched but the admin
// API's own JSON.
//
//go:embed ui/index.html
var dashboard []byte

// ui serves the dashboard. The page asks for the admin token (kept in the
// tab's sessionStorage, or given as #token=… in the address) and polls
// /v1/services, /v1/releases and /v1/lanes every second.
func (a API) ui(mux *http.ServeMux) {
	page := func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		w.Write(dashboard)
	}
	mux.HandleFunc("GET /ui", page)
	mux.HandleFunc("GET /ui/{$}", page)
}
