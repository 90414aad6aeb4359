package tests

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// variant copies the wasm module at path with a custom section appended:
// the same guest under another digest, for a second version of a service.
func variant(t *testing.T, path, name string) string {
	t.Helper()
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := append(append(binary.AppendUvarint(nil, uint64(len(name))), name...), "variant"...)
	section := append([]byte{0}, binary.AppendUvarint(nil, uint64(len(payload)))...)
	out := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(out, append(append(wasm, section...), payload...), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// laneChain is the three-service chain of the lane tests: frontend (Rust)
// calls users (Go, or Zig for v2), which calls orders (the Rust misbehave
// guest, printing its environment, or a copy of it for v2).
type laneChain struct {
	g                *gateway
	digests          map[string]string // digest → "service/version"
	ordersV2, config string
}

// The chain's services each have a baseline and a new version: frontend's
// (a copy of the Rust frontend) is in no lane.

const laneChainConfig = `
services:
  frontend:
    versions:
      - { path: $EX/frontend/rust/frontend.wasm, name: stable, weight: 100 }
      - { path: $FRONTEND_V2, name: v2, weight: 0 }
    outbound: [ "wasmesh://users" ]
  users:
    versions:
      - { path: $EX/frontend/go/frontend.wasm, name: stable, weight: 100 }
      - { path: $EX/frontend/zig/frontend.wasm, name: v2, weight: 0 }
    env: { USERS_URL: "wasmesh://orders" }
    outbound: [ "wasmesh://orders" ]
  orders:
    versions:
      - { path: $MISBEHAVE, name: stable, weight: 100 }
      - { path: $ORDERS_V2, name: v2, weight: 0 }
  forger:
    versions: [ { path: $FORGER } ]
    outbound: [ "wasmesh://orders" ]
lanes:
  v2:
    versions: { users: v2, orders: v2 }
    entry: [ { header: X-Lane=v2 }, { cookie: lane=v2 }, { share: 20, key: "header:X-User" } ]
    evict: { error_rate: 20%, window: 20s, min_requests: 10 }
  users-only:
    versions: { users: v2 }
    entry: [ { header: X-Lane=users-only } ]
  strict:
    mode: strict
    versions: { frontend: stable, users: v2 }
    entry: [ { header: X-Lane=strict } ]
routes:
  - { match: { path_prefix: /forge }, service: forger }
  - { match: { path_prefix: /orders }, service: orders, strip_prefix: true }
  - { match: { path_prefix: / }, service: frontend }
`

func newLaneChain(t *testing.T) *laneChain {
	t.Helper()
	c := &laneChain{ordersV2: variant(t, misbehave, "orders-v2")}
	frontendV2 := variant(t, repoPath("examples", "frontend", "rust", "frontend.wasm"), "frontend-v2")
	c.config = strings.NewReplacer("$MISBEHAVE", misbehave, "$ORDERS_V2", c.ordersV2, "$FRONTEND_V2", frontendV2,
		"$FORGER", testdata("forgelane.wasm")).Replace(laneChainConfig)
	c.g = serve(t, c.config)
	c.digests = map[string]string{
		fileDigest(t, repoPath("examples", "frontend", "rust", "frontend.wasm")): "frontend/stable",
		fileDigest(t, repoPath("examples", "frontend", "go", "frontend.wasm")):   "users/stable",
		fileDigest(t, repoPath("examples", "frontend", "zig", "frontend.wasm")):  "users/v2",
		fileDigest(t, misbehave):  "orders/stable",
		fileDigest(t, c.ordersV2): "orders/v2",
		fileDigest(t, frontendV2): "frontend/v2",
	}
	return c
}

// hops matches what each frontend reports of its call: the status and the
// version (X-Wasmesh-Version) that answered.
var hops = regexp.MustCompile(`-> (\d+) (\S+) `)

// get sends GET path with header (name, value pairs) through the chain and
// returns the versions of frontend, users and orders as the chain reports
// them ("-" for one that did not answer), orders' status, and the body.
func (c *laneChain) get(t *testing.T, path string, header ...string) (versions [3]string, ordersStatus string, body string) {
	t.Helper()
	status, body, h := get(t, c.g.url+path, header...)
	if status != 200 {
		t.Fatalf("GET %s %q: %d\n%s", path, header, status, body)
	}
	name := func(d string) string {
		if v, ok := c.digests[d]; ok {
			return v
		}
		return d
	}
	versions[0] = name(h.Get("X-Wasmesh-Version"))
	m := hops.FindAllStringSubmatch(body, -1)
	if len(m) != 2 {
		t.Fatalf("GET %s %q: want two hops reported, got %d:\n%s", path, header, len(m), body)
	}
	versions[1], versions[2], ordersStatus = name(m[0][2]), name(m[1][2]), m[1][1]
	return versions, ordersStatus, body
}

// TestLaneChain: a request entering a lane is served by the lane's version
// of each service on its path and by the baseline of the others; a service
// without a version in the lane serves its baseline (permissive) or 503
// (strict); a request without a lane never reaches a lane version; the
// guests read their lane; a lane a client sends without a trusted identity
// is ignored and counted. Checked from the versions the chain reports and
// from the metrics.
func TestLaneChain(t *testing.T) {
	c := newLaneChain(t)
	for i := range 30 {
		v, _, body := c.get(t, fmt.Sprintf("/?do=env&i=%d", i))
		if v != [3]string{"frontend/stable", "users/stable", "orders/stable"} {
			t.Fatalf("without a lane: %v\n%s", v, body)
		}
		if strings.Contains(body, "X_WASMESH_LANE") || strings.Contains(body, "wasmesh-lane") {
			t.Fatalf("without a lane, orders saw one:\n%s", body)
		}
	}

	tests := []struct {
		name   string
		header []string
		want   [3]string
		lane   string // what orders sees
	}{
		{"header", []string{"X-Lane", "v2"}, [3]string{"frontend/stable", "users/v2", "orders/v2"}, "v2"},
		{"cookie", []string{"Cookie", "lane=v2"}, [3]string{"frontend/stable", "users/v2", "orders/v2"}, "v2"},
		{"permissive fallback", []string{"X-Lane", "users-only"}, [3]string{"frontend/stable", "users/v2", "orders/stable"}, "users-only"},
		{"untrusted baggage", []string{"Baggage", "wasmesh-lane=v2,team=a"}, [3]string{"frontend/stable", "users/stable", "orders/stable"}, ""},
		{"entry beats a client's baggage", []string{"X-Lane", "users-only", "Baggage", "wasmesh-lane=v2"}, [3]string{"frontend/stable", "users/v2", "orders/stable"}, "users-only"},
		{"malformed baggage", []string{"Baggage", "team=a, wasmesh-lane=v2;;;=x"}, [3]string{"frontend/stable", "users/stable", "orders/stable"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 5 {
				v, status, body := c.get(t, "/?do=env", tt.header...)
				if v != tt.want || status != "200" {
					t.Fatalf("versions %v (orders %s), want %v\n%s", v, status, tt.want, body)
				}
				wantEnv := "\nX_WASMESH_LANE=" + tt.lane + "\n"
				if got := strings.Contains(body, wantEnv); got != (tt.lane != "") || (tt.lane == "" && strings.Contains(body, "X_WASMESH_LANE")) {
					t.Fatalf("orders' environment: want lane %q\n%s", tt.lane, body)
				}
				if tt.lane != "" && !regexp.MustCompile(`\nHTTP_BAGGAGE=[^\n]*wasmesh-lane=`+regexp.QuoteMeta(tt.lane)+`\b`).MatchString(body) {
					t.Fatalf("orders' baggage lacks the lane:\n%s", body)
				}
				if tt.lane == "" && strings.Contains(body, "wasmesh-lane") {
					t.Fatalf("outside a lane, orders saw a lane in its baggage:\n%s", body)
				}
				if tt.name == "untrusted baggage" && !strings.Contains(body, "team=a") {
					t.Fatalf("the client's other baggage was not kept:\n%s", body)
				}
			}
		})
	}

	// A client's lane hidden in baggage the parser refuses (malformed, or
	// past its 8 KiB) reaches the first guest no more than a valid one.
	for name, value := range map[string]string{
		"malformed": "team=a, wasmesh-lane=v2;;;=x",
		"oversized": strings.Repeat("k=v,", 2100) + "wasmesh-lane=v2",
	} {
		status, body, h := get(t, c.g.url+"/orders/?do=env", "Baggage", value)
		if status != 200 || strings.Contains(body, "wasmesh-lane") || c.digests[h.Get("X-Wasmesh-Version")] != "orders/stable" {
			t.Fatalf("%s baggage: %d from %s\n%.2000s", name, status, h.Get("X-Wasmesh-Version"), body)
		}
	}

	// Strict: frontend and users have versions in the lane, orders none.
	v, status, body := c.get(t, "/?do=env", "X-Lane", "strict")
	if v != [3]string{"frontend/stable", "users/v2", "-"} || status != "503" ||
		!strings.Contains(body, `lane "strict" has no version of service "orders"`) {
		t.Fatalf("strict lane: versions %v, orders %s\n%s", v, status, body)
	}

	_, metrics, _ := get(t, c.g.admin+"/metrics")
	for _, want := range []string{
		`wasmesh_lane_requests_total{lane="v2",result="lane",service="users"} 10`,
		`wasmesh_lane_requests_total{lane="v2",result="lane",service="orders"} 10`,
		`wasmesh_lane_requests_total{lane="v2",result="baseline",service="frontend"} 10`,
		`wasmesh_lane_requests_total{lane="users-only",result="baseline",service="orders"} 10`,
		`wasmesh_lane_requests_total{lane="strict",result="refused",service="orders"} 1`,
		`wasmesh_lane_untrusted_total 17`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !regexp.MustCompile(`wasmesh_requests_total\{lane="v2",route="wasmesh://orders",service="orders",status="2xx",version="[0-9a-f]{12}"\} 10\n`).MatchString(metrics) {
		t.Errorf("wasmesh_requests_total has no lane series for orders:\n%s", grepLines(metrics, "wasmesh_requests_total"))
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLaneCannotBeForged: a guest that sets its own baggage (another lane)
// and an entry rule's header on its call changes nothing: the host carries
// the request's lane, and only the edge applies entry rules.
func TestLaneCannotBeForged(t *testing.T) {
	c := newLaneChain(t)
	for _, tt := range []struct {
		header []string
		want   string // orders' version
		lane   string
	}{
		{nil, "orders/stable", ""},
		{[]string{"X-Lane", "v2"}, "orders/v2", "v2"},
		{[]string{"X-Lane", "users-only"}, "orders/stable", "users-only"},
	} {
		status, body, _ := get(t, c.g.url+"/forge", tt.header...)
		m := regexp.MustCompile(`(?i)\nX-Wasmesh-Version: (\S+)\n`).FindStringSubmatch(body)
		if status != 200 || m == nil || c.digests[m[1]] != tt.want {
			t.Fatalf("lane %q: %d, orders answered from %v, want %s\n%s", tt.lane, status, m, tt.want, body)
		}
		if strings.Contains(body, "forged") {
			t.Errorf("lane %q: the guest's baggage reached orders:\n%s", tt.lane, body)
		}
		if got := strings.Contains(body, "\nX_WASMESH_LANE="+tt.lane+"\n"); got != (tt.lane != "") {
			t.Errorf("lane %q: orders' environment:\n%s", tt.lane, body)
		}
	}
}

// TestLaneEviction: a lane version failing 30% of its requests is evicted
// within the window (error rate 20%, at least 10 requests); from then on no
// request of the lane reaches it, until it is admitted again.
func TestLaneEviction(t *testing.T) {
	c := newLaneChain(t)
	v2 := fileDigest(t, c.ordersV2)
	evictedAt := -1
	for i := range 100 {
		path := "/orders/?do=env"
		if i%10 < 3 {
			path = "/orders/?do=status&arg=500"
		}
		status, _, h := get(t, c.g.url+path, "X-Lane", "v2")
		if h.Get("X-Wasmesh-Version") != v2 {
			evictedAt = i
			break
		}
		if want := 200; i%10 < 3 {
			if status != 500 {
				t.Fatalf("request %d: %d, want 500", i, status)
			}
		} else if status != want {
			t.Fatalf("request %d: %d", i, status)
		}
	}
	if evictedAt < 0 || evictedAt > 40 {
		t.Fatalf("orders v2 evicted after %d requests, want within the first 40", evictedAt)
	}
	for i := range 20 {
		if _, _, h := get(t, c.g.url+"/orders/?do=env", "X-Lane", "v2"); h.Get("X-Wasmesh-Version") == v2 {
			t.Fatalf("request %d after the eviction reached the evicted version", i)
		}
	}
	if got := metric(t, c.g, `wasmesh_lane_evicted{lane="v2",service="orders"}`); got != "1" {
		t.Errorf("wasmesh_lane_evicted = %q, want 1", got)
	}
	if got := metric(t, c.g, `wasmesh_lane_evictions_total{lane="v2",service="orders"}`); got != "1" {
		t.Errorf("wasmesh_lane_evictions_total = %q, want 1", got)
	}
	if s := c.g.p.stderr.String(); !strings.Contains(s, "lane version evicted") || !strings.Contains(s, "over the error rate 20%") {
		t.Errorf("no eviction log line with its reason:\n%s", s)
	}
	// users v2 (the other service of the lane) is not evicted.
	if v, _, body := c.get(t, "/?do=env", "X-Lane", "v2"); v[1] != "users/v2" || v[2] != "orders/stable" {
		t.Errorf("after orders' eviction: %v\n%s", v, body)
	}

	// Taking orders out of the lane leaves no eviction to show; putting the
	// same version back finds it still evicted, until it is admitted.
	admin := "--admin=" + strings.TrimPrefix(c.g.admin, "http://")
	ok(t, opts{}, "lane", "update", "v2", "--version", "orders=", admin)
	if got := metric(t, c.g, `wasmesh_lane_evicted{lane="v2",service="orders"}`); got == "1" {
		t.Errorf("wasmesh_lane_evicted = 1 for a lane without orders")
	}
	ok(t, opts{}, "lane", "update", "v2", "--version", "orders=v2", admin)
	if got := metric(t, c.g, `wasmesh_lane_evicted{lane="v2",service="orders"}`); got != "1" {
		t.Errorf("orders v2 back in the lane: wasmesh_lane_evicted = %q, want 1 (still evicted)", got)
	}
	if _, _, h := get(t, c.g.url+"/orders/?do=env", "X-Lane", "v2"); h.Get("X-Wasmesh-Version") == v2 {
		t.Errorf("orders v2 put back in the lane was served before it was admitted")
	}
	ok(t, opts{}, "lane", "admit", "v2", "orders", admin)
	if _, _, h := get(t, c.g.url+"/orders/?do=env", "X-Lane", "v2"); h.Get("X-Wasmesh-Version") != v2 {
		t.Errorf("after admit: answered from %s", h.Get("X-Wasmesh-Version"))
	}
	if got := metric(t, c.g, `wasmesh_lane_evicted{lane="v2",service="orders"}`); got != "0" {
		t.Errorf("after admit: wasmesh_lane_evicted = %q, want 0", got)
	}
}

// TestLaneReloadUnderLoad: rewriting the lanes of the config while requests
// in lanes go on loses none of them, and the new lanes apply.
func TestLaneReloadUnderLoad(t *testing.T) {
	c := newLaneChain(t)
	var stop atomic.Bool
	var failed atomic.Int64
	var served atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	client := &http.Client{Timeout: 20 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lane := []string{"v2", "users-only", "", "v2"}[w]
			for !stop.Load() {
				req, _ := http.NewRequest("GET", c.g.url+"/?do=env", nil)
				if lane != "" {
					req.Header.Set("X-Lane", lane)
				}
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, resp.Status)
					mu.Unlock()
				}
				served.Add(1)
			}
		}()
	}
	// Alternate orders' lane version between v2 and stable, and drop and
	// restore the lane users-only, five times each.
	data, err := os.ReadFile(c.g.config)
	if err != nil {
		t.Fatal(err)
	}
	original := string(data)
	changed := strings.Replace(original, "versions: { users: v2, orders: v2 }", "versions: { users: v2, orders: stable }", 1)
	changed = strings.Replace(changed, "  users-only:\n    versions: { users: v2 }\n    entry: [ { header: X-Lane=users-only } ]\n", "", 1)
	if changed == original || strings.Count(changed, "users-only") != 0 {
		t.Fatal("the test's config edit did not apply")
	}
	before := metric(t, c.g, `wasmesh_config_reload_total{result="success"}`)
	for i := range 10 {
		next := changed
		if i%2 == 1 {
			next = original
		}
		writeAtomic(t, c.g.config, next)
		time.Sleep(300 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during reloads: %q", failed.Load(), served.Load(), failures[:min(len(failures), 5)])
	}
	after := metric(t, c.g, `wasmesh_config_reload_total{result="success"}`)
	if before == after {
		t.Fatalf("no reload happened (%s → %s)", before, after)
	}
	// The last config written is the original: orders v2 is back in lane v2.
	poll(t, "orders v2 back in lane v2 after the last reload", func() bool {
		v, _, _ := c.get(t, "/?do=env", "X-Lane", "v2")
		return v[2] == "orders/v2"
	})
	t.Logf("%d requests during 10 reloads (%s → %s successful reloads)", served.Load(), before, after)
}

// writeAtomic replaces the file at path with data by a rename, as editors
// and config management do.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestLaneCLI: lanes are created, listed, shown, updated and deleted with
// `wasmesh lane` through the admin API; each change is written back to the
// config file and serves at once; a lane the config would refuse is
// refused with the reason, and nothing changes.
func TestLaneCLI(t *testing.T) {
	c := newLaneChain(t)
	admin := "--admin=" + strings.TrimPrefix(c.g.admin, "http://")
	r := ok(t, opts{}, "lane", "create", "beta", "--version", "orders=v2", "--header", "X-Lane=beta", "--mode", "strict", "--evict", "off", admin)
	if !strings.Contains(r.stdout, "beta") || !strings.Contains(r.stdout, "orders") || !strings.Contains(r.stdout, "strict") {
		t.Fatalf("lane create printed:\n%s", r.stdout)
	}
	data, _ := os.ReadFile(c.g.config)
	if !strings.Contains(string(data), "beta:") || !strings.Contains(string(data), "X-Lane=beta") {
		t.Fatalf("the config file lacks lane beta:\n%s", data)
	}
	// Strict, and frontend has no version in it: 503.
	if status, body, _ := get(t, c.g.url+"/?do=env", "X-Lane", "beta"); status != 503 || !strings.Contains(body, `lane "beta" has no version of service "frontend"`) {
		t.Fatalf("strict lane beta: %d %q", status, body)
	}
	ok(t, opts{}, "lane", "update", "beta", "--mode", "permissive", admin)
	if v, _, body := c.get(t, "/?do=env", "X-Lane", "beta"); v != [3]string{"frontend/stable", "users/stable", "orders/v2"} {
		t.Fatalf("after the update: %v\n%s", v, body)
	}
	r = ok(t, opts{}, "lane", "list", admin)
	for _, want := range []string{"beta", "permissive", "v2", "users-only", "strict", "header X-Lane=beta"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lane list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = ok(t, opts{}, "lane", "show", "beta", "-o", "json", admin)
	if !strings.Contains(r.stdout, `"mode": "permissive"`) || !strings.Contains(r.stdout, `"off": true`) {
		t.Errorf("lane show -o json:\n%s", r.stdout)
	}
	if r := wasmesh(t, opts{}, "lane", "update", "beta", "--version", "orders=v9", admin); r.code == 0 ||
		!strings.Contains(r.stderr, `service "orders" has no version "v9"`) {
		t.Fatalf("an update to an unknown version: exit %d, %q", r.code, r.stderr)
	}
	if r := wasmesh(t, opts{}, "lane", "create", "beta", "--version", "orders=v2", admin); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("creating lane beta twice: exit %d, %q", r.code, r.stderr)
	}
	if v, _, _ := c.get(t, "/?do=env", "X-Lane", "beta"); v[2] != "orders/v2" {
		t.Fatalf("a refused update changed the lane: %v", v)
	}
	// A 0 is refused, as the file refuses it, not taken for the default
	// that leaving the value out gives.
	for _, tc := range []struct{ flag, want string }{
		{"--evict=0.5,5s,0", "min requests"},
		{"--evict=0,5s,20", "error rate"},
		{"--share=0:header:X-User", "above 0"},
		{"--header=nohdr", `--header "nohdr": want NAME=VALUE`},
	} {
		if r := wasmesh(t, opts{}, "lane", "create", "zero", "--version", "orders=v2", tc.flag, admin); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("lane create %s: exit %d, %q; want 2 and %q", tc.flag, r.code, r.stderr, tc.want)
		}
	}
	// An upload that is no WebAssembly is refused at its first bytes.
	if status, b := adminPost(t, c.g, "/v1/artifacts", "GIF89a"+strings.Repeat("x", 1<<20)); status != 422 || !strings.Contains(b, "not a WebAssembly binary") {
		t.Errorf("POST /v1/artifacts of a GIF: %d %s", status, b)
	}
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"name":"zero","versions":{"orders":"v2"},"evict":{"error_rate":0}}`, 400, "evict.error_rate: 0 is out of range"},
		{`{"name":"zero","versions":{"orders":"v2"},"evict":{"min_requests":0}}`, 400, "evict.min_requests: 0 is out of range"},
		{`{"name":"zero","versions":{"orders":"v2"},"evict":{"window":"0s"}}`, 400, `evict.window: \"0s\" is out of range`},
		{`{"name":"zero","entry":[{"share":0,"key":"header:X-User"}]}`, 422, "entry[0].share: must be above 0"},
		{`{"name":"zero","entry":[{"header":"nohdr"}]}`, 422, `entry[0].header: want NAME=VALUE, got \"nohdr\"`},
		{`{"name":"zero","entry":[{"share":5}]}`, 422, `entry[0].key: required with share`},
		{`{"name":"zero","versions":{"orders":"v2"}} {"name":"other"}`, 400, "more than one JSON value"},
		{`{"name":"zero","versions":{"orders":"v2"},"evict":{"min_requests":null}}`, 201, ""}, // null is left out: the default
	} {
		status, b := adminPost(t, c.g, "/v1/lanes", tc.body)
		if status != tc.status || !strings.Contains(b, tc.want) {
			t.Errorf("POST /v1/lanes %s: %d %s; want %d and %q", tc.body, status, b, tc.status, tc.want)
		}
		if status == 201 {
			ok(t, opts{}, "lane", "delete", "zero", admin)
		}
	}
	// A lane with no version here (an edge that only enters it) is listed.
	ok(t, opts{}, "lane", "create", "edge", "--header", "X-Lane=edge", admin)
	if r := ok(t, opts{}, "lane", "list", admin); !regexp.MustCompile(`\nedge +permissive +- +- +- +header X-Lane=edge\n`).MatchString(r.stdout) {
		t.Errorf("lane list does not show lane edge:\n%s", r.stdout)
	}
	ok(t, opts{}, "lane", "delete", "beta", admin)
	if data, _ := os.ReadFile(c.g.config); strings.Contains(string(data), "beta") {
		t.Fatalf("the config file still has lane beta:\n%s", data)
	}
	if v, _, _ := c.get(t, "/?do=env", "X-Lane", "beta"); v != [3]string{"frontend/stable", "users/stable", "orders/stable"} {
		t.Fatalf("after the delete: %v", v)
	}
	if r := wasmesh(t, opts{}, "lane", "admit", "beta", "orders", admin); r.code == 0 || !strings.Contains(r.stderr, `not found: lane "beta"`) {
		t.Fatalf("admit into a deleted lane: exit %d, %q", r.code, r.stderr)
	}
	if status, b := adminPost(t, c.g, "/v1/lanes/edge/admit", `{}`); status != 400 || !strings.Contains(b, `required: the service whose lane version`) {
		t.Errorf("admit with no service: %d %s, want 400 saying it is required", status, b)
	}
	if status, b := adminPost(t, c.g, "/v1/services/orders/deploy", `{"weight":5}`); status != 400 || !strings.Contains(b, `required: a digest or prefix`) {
		t.Errorf("deploy with no module: %d %s, want 400 saying it is required", status, b)
	}
}

// TestLaneAcrossGateways: a lane entered at gateway A crosses to gateway B
// over mTLS in the baggage A's host sets, and B honours it because A is in
// its lane_peers; the same baggage sent to B by a client with an SVID that
// is not there is ignored and counted.
func TestLaneAcrossGateways(t *testing.T) {
	ca := newPKI(t, "example.org")
	a, b, alice := ca.issue(t, idA, "a"), ca.issue(t, idB, "b"), ca.issue(t, idAlice, "alice")
	envV2 := variant(t, misbehave, "env-v2")
	gb := serveMTLS(t, tlsBlock(b)+`
services:
  env:
    versions:
      - { path: `+misbehave+`, name: stable, weight: 100 }
      - { path: `+envV2+`, name: v2, weight: 0 }
    allow_peers: [ "`+idA+`", "`+idAlice+`" ]
lane_peers: [ "`+idA+`" ]
lanes:
  v2: { versions: { env: v2 }, entry: [ { header: X-Lane=v2 } ] }
routes:
  - { match: { path_prefix: / }, service: env }
`)
	ga := serveMTLS(t, tlsBlock(a)+frontendCalling(gb.url)+`
lanes:
  v2: { entry: [ { header: X-Lane=v2 } ] }
routes:
  - { match: { path_prefix: / }, service: frontend }
`)
	stable, v2 := fileDigest(t, misbehave), fileDigest(t, envV2)
	toA := svidClient(t, alice, idA, false)
	for _, tt := range []struct {
		header  []string
		version string
		lane    string
	}{{nil, stable, ""}, {[]string{"X-Lane", "v2"}, v2, "v2"}} {
		status, body := getWith(t, toA, ga.url+"/?do=env", tt.header...)
		if status != 200 || !strings.Contains(body, "-> 200 "+tt.version+" ") {
			t.Fatalf("lane %q through A: %d, want B's env %s\n%s\nA:\n%s\nB:\n%s", tt.lane, status, tt.version, body, ga.stderr, gb.stderr)
		}
		if got := strings.Contains(body, "\nX_WASMESH_LANE="+tt.lane+"\n"); got != (tt.lane != "") {
			t.Errorf("lane %q: B's guest environment:\n%s", tt.lane, body)
		}
	}
	gb.logged(t, "service=env", "lane=v2", "peer_id="+idA)

	// The lane's version has its own colour on B, and its counters moved.
	h, hv := adminAuth(t)
	_, cbody, _ := get(t, gb.admin+"/v1/colours", h, hv)
	var colours struct {
		Mode    string
		Colours []struct {
			Service, Version string
			Colour           int
			EgressBytes      uint64
		}
	}
	if err := json.Unmarshal([]byte(cbody), &colours); err != nil {
		t.Fatalf("/v1/colours: %v\n%s", err, cbody)
	}
	found := false
	for _, c := range colours.Colours {
		if c.Service == "env" && c.Version == v2 {
			found = c.Colour != 0 && c.EgressBytes > 0
		}
	}
	if !found {
		t.Errorf("B's colours (mode %s) have no coloured, counted entry for env's lane version %s:\n%s", colours.Mode, v2, cbody)
	}

	// A request from A that carries no lane is in none at B: the entry
	// rules are for clients, so a guest at A cannot steer its calls into a
	// lane with a header.
	if status, body := getWith(t, svidClient(t, a, idB, false), gb.url+"/?do=env", "X-Lane", "v2"); status != 200 || strings.Contains(body, "X_WASMESH_LANE") {
		t.Fatalf("A's request without a lane entered one at B by a header: %d\n%s", status, body)
	}
	// alice, a client, enters it so.
	if status, body := getWith(t, svidClient(t, alice, idB, false), gb.url+"/?do=env", "X-Lane", "v2"); status != 200 || !strings.Contains(body, "\nX_WASMESH_LANE=v2\n") {
		t.Fatalf("alice's X-Lane at B: %d\n%s", status, body)
	}

	// alice is allowed to call B, not to steer it into a lane.
	status, body := getWith(t, svidClient(t, alice, idB, false), gb.url+"/?do=env", "Baggage", "wasmesh-lane=v2")
	if status != 200 || strings.Contains(body, "X_WASMESH_LANE") || strings.Contains(body, "wasmesh-lane") {
		t.Fatalf("alice's lane was honoured by B: %d\n%s", status, body)
	}
	_, metrics, _ := get(t, gb.admin+"/metrics")
	if !strings.Contains(metrics, "\nwasmesh_lane_untrusted_total 1\n") {
		t.Errorf("B did not count alice's lane: %s", grepLines(metrics, "wasmesh_lane"))
	}
	if !strings.Contains(metrics, `wasmesh_lane_requests_total{lane="v2",result="lane",service="env"} 2`+"\n") {
		t.Errorf("B's lane metrics: %s", grepLines(metrics, "wasmesh_lane"))
	}
}

// getWith sends GET url with c and header (name, value pairs) and returns
// the status and body.
func getWith(t *testing.T, c *http.Client, url string, header ...string) (int, string) {
	t.Helper()
	return sendWith(t, c, "GET", url, "", header...)
}

// sendWith sends a request with c, body and header (name, value pairs) and
// returns the status and body.
func sendWith(t *testing.T, c *http.Client, method, url, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLaneShareOnReplicas: of 10,000 users, 20% ± 1% enter lane v2 by the
// share rule, each the same on two replicas of the gateway (two processes
// of the same config); and a user in the lane is on its version of every
// service of the chain (checked for 300 of them).
func TestLaneShareOnReplicas(t *testing.T) {
	c := newLaneChain(t)
	other := &laneChain{g: serve(t, c.config), digests: c.digests}
	const n = 10000
	var in atomic.Int64
	keys := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	lane := func(base, user string) (bool, error) {
		req, _ := http.NewRequest("GET", base+"/orders/?do=env", nil)
		req.Header.Set("X-User", user)
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			return false, fmt.Errorf("%s: %d %v", base, resp.StatusCode, err)
		}
		inLane := strings.Contains(string(b), "\nX_WASMESH_LANE=v2\n")
		if inLane != (c.digests[resp.Header.Get("X-Wasmesh-Version")] == "orders/v2") {
			return false, fmt.Errorf("%s: %s in lane %v but answered by %s", base, user, inLane, resp.Header.Get("X-Wasmesh-Version"))
		}
		return inLane, nil
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				user := fmt.Sprintf("user-%d", i)
				a, err := lane(c.g.url, user)
				b, err2 := lane(other.g.url, user)
				if err == nil {
					err = err2
				}
				if err == nil && a != b {
					err = fmt.Errorf("%s: in the lane %v on one replica, %v on the other", user, a, b)
				}
				if err != nil {
					select {
					case errs <- err.Error():
					default:
					}
					return
				}
				if a {
					in.Add(1)
				}
			}
		}()
	}
	for i := range n {
		keys <- i
		if len(errs) > 0 {
			break
		}
	}
	close(keys)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	share := 100 * float64(in.Load()) / n
	if share < 19 || share > 21 {
		t.Errorf("%.2f%% of users entered the lane, want 20%% ± 1%%", share)
	}
	t.Logf("%.2f%% of %d users in the lane, each the same on both replicas", share, n)
	for i := range 300 {
		user := fmt.Sprintf("user-%d", i)
		a, _, body := c.get(t, "/?do=env", "X-User", user)
		switch a {
		case [3]string{"frontend/stable", "users/v2", "orders/v2"}:
			if !strings.Contains(body, "\nX_WASMESH_LANE=v2\n") {
				t.Fatalf("%s is in the lane, but orders does not say so:\n%s", user, body)
			}
		case [3]string{"frontend/stable", "users/stable", "orders/stable"}:
		default:
			t.Fatalf("%s: versions %v: half in the lane", user, a)
		}
	}
}
