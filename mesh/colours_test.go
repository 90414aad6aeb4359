package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/internal/control"
	"github.com/wasmesh/wasmesh/internal/dataplane"
)

// newColourer makes a colourer in mode; the eBPF mode is skipped only where
// the kernel refuses it, and never under WASMESH_REQUIRE_BPF=1.
func newColourer(t *testing.T, mode string) bpf.Colourer {
	t.Helper()
	return newColourerWith(t, bpf.Options{Mode: mode})
}

// newColourerWith is newColourer with its options.
func newColourerWith(t *testing.T, opts bpf.Options) bpf.Colourer {
	t.Helper()
	mode := opts.Mode
	c, err := bpf.New(opts)
	if err != nil {
		if os.Getenv("WASMESH_REQUIRE_BPF") == "1" || !(errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "not permitted") || strings.Contains(err.Error(), "not supported")) {
			t.Fatalf("bpf.New(%s): %v", mode, err)
		}
		t.Skipf("the kernel refuses eBPF here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serveFixture serves f's gateway on a loopback listener through Serve, so
// that connections are seen (and coloured) as in production.
func serveFixture(t *testing.T, f *fixture) string {
	url, _ := serveStoppable(t, f)
	return url
}

// serveStoppable is serveFixture with stop, which drains the gateway (as
// serve's signal does) and returns what Serve returned.
func serveStoppable(t *testing.T, f *fixture) (url string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.g.Serve(ctx, ln, nil) }()
	var once sync.Once
	var served error
	stop = func() error {
		once.Do(func() { cancel(); served = <-done })
		return served
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

func TestColours(t *testing.T) {
	payload := strings.Repeat("u", 10000)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) }))
	defer upstream.Close()
	config := `
drain_delay: 0s
services:
  split:
    versions:
      - { path: $EX/hello/rust/hello.wasm, name: stable, weight: 100 }
      - { path: $EX/hello/zig/hello.wasm, name: canary, weight: 0, dscp: 10 }
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm, dscp: 20 } ]
    env: { USERS_URL: "` + upstream.URL + `" }
    outbound: [ "` + upstream.URL + `" ]
  native:
    versions: [ { upstream: { endpoints: [ "` + upstream.URL + `" ] }, dscp: 30 } ]
routes:
  - { match: { path_prefix: /native }, service: native }
  - { match: { path_prefix: /split }, service: split }
  - { match: { path_prefix: /fe }, service: frontend }
`
	for _, mode := range []string{bpf.ModeOff, bpf.ModeRequire} {
		t.Run(mode, func(t *testing.T) {
			colourer := newColourer(t, mode)
			f := newFixtureWith(t, config, Options{Colourer: colourer})
			base := serveFixture(t, f)
			colour := func(service, name string) bpf.Colour {
				for _, v := range f.g.Config().Services[service].Versions {
					if v.Name == name || name == "" {
						return f.g.plane.Snapshot().Colours[dataplane.ColourKey(service, v.Digest)]
					}
				}
				return 0
			}
			stable, canary, fe, native := colour("split", "stable"), colour("split", "canary"), colour("frontend", ""), colour("native", "")
			if stable == 0 || canary == 0 || fe == 0 || native == 0 || stable == canary || canary == fe || fe == native {
				t.Fatalf("colours stable %d, canary %d, frontend %d, native %d: want four distinct", stable, canary, fe, native)
			}
			// One keep-alive connection carries both versions in turn.
			client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
			var conns int
			for i, pin := range []string{"canary", "stable", "canary", "stable"} {
				req, _ := http.NewRequest("GET", base+"/split/", nil)
				req.Header.Set("X-Wasmesh-Version", pin)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: %d", i, resp.StatusCode)
				}
				conns++
			}
			// An unrouted request on the same connection is not charged to
			// the version the connection last served (a pre-routing ACK aside).
			mid := counters(t, colourer)
			nf, err := client.Get(base + "/nowhere/" + strings.Repeat("n", 4000))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, nf.Body)
			nf.Body.Close()
			if grew := counters(t, colourer)[stable].EgressBytes - mid[stable].EgressBytes; nf.StatusCode != 404 || grew > 100 {
				t.Fatalf("a 404 on a connection that last served stable: status %d, stable's egress grew by %d bytes", nf.StatusCode, grew)
			}
			before := counters(t, colourer)
			resp, err := http.Get(base + "/fe/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), payload) {
				t.Fatalf("frontend: %d %.100q", resp.StatusCode, body)
			}
			after := counters(t, colourer)
			if after[stable].EgressBytes == 0 || after[canary].EgressBytes == 0 {
				t.Fatalf("counters %+v: want egress bytes for both versions of the keep-alive connection", after)
			}
			if in := after[fe].IngressBytes - before[fe].IngressBytes; in < uint64(len(payload)) {
				t.Fatalf("frontend's colour received %d bytes, want at least the %d of its http_call's response", in, len(payload))
			}
			// An upstream version's connections to its endpoints carry its
			// colour.
			before = counters(t, colourer)
			resp, err = http.Get(base + "/native/x")
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != payload {
				t.Fatalf("native: %d %.100q", resp.StatusCode, body)
			}
			if in := counters(t, colourer)[native].IngressBytes - before[native].IngressBytes; in < uint64(len(payload)) {
				t.Fatalf("the upstream version's colour received %d bytes, want at least the %d of its endpoint's answer", in, len(payload))
			}
			mode, reason, table, err := f.g.plane.Colours()
			if err != nil || len(table) != 4 || (mode != bpf.ModeEBPF && mode != bpf.ModeFallback) || reason == "" {
				t.Fatalf("Colours() = %s, %q, %+v, %v", mode, reason, table, err)
			}

			// A restart (a new gateway on the same config and store) keeps
			// the colours, even with versions listed in another order.
			data, _ := os.ReadFile(f.path)
			swapped := strings.Replace(strings.Replace(string(data), "name: stable", "name: STABLE", 1), "name: canary", "name: stable", 1)
			os.WriteFile(f.path, []byte(strings.Replace(swapped, "name: STABLE", "name: canary", 1)), 0o644)
			g2, err := New(context.Background(), Options{ConfigPath: f.path, Colourer: colourer, Logger: f.g.log})
			if err != nil {
				t.Fatal(err)
			}
			defer g2.Close(context.Background())
			if err := g2.LoadFile(context.Background()); err != nil {
				t.Fatal(err)
			}
			for k, c := range f.g.plane.Snapshot().Colours {
				if c2 := g2.plane.Snapshot().Colours[k]; c2 != c {
					t.Fatalf("after a restart %s has colour %d, was %d", k, c2, c)
				}
			}
			if _, err := os.Stat(filepath.Join(f.g.Config().Store, control.ColourFile)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUncolouredVersionUncolours: a version that got no colour (none
// left under the mark mask) takes the colour an earlier request gave its
// keep-alive connection off it: its answers are not counted as the other
// version's in the kernel.
func TestUncolouredVersionUncolours(t *testing.T) {
	const mask = 0x01000000 // one colour
	colourer := newColourerWith(t, bpf.Options{Mode: bpf.ModeRequire, MarkMask: mask})
	f := newFixtureWith(t, `
drain_delay: 0s
services:
  a: { versions: [ { path: $EX/hello/rust/hello.wasm, dscp: 10 } ] }
  b: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: /a }, service: a }
  - { match: { path_prefix: /b }, service: b }
`, Options{Colourer: colourer, MarkMask: mask})
	base := serveFixture(t, f)
	snap := f.g.plane.Snapshot()
	a := snap.Colours[dataplane.ColourKey("a", f.g.Config().Services["a"].Versions[0].Digest)]
	if b := snap.Colours[dataplane.ColourKey("b", f.g.Config().Services["b"].Versions[0].Digest)]; a != 1 || b != 0 {
		t.Fatalf("colours a %d, b %d: want 1 and none", a, b)
	}
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	get := func(path string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	get("/a/")
	before := counters(t, colourer)[a].EgressBytes
	for range 5 {
		get("/b/" + strings.Repeat("b", 100))
	}
	if grew := counters(t, colourer)[a].EgressBytes - before; grew > 100 {
		t.Errorf("five answers of b on a connection that last served a: a's egress grew by %d bytes", grew)
	}
}

// TestReusedColourCountsAfresh: a colour freed by a version and given to
// another starts the new one's figures at nothing, not at what the colour
// counted for the old one (the kernel's counters are the colour's).
func TestReusedColourCountsAfresh(t *testing.T) {
	config := `
services:
  a: { versions: [ { path: $EX/hello/%s/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: a }
`
	f := newFixtureWith(t, fmt.Sprintf(config, "rust"), Options{Colourer: newColourer(t, bpf.ModeOff)})
	base := serveFixture(t, f)
	for range 5 {
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	table := func() []dataplane.ColourStatus {
		t.Helper()
		_, _, out, err := f.g.plane.Colours()
		if err != nil || len(out) != 1 {
			t.Fatalf("Colours() = %+v, %v", out, err)
		}
		return out
	}
	if first := table()[0]; first.EgressBytes == 0 {
		t.Fatalf("the first version's counters: %+v, want its answers counted", first)
	}
	if err := f.g.Reload(context.Background(), []byte(expand(fmt.Sprintf(config, "c")))); err != nil {
		t.Fatal(err)
	}
	if now := table()[0]; now.Colour != 1 || now.EgressBytes != 0 || now.IngressBytes != 0 {
		t.Errorf("the version given the freed colour: %+v, want colour 1 and nothing counted", now)
	}
}

func counters(t *testing.T, c bpf.Colourer) map[bpf.Colour]bpf.Counter {
	t.Helper()
	m, err := c.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestColourFileSavedWhenChanged: a load that changes no version's colour
// leaves the colour file as it is; a file replaced beside the gateway is
// read again, and one removed is written again.
func TestColourFileSavedWhenChanged(t *testing.T) {
	config := `
services:
  a: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
  b: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: /a }, service: a }
`
	f := newFixtureWith(t, config, Options{Colourer: newColourer(t, bpf.ModeOff)})
	file := filepath.Join(f.g.Config().Store, control.ColourFile)
	ino := func() uint64 {
		t.Helper()
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	colours := func() map[string]bpf.Colour { return f.g.plane.Snapshot().Colours }
	first, was := colours(), ino()
	if len(first) != 2 {
		t.Fatalf("colours %v: want one for each of two versions", first)
	}
	reload := func(edit string) {
		t.Helper()
		if err := f.g.Reload(context.Background(), []byte(expand(config+edit))); err != nil {
			t.Fatal(err)
		}
	}
	reload("  - { match: { path_prefix: /b }, service: b }\n")
	if now := ino(); now != was || !maps.Equal(colours(), first) {
		t.Fatalf("a reload that changed no version: the file rewritten (inode %d, was %d), colours %v (were %v)", now, was, colours(), first)
	}
	// Swapped beside the gateway (or corrupt, or removed): the versions
	// serving keep their colours, and the file says them again.
	swapped := map[string]bpf.Colour{}
	for k, c := range first {
		swapped[k] = 3 - c
	}
	data, _ := json.Marshal(swapped)
	if err := os.WriteFile(file+".new", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	reload("  - { match: { path_prefix: /c }, service: b }\n")
	saved := func() map[string]bpf.Colour {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("the file: %v", err)
		}
		var table map[string]bpf.Colour
		if err := json.Unmarshal(data, &table); err != nil {
			t.Fatal(err)
		}
		return table
	}
	if !maps.Equal(colours(), first) || !maps.Equal(saved(), first) {
		t.Fatalf("the file replaced with %v: the load gave %v and saved %v, want %v", swapped, colours(), saved(), first)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	// A version added (its key sorts before the others'), the file gone.
	added := strings.Replace(config, "  a: {", "  0: { versions: [ { path: $EX/hello/c/hello.wasm } ] }\n  a: {", 1)
	if err := f.g.Reload(context.Background(), []byte(expand(added))); err != nil {
		t.Fatal(err)
	}
	for k, c := range first {
		if colours()[k] != c {
			t.Fatalf("the file removed and a version added: %s's colour %d, was %d (colours %v)", k, colours()[k], c, colours())
		}
	}
	if !maps.Equal(saved(), colours()) {
		t.Fatalf("the file removed, a load saved %v, want %v", saved(), colours())
	}
	reload("")
	// A table that cannot be read or written (here a directory in its
	// place) costs the colours' stability, not the load.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(file, 0o755); err != nil {
		t.Fatal(err)
	}
	reload("  - { match: { path_prefix: /d }, service: b }\n")
	if len(colours()) != 2 {
		t.Fatalf("colours %v after a load that could not save them: want one for each version", colours())
	}
}
