package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/rollout"
)

// countingUpstream is a native upstream that counts its requests, fails
// failPct percent of them with 500, and takes delay to answer each.
func countingUpstream(t *testing.T, name string, failPct int, delay time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(delay)
		if rand.IntN(100) < failPct {
			http.Error(w, name+" failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s ok", name)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// steady sends GETs to url (with Host host, unless "", and the header
// fields given as name, value pairs), one after the other 2 ms apart,
// until the test ends.
func steady(t *testing.T, url, host string, header ...string) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			req, _ := http.NewRequest("GET", url, nil)
			if host != "" {
				req.Host = host
			}
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// releaseOf reads the release of service through the CLI.
func releaseOf(t *testing.T, g *gateway, service string) rollout.Release {
	t.Helper()
	rel, found := findRelease(t, g, service)
	if !found {
		t.Fatalf("no release of %s", service)
	}
	return rel
}

// findRelease reads the release of service through the CLI, if it has
// one.
func findRelease(t *testing.T, g *gateway, service string) (rollout.Release, bool) {
	t.Helper()
	r := wasmesh(t, opts{}, "release", "status", service, "-o", "json", "--admin="+strings.TrimPrefix(g.admin, "http://"))
	if r.code != 0 && strings.Contains(r.stderr, "no release of service") {
		return rollout.Release{}, false
	}
	var rels []rollout.Release
	if err := json.Unmarshal([]byte(r.stdout), &rels); err != nil || len(rels) != 1 {
		t.Fatalf("release status %s: exit %d, %v\n%s%s", service, r.code, err, r.stdout, r.stderr)
	}
	return rels[0], true
}

// waitRelease waits until the release of service is in phase, and returns
// it.
func waitRelease(t *testing.T, g *gateway, service, phase string, within time.Duration) rollout.Release {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rel, found := findRelease(t, g, service)
		if !found && time.Now().Before(deadline) { // not started yet (a release the config declares)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if rel.Phase == phase {
			return rel
		}
		if time.Now().After(deadline) || (rel.Phase != rollout.Running && rel.Phase != rollout.Paused) {
			t.Fatalf("release of %s: %s at step %d after %s, want %s; history %+v", service, rel.Phase, rel.Step, within, phase, rel.History)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReleases: three releases under load, each candidate an upstream
// version against the same kind of baseline: a good candidate reaches 100%
// on its own; one that fails 20% of its requests and one 5× slower (here
// far more) are rolled back, saying which check failed, and get no request
// after; while a release runs, a deploy to its service and a second
// release are refused with the reason, as are bad releases.
func TestReleases(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, time.Millisecond)
	good, _ := countingUpstream(t, "good", 0, time.Millisecond)
	bad, badHits := countingUpstream(t, "bad", 20, time.Millisecond)
	slow, slowHits := countingUpstream(t, "slow", 0, 25*time.Millisecond)
	services := ""
	for _, s := range []struct{ name, candidate string }{{"good", good.URL}, {"bad", bad.URL}, {"slow", slow.URL}} {
		services += fmt.Sprintf(`
  %s:
    versions:
      - { upstream: { endpoints: [ "%s" ] }, name: v1, weight: 100 }
      - { upstream: { endpoints: [ "%s" ], retries: { attempts: 0 } }, name: v2, weight: 0 }`, s.name, base.URL, s.candidate)
	}
	recv := newOTLPReceiver(t)
	g := serve(t, "services:"+services+`
routes:
  - { match: { path_prefix: /good }, service: good }
  - { match: { path_prefix: /bad }, service: bad }
  - { match: { path_prefix: /slow }, service: slow }
`, recv.env()...)
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	for _, path := range []string{"/good", "/bad", "/slow"} {
		steady(t, g.url+path+"/x", "")
		steady(t, g.url+path+"/x", "")
	}

	// Bad input, refused with the reason.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "start", "good", "v9"}, `"v9" is not a version of service "good"`},
		{[]string{"release", "start", "nowhere", "v2"}, `service "nowhere"`},
		{[]string{"release", "start", "good", "v2", "--steps", "50,20,100"}, "steps must increase"},
		{[]string{"release", "start", "good", "v2", "--steps", "10,50"}, "the last step must be 100"},
		{[]string{"release", "start", "good", "v2", "--max-error-rate", "lots"}, "neither a fraction"},
		{[]string{"release", "start", "good", "v2", "--webhook", "ftp://hooks"}, `webhook must be an http(s) URL, got "ftp://hooks"`},
		// A 0 is refused, not taken for the default that leaving it out gives.
		{[]string{"release", "start", "good", "v2", "--min-requests", "0"}, "--min-requests 0: must be at least 1"},
		{[]string{"release", "start", "good", "v2", "--hold", "0s"}, "--hold 0s: must be at least 100ms"},
		{[]string{"release", "start", "good", "v2", "--max-p99-ratio", "0"}, "--max-p99-ratio 0: must be at least 1"},
	} {
		r := wasmesh(t, opts{}, append(c.args, admin)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("wasmesh %s: exit %d, stderr %q; want it refused with %q", strings.Join(c.args, " "), r.code, r.stderr, c.want)
		}
	}
	for _, field := range []string{`"min_requests":0`, `"hold":"0s"`, `"max_p99_ratio":0`, `"steps":[]`} {
		status, b := adminPost(t, g, "/v1/releases", `{"service":"good","version":"v2",`+field+`}`)
		if name, _, _ := strings.Cut(field, ":"); status != 400 || !strings.Contains(b, strings.Trim(name, `"`)+": ") {
			t.Errorf("POST /v1/releases with %s: %d %s; want 400 naming the field", field, status, b)
		}
	}

	// The good release's events go to a webhook, which fails its first
	// call (tried again).
	var hookMu sync.Mutex
	var hooked []string
	var hookCalls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hookCalls.Add(1) == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		var ev rollout.WebhookEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev.Service != "good" {
			t.Errorf("webhook got %+v, %v", ev, err)
		}
		hookMu.Lock()
		hooked = append(hooked, fmt.Sprintf("%s@%d", ev.Kind, ev.Weight))
		hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)
	for _, s := range []string{"good", "bad", "slow"} {
		// Only slow's release is judged on latency: the p99 of a few
		// hundred requests is their third slowest, and a few stalls of
		// the machine on a good candidate's would put it 3x its
		// baseline's by chance.
		hold, p99 := "1s", "1000"
		if s == "slow" {
			hold, p99 = "4s", "3" // p99 is judged at the hold's end, on 100 requests of each at least
		}
		args := []string{"release", "start", s, "v2", "--steps", "20,50,100", "--hold", hold, "--min-requests", "40",
			"--max-error-rate", "5%", "--max-error-rate-above", "2%", "--max-p99-ratio", p99, admin}
		if s == "good" {
			args = append(args, "--webhook", hook.URL)
		}
		ok(t, opts{}, args...)
	}
	// A release in progress owns its service.
	if r := wasmesh(t, opts{}, "rollback", "good", admin); r.code == 0 || !strings.Contains(r.stderr, "has a release running") {
		t.Errorf("rollback during a release: exit %d, %q", r.code, r.stderr)
	}
	if r := wasmesh(t, opts{}, "release", "start", "good", "v2", admin); r.code == 0 || !strings.Contains(r.stderr, "has a release running") {
		t.Errorf("a second release: exit %d, %q", r.code, r.stderr)
	}

	rel := waitRelease(t, g, "good", rollout.Promoted, 60*time.Second)
	if last := rel.History[len(rel.History)-1]; last.Kind != rollout.Promoted || last.Weight != 100 {
		t.Errorf("good: last event %+v", last)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hookMu.Lock()
		got := strings.Join(hooked, " ")
		hookMu.Unlock()
		if strings.Contains(got, "started@20") && strings.Contains(got, "step@50") && strings.Contains(got, "promoted@100") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the webhook got %q, want started@20, step@50 and promoted@100", got)
			break
		}
	}
	for _, c := range []struct {
		service, check string
		hits           *atomic.Int64
	}{{"bad", "error rate", badHits}, {"slow", "p99", slowHits}} {
		rel := waitRelease(t, g, c.service, rollout.RolledBack, 60*time.Second)
		last := rel.History[len(rel.History)-1]
		if last.Weight != 0 || !strings.Contains(last.Reason, c.check) || last.Figure == nil {
			t.Errorf("%s: rolled back with %+v, want the %s check named with its figures", c.service, last, c.check)
		}
		time.Sleep(300 * time.Millisecond) // requests in flight at the rollback end
		before := c.hits.Load()
		time.Sleep(time.Second)
		if after := c.hits.Load(); after != before {
			t.Errorf("%s: the candidate got %d requests after its rollback", c.service, after-before)
		}
	}
	// Every event is a span too (exported over OTLP).
	poll(t, "a span per release event", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		n := 0
		for _, s := range recv.spans {
			if s.name == "wasmesh.release" {
				n++
			}
		}
		return n >= 7 // good: started, step, promoted; bad and slow: started, rolled back
	})
	if n := metric(t, g, `wasmesh_release_events_total{kind="rolled_back",service="bad"}`); n != "1" {
		t.Errorf("wasmesh_release_events_total for bad's rollback: %q", n)
	}
	// Rolled back, the split from before the release is back; over, the
	// service takes a release again, and an abort puts the split back too.
	if w := weightsInFile(t, g.config, "bad"); w != "v1=100 v2=0" {
		t.Errorf("bad's weights after its rollback: %s, want v1=100 v2=0", w)
	}
	ok(t, opts{}, "release", "start", "bad", "v2", "--steps", "30,100", "--hold", "1h", "--min-requests", "100000", admin)
	if w := weightsInFile(t, g.config, "bad"); w != "v1=70 v2=30" {
		t.Errorf("bad's weights in a new release: %s, want v1=70 v2=30", w)
	}
	ok(t, opts{}, "release", "abort", "bad", admin)
	if w := weightsInFile(t, g.config, "bad"); w != "v1=100 v2=0" {
		t.Errorf("bad's weights after an abort: %s, want v1=100 v2=0", w)
	}
}

// usersRelease is a config of one service, users: the upstreams at base
// (v1, weight 100) and cand (v2, weight 0), with service fields extra.
func usersRelease(base, cand, extra string) string {
	return `
services:
  users:
    versions:
      - { upstream: { endpoints: [ "` + base + `" ] }, name: v1, weight: 100 }
      - { upstream: { endpoints: [ "` + cand + `" ] }, name: v2, weight: 0 }
    ` + extra + `
routes:
  - { match: { path_prefix: / }, service: users }
`
}

// TestReleaseSurvivesKill: a release paused at its second step, the
// gateway killed (SIGKILL) and started again on the same config and store:
// the release is at the same step with the same weights, and goes on when
// resumed.
func TestReleaseSurvivesKill(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, candHits := countingUpstream(t, "cand", 0, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, ""))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "10,40,100", "--hold", "300ms", "--min-requests", "5", admin)
	for deadline := time.Now().Add(30 * time.Second); ; {
		get(t, g.url+"/x")
		if rel := releaseOf(t, g, "users"); rel.Step == 1 {
			ok(t, opts{}, "release", "pause", "users", admin)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the release never reached its second step: %+v", releaseOf(t, g, "users"))
		}
	}
	before := releaseOf(t, g, "users")
	if before.Phase != rollout.Paused || before.Step != 1 {
		t.Fatalf("paused: %s at step %d", before.Phase, before.Step)
	}
	weights := weightsInFile(t, g.config, "users")
	g.p.cmd.Process.Kill()
	g.p.cmd.Wait()
	// As if the gateway had died between setting the second step's weights
	// and recording the step: the state says step 0.
	stateFile := filepath.Join(home(t), rollout.StateFile)
	state, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateFile, bytes.Replace(state, []byte(`"step": 1,`), []byte(`"step": 0,`), 1), 0o644); err != nil {
		t.Fatal(err)
	}

	g2 := serveFile(t, g.config)
	admin = "--admin=" + strings.TrimPrefix(g2.admin, "http://")
	after := releaseOf(t, g2, "users")
	if after.Phase != rollout.Paused || after.Step != 1 || after.Candidate != before.Candidate || len(after.History) != len(before.History)+1 {
		t.Fatalf("after the restart: %s at step %d (history of %d), want paused at step 1 (history of %d)", after.Phase, after.Step, len(after.History), len(before.History)+1)
	}
	if e := after.History[len(after.History)-1]; e.Kind != "step" || e.Step != 1 || !strings.Contains(e.Reason, "before the state recorded it") {
		t.Errorf("the step found set on restart recorded as %+v", e)
	}
	if got := weightsInFile(t, g2.config, "users"); got != weights || got != "v1=60 v2=40" {
		t.Errorf("the config's weights after the restart: %s, before %s, want v1=60 v2=40", got, weights)
	}
	// 40% of the traffic to the candidate.
	hits := candHits.Load()
	for range 100 {
		get(t, g2.url+"/x")
	}
	if n := candHits.Load() - hits; n < 12 || n > 68 { // 40 ± 5.7σ
		t.Errorf("the candidate got %d of 100 requests at the 40%% step", n)
	}
	ok(t, opts{}, "release", "resume", "users", admin)
	for deadline := time.Now().Add(30 * time.Second); releaseOf(t, g2, "users").Phase != rollout.Promoted; {
		get(t, g2.url+"/x")
		if time.Now().After(deadline) {
			t.Fatalf("not promoted after the resume: %+v", releaseOf(t, g2, "users"))
		}
	}
}

// weightsInFile is the weights of service's versions in the config file at
// path, "name=weight" each.
func weightsInFile(t *testing.T, path, service string) string {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, v := range cfg.Services[service].Versions {
		parts = append(parts, fmt.Sprintf("%s=%d", v.Name, v.Weight))
	}
	return strings.Join(parts, " ")
}

// startPrometheus starts Debian's prometheus on a loopback port, scraping
// the admin listeners of gateways every 500 ms, and returns its URL. CI
// fails without it; elsewhere the test is skipped.
func startPrometheus(t *testing.T, gateways ...*gateway) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus is not installed (make toolchains installs it)")
		}
		t.Skip("prometheus is not installed (make toolchains installs it)")
	}
	var targets []string
	for _, g := range gateways {
		targets = append(targets, `"`+strings.TrimPrefix(g.admin, "http://")+`"`)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte("global: { scrape_interval: 500ms, evaluation_interval: 500ms }\n"+
		"scrape_configs:\n  - { job_name: wasmesh, static_configs: [ { targets: [ "+strings.Join(targets, ", ")+" ] } ] }\n"), 0o644)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not get ready:\n%s", out.String())
		}
	}
}

// TestReleasePromQL: two gateway replicas scraped by a real Prometheus;
// the candidate fails only on replica B, so replica A's own figures are
// fine, and the release on A is rolled back by its custom check on the
// fleet's figures. A query Prometheus refuses is refused before any
// traffic moves.
func TestReleasePromQL(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	// The candidate fails the requests that came through replica B (their
	// X-Forwarded-Host), and only those.
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-Host") == "b.example" {
			http.Error(w, "failing on b", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(flaky.Close)
	replica := func(candidateWeight int) *gateway {
		return serve(t, fmt.Sprintf(`
services:
  users:
    versions:
      - { upstream: { endpoints: [ "%s" ] }, name: v1, weight: %d }
      - { upstream: { endpoints: [ "%s" ], retries: { attempts: 0 } }, name: v2, weight: %d }
routes:
  - { match: { path_prefix: / }, service: users }
`, base.URL, 100-candidateWeight, flaky.URL, candidateWeight))
	}
	a, b := replica(0), replica(50)
	prom := startPrometheus(t, a, b)
	steady(t, a.url+"/x", "a.example")
	steady(t, b.url+"/x", "b.example")
	admin := "--admin=" + strings.TrimPrefix(a.admin, "http://")
	before := weightsInFile(t, a.config, "users")
	r := wasmesh(t, opts{}, "release", "start", "users", "v2", "--prometheus", prom, "--check", "broken<=1:sum(rate(", admin)
	if r.code == 0 || !strings.Contains(r.stderr, "check broken: prometheus:") {
		t.Errorf("a release with a query Prometheus refuses: exit %d, %q", r.code, r.stderr)
	}
	if got := weightsInFile(t, a.config, "users"); got != before {
		t.Errorf("a refused release moved the weights: %s, were %s", got, before)
	}
	fleetErrors := `sum(rate(wasmesh_requests_total{service="$service",version="$candidate",status="5xx"}[3s])) / sum(rate(wasmesh_requests_total{service="$service",version="$candidate"}[3s]))`
	// Only the fleet's check is to fail: the p99 bound is set out of reach
	// (a p99 of a few hundred requests on a loaded machine can be 2× the
	// baseline's by chance).
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "10,20,30,40,50,60,70,80,90,100", "--hold", "1s", "--min-requests", "5",
		"--max-p99-ratio", "1000", "--prometheus", prom, "--check", "fleet_errors<=0.05:"+fleetErrors, admin)
	rel := waitRelease(t, a, "users", rollout.RolledBack, 60*time.Second)
	last := rel.History[len(rel.History)-1]
	if !strings.Contains(last.Reason, "check fleet_errors:") || last.Figure == nil || last.Figure.Candidate.Errors != 0 {
		t.Errorf("rolled back with %+v: want the fleet_errors check, replica A's own candidate without an error", last)
	}
	if got := weightsInFile(t, a.config, "users"); got != before {
		t.Errorf("after the rollback A's weights are %s, want %s", got, before)
	}
}

// TestReleaseDeclared: a release declared in the config starts when the
// gateway loads it and runs to its end on its own; once over it is not
// started again, by a reload or a restart.
func TestReleaseDeclared(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, "release: { version: v2, steps: [ 25, 100 ], hold: 500ms, min_requests: 5, max_error_rate: 1% }"))
	steady(t, g.url+"/x", "")
	rel := waitRelease(t, g, "users", rollout.Promoted, 30*time.Second)
	if rel.Steps[0] != 25 || *rel.MaxErrorRate != 0.01 || time.Duration(rel.Hold) != 500*time.Millisecond {
		t.Errorf("the declared release ran as %+v", rel.Spec)
	}
	if w := weightsInFile(t, g.config, "users"); w != "v1=0 v2=100" {
		t.Errorf("after the declared release: %s", w)
	}
	g.p.cmd.Process.Kill()
	g.p.cmd.Wait()
	g2 := serveFile(t, g.config)
	time.Sleep(1500 * time.Millisecond) // a tick or more
	if again := releaseOf(t, g2, "users"); again.Phase != rollout.Promoted || len(again.History) != len(rel.History) {
		t.Errorf("after a restart the declared release is %s with %d events, was promoted with %d", again.Phase, len(again.History), len(rel.History))
	}
}

// TestReleaseDeclaredOnce: a release the config declares, aborted by an
// operator, does not start again when another release of the service
// ends (the config loads again then, with the split put back).
func TestReleaseDeclaredOnce(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	v2, _ := countingUpstream(t, "v2", 0, 0)
	v3, _ := countingUpstream(t, "v3", 0, 0)
	g := serve(t, `
services:
  users:
    versions:
      - { upstream: { endpoints: [ "`+base.URL+`" ] }, name: v1, weight: 100 }
      - { upstream: { endpoints: [ "`+v2.URL+`" ] }, name: v2, weight: 0 }
      - { upstream: { endpoints: [ "`+v3.URL+`" ] }, name: v3, weight: 0 }
    release: { version: v2, steps: [ 20, 100 ], hold: 1h }
routes:
  - { match: { path_prefix: / }, service: users }
`)
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	waitRelease(t, g, "users", rollout.Running, 30*time.Second)
	ok(t, opts{}, "release", "abort", "users", admin)
	ok(t, opts{}, "release", "start", "users", "v3", "--hold", "1h", admin)
	ok(t, opts{}, "release", "abort", "users", admin)
	time.Sleep(1500 * time.Millisecond) // a tick or more after the abort's load
	rel := releaseOf(t, g, "users")
	if rel.Phase != rollout.Aborted || rel.Version != "v3" {
		t.Errorf("after two aborts the release of users is %s (candidate %s), want v3's aborted", rel.Phase, rel.Candidate)
	}
	if w := weightsInFile(t, g.config, "users"); w != "v1=100 v2=0 v3=0" {
		t.Errorf("after two aborts: %s, want v1=100 v2=0 v3=0 (the declared release not started again)", w)
	}
}

// TestReleaseNotJudgedByPins: requests a client pins to a release's
// candidate are not its figures: a flood of pinned requests that fail
// does not roll it back, and the version's counts leave them out; a
// candidate with traffic above its first step is refused.
func TestReleaseNotJudgedByPins(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, candHits := countingUpstream(t, "cand", 100, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, ""))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	// Steps of 1%: the flood below is nearly all that reaches the candidate.
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "1,100", "--hold", "1h", "--min-requests", "20", "--max-error-rate", "5%", admin)
	for range 60 {
		req, _ := http.NewRequest("GET", g.url+"/x", nil)
		req.Header.Set("X-Wasmesh-Version", "v2")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 {
			t.Fatalf("a pinned request: %d, want the candidate's 500", resp.StatusCode)
		}
	}
	if n := candHits.Load(); n < 60 {
		t.Fatalf("the candidate got %d requests, want the 60 pinned", n)
	}
	time.Sleep(1500 * time.Millisecond) // a tick or more
	if rel := releaseOf(t, g, "users"); rel.Phase != rollout.Running {
		t.Errorf("after 60 failed pinned requests the release is %s: %+v", rel.Phase, rel.History)
	}
	var svcs []struct {
		Name     string
		Versions []struct {
			Name     string
			Requests int64
		}
	}
	if err := json.Unmarshal([]byte(adminGet(t, g, "/v1/services")), &svcs); err != nil {
		t.Fatal(err)
	}
	for _, v := range svcs[0].Versions {
		if v.Name == "v2" && v.Requests > 5 { // what the 1% split sent it, if anything
			t.Errorf("v2 counts %d requests, the pinned ones among them", v.Requests)
		}
	}
	ok(t, opts{}, "release", "abort", "users", admin)
	// v1 has all the traffic: a release of it would give it away at once.
	if r := wasmesh(t, opts{}, "release", "start", "users", "v1", admin); r.code == 0 || !strings.Contains(r.stderr, "serves all of service \"users\"'s traffic already") {
		t.Errorf("a release of the version serving everything: exit %d, %q", r.code, r.stderr)
	}
}

// TestReleaseLaneFirst: a release whose first step is a lane. At that
// step only the lane's requests reach the candidate (at weight 0); then
// the weights follow, and at the end the lane is as it was. A candidate
// failing in its lane step is rolled back from there, having served no
// request outside the lane. An unknown lane is refused.
func TestReleaseLaneFirst(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, candHits := countingUpstream(t, "cand", 0, 0)
	bad, badHits := countingUpstream(t, "bad", 50, 0)
	g := serve(t, `
services:
  users:
    versions:
      - { upstream: { endpoints: [ "`+base.URL+`" ] }, name: v1, weight: 100 }
      - { upstream: { endpoints: [ "`+cand.URL+`" ] }, name: v2, weight: 0 }
  orders:
    versions:
      - { upstream: { endpoints: [ "`+base.URL+`" ] }, name: v1, weight: 100 }
      - { upstream: { endpoints: [ "`+bad.URL+`" ], retries: { attempts: 0 } }, name: v2, weight: 0 }
routes:
  - { match: { path_prefix: /orders }, service: orders }
  - { match: { path_prefix: / }, service: users }
lanes:
  testers: { entry: [ { header: X-Lane=testers } ] }
`)
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	if r := wasmesh(t, opts{}, "release", "start", "users", "v2", "--lane", "tester", admin); r.code == 0 || !strings.Contains(r.stderr, `lane "tester"`) {
		t.Errorf("a release into an unknown lane: exit %d, %q", r.code, r.stderr)
	}
	laneOf := func(service string) string {
		cfg, err := config.Load(g.config)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Lanes["testers"].Versions[service]
	}

	ok(t, opts{}, "release", "start", "users", "v2", "--lane", "testers", "--steps", "50,100", "--hold", "3s", "--min-requests", "20", admin)
	rel := releaseOf(t, g, "users")
	if rel.Step != 0 || fmt.Sprint(rel.Steps) != "[0 50 100]" || rel.History[0].Lane != "testers" {
		t.Fatalf("started: step %d of %v, first event %+v", rel.Step, rel.Steps, rel.History[0])
	}
	if w, l := weightsInFile(t, g.config, "users"), laneOf("users"); w != "v1=100 v2=0" || l != "v2" {
		t.Fatalf("at the lane's step: weights %s, the lane's version of users %q; want v1=100 v2=0 and v2", w, l)
	}
	hits := candHits.Load()
	for range 30 {
		if _, _, h := get(t, g.url+"/x"); h.Get("X-Wasmesh-Version") != rel.Baseline {
			t.Fatalf("a request outside the lane served by %q at the lane's step", h.Get("X-Wasmesh-Version"))
		}
	}
	if n := candHits.Load() - hits; n != 0 {
		t.Fatalf("the candidate got %d requests from outside the lane", n)
	}
	for range 30 {
		if _, _, h := get(t, g.url+"/x", "X-Lane", "testers"); h.Get("X-Wasmesh-Version") != rel.Candidate {
			t.Fatalf("a request in the lane served by %q at the lane's step", h.Get("X-Wasmesh-Version"))
		}
	}
	steady(t, g.url+"/x", "")
	steady(t, g.url+"/x", "", "X-Lane", "testers")
	rel = waitRelease(t, g, "users", rollout.Promoted, 60*time.Second)
	var kinds []string
	for _, e := range rel.History {
		kinds = append(kinds, fmt.Sprintf("%s@%d%s", e.Kind, e.Weight, e.Lane))
	}
	if got := strings.Join(kinds, " "); got != "started@0testers step@50 promoted@100" {
		t.Errorf("history %s, want started@0testers step@50 promoted@100", got)
	}
	if w, l := weightsInFile(t, g.config, "users"), laneOf("users"); w != "v1=0 v2=100" || l != "" {
		t.Errorf("promoted: weights %s, the lane's version of users %q; want v1=0 v2=100 and none", w, l)
	}

	// A candidate that fails in its lane is rolled back from the lane's
	// step: nobody outside the lane met it.
	ok(t, opts{}, "release", "start", "orders", "v2", "--lane", "testers", "--hold", "1s", "--min-requests", "20", admin)
	steady(t, g.url+"/orders/x", "", "X-Lane", "testers")
	rel = waitRelease(t, g, "orders", rollout.RolledBack, 60*time.Second)
	if last := rel.History[len(rel.History)-1]; last.Step != 0 || last.Lane != "testers" || !strings.Contains(last.Reason, "error rate") {
		t.Errorf("rolled back with %+v, want at the lane's step, on the error rate (the release's, or the lane's eviction)", last)
	}
	if w, l := weightsInFile(t, g.config, "orders"), laneOf("orders"); w != "v1=100 v2=0" || l != "" {
		t.Errorf("rolled back: weights %s, the lane's version of orders %q; want v1=100 v2=0 and none", w, l)
	}
	time.Sleep(300 * time.Millisecond) // requests in flight at the rollback end
	before := badHits.Load()
	for range 20 {
		get(t, g.url+"/orders/x", "X-Lane", "testers")
	}
	if n := badHits.Load() - before; n != 0 {
		t.Errorf("the rolled-back candidate got %d lane requests after the rollback", n)
	}
}

// TestReleaseLaneEviction: a candidate its lane evicts at the lane's step
// (the lane's error rate is lower than the release's) gets no request
// more; the release rolls it back, saying why, rather than wait for ever.
// The candidate has some weight when the release starts: a lane's step
// takes it back, which is allowed.
func TestReleaseLaneEviction(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	bad, _ := countingUpstream(t, "bad", 40, 0)
	g := serve(t, `
services:
  users:
    versions:
      - { upstream: { endpoints: [ "`+base.URL+`" ] }, name: v1, weight: 98 }
      - { upstream: { endpoints: [ "`+bad.URL+`" ], retries: { attempts: 0 } }, name: v2, weight: 2 }
routes:
  - { match: { path_prefix: / }, service: users }
lanes:
  testers: { entry: [ { header: X-Lane=testers } ] }
`)
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--lane", "testers", "--hold", "1s", "--min-requests", "1000", "--max-error-rate", "90%", "--max-error-rate-above", "90%", admin)
	steady(t, g.url+"/x", "", "X-Lane", "testers")
	rel := waitRelease(t, g, "users", rollout.RolledBack, 60*time.Second)
	if last := rel.History[len(rel.History)-1]; last.Step != 0 || !strings.Contains(last.Reason, "evicted the candidate") {
		t.Errorf("rolled back with %+v, want at the lane's step, saying the lane evicted it", last)
	}
	if w := weightsInFile(t, g.config, "users"); w != "v1=100 v2=0" {
		t.Errorf("rolled back: %s, want the split it started from with the candidate's 2 at the baseline, v1=100 v2=0", w)
	}
}

// TestReleaseWeightEditedByHand: the candidate's weight changed in the
// file while its release runs pauses the release (its step would be judged
// at another share), and a resume sets the step's weight back.
func TestReleaseWeightEditedByHand(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, ""))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "10,100", "--hold", "1h", admin)
	b, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(strings.Replace(string(b), "weight: 90", "weight: 70", 1), "weight: 10", "weight: 30", 1)
	if edited == string(b) {
		t.Fatalf("no weights 90 and 10 in the file:\n%s", b)
	}
	if err := os.WriteFile(g.config, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := waitRelease(t, g, "users", rollout.Paused, 30*time.Second)
	if last := rel.History[len(rel.History)-1]; !strings.Contains(last.Reason, "weight in the config is 30, its step's 10") {
		t.Errorf("paused with %+v, want the weights named", last)
	}
	ok(t, opts{}, "release", "resume", "users", admin)
	if w := weightsInFile(t, g.config, "users"); w != "v1=90 v2=10" {
		t.Errorf("after the resume: %s, want the step's v1=90 v2=10", w)
	}
	time.Sleep(2500 * time.Millisecond) // two ticks or more: not paused again
	if rel := releaseOf(t, g, "users"); rel.Phase != rollout.Running {
		t.Errorf("after the resume the release is %s: %+v", rel.Phase, rel.History)
	}
}

// TestReleaseAbortAfterSplitChanged: a version of the split a release
// started from is removed by hand while it runs; an abort cannot put that
// split back (it no longer adds up to 100), so it sets the candidate's
// weight back alone, the others scaled, instead of leaving the candidate
// serving and the release stuck.
func TestReleaseAbortAfterSplitChanged(t *testing.T) {
	stable, _ := countingUpstream(t, "stable", 0, 0)
	old, _ := countingUpstream(t, "old", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	versions := func(vs ...string) string {
		return "services:\n  users:\n    versions:\n" + strings.Join(vs, "\n") + "\nroutes:\n  - { match: { path_prefix: / }, service: users }\n"
	}
	v1 := func(w int) string {
		return fmt.Sprintf(`      - { upstream: { endpoints: [ "%s" ] }, name: v1, weight: %d }`, stable.URL, w)
	}
	v2 := fmt.Sprintf(`      - { upstream: { endpoints: [ "%s" ] }, name: v2, weight: 10 }`, old.URL)
	v3 := func(w int) string {
		return fmt.Sprintf(`      - { upstream: { endpoints: [ "%s" ] }, name: v3, weight: %d }`, cand.URL, w)
	}
	g := serve(t, versions(v1(90), v2, v3(0)))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v3", "--steps", "20,100", "--hold", "1h", "--min-requests", "100000", admin)
	if w := weightsInFile(t, g.config, "users"); w != "v1=72 v2=8 v3=20" {
		t.Fatalf("at the release's first step: %s, want v1=72 v2=8 v3=20", w)
	}
	gen := metric(t, g, "wasmesh_config_generation")
	if err := os.WriteFile(g.config, []byte(loopbackConfig(versions(v1(80), v3(20)))), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the edit to load", func() bool { return metric(t, g, "wasmesh_config_generation") != gen })
	ok(t, opts{}, "release", "abort", "users", admin)
	if w := weightsInFile(t, g.config, "users"); w != "v1=100 v3=0" {
		t.Errorf("after the abort: %s, want v1=100 v3=0", w)
	}
	if rel := releaseOf(t, g, "users"); rel.Phase != rollout.Aborted {
		t.Errorf("the release is %s after the abort", rel.Phase)
	}
}

// TestReleasePausedWithoutItsCandidate: an edit that takes the candidate
// out of the config pauses its release, and wasmesh_release_weight says
// what the candidate has then (0), not the weight of the step it was at.
func TestReleasePausedWithoutItsCandidate(t *testing.T) {
	stable, _ := countingUpstream(t, "stable", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	v1 := fmt.Sprintf(`      - { upstream: { endpoints: [ "%s" ] }, name: v1, weight: %%d }`, stable.URL)
	v2 := fmt.Sprintf(`      - { upstream: { endpoints: [ "%s" ] }, name: v2, weight: 0 }`, cand.URL)
	config := func(vs ...string) string {
		return "services:\n  users:\n    versions:\n" + strings.Join(vs, "\n") + "\nroutes:\n  - { match: { path_prefix: / }, service: users }\n"
	}
	g := serve(t, config(fmt.Sprintf(v1, 100), v2))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "20,100", "--hold", "1h", "--min-requests", "100000", admin)
	if w := metric(t, g, `wasmesh_release_weight{service="users"}`); w != "20" {
		t.Fatalf("wasmesh_release_weight at the first step: %q, want 20", w)
	}
	if err := os.WriteFile(g.config, []byte(loopbackConfig(config(fmt.Sprintf(v1, 100)))), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the release to pause", func() bool { return releaseOf(t, g, "users").Phase == rollout.Paused })
	if w := metric(t, g, `wasmesh_release_weight{service="users"}`); w != "0" {
		t.Errorf("wasmesh_release_weight of a release paused without its candidate: %q, want 0", w)
	}
}

// TestReleaseRollbackTakesTheCandidateOut: a candidate that started its
// release with some traffic (below the first step) and fails a check
// serves nothing after the rollback: its weight goes to the baseline.
func TestReleaseRollbackTakesTheCandidateOut(t *testing.T) {
	stable, _ := countingUpstream(t, "stable", 0, 0)
	cand, _ := countingUpstream(t, "cand", 100, 0)
	g := serve(t, fmt.Sprintf(`
services:
  users:
    versions:
      - { upstream: { endpoints: [ "%s" ] }, name: v1, weight: 97 }
      - { upstream: { endpoints: [ "%s" ] }, name: v2, weight: 3 }
routes:
  - { match: { path_prefix: / }, service: users }
`, stable.URL, cand.URL))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "10,100", "--hold", "1s", "--min-requests", "20", admin)
	steady(t, g.url+"/x", "")
	rel := waitRelease(t, g, "users", rollout.RolledBack, 30*time.Second)
	if w := weightsInFile(t, g.config, "users"); w != "v1=100 v2=0" {
		t.Errorf("after the rollback of a candidate that started at 3: %s, want v1=100 v2=0", w)
	}
	if last := rel.History[len(rel.History)-1]; last.Kind != rollout.RolledBack || last.Weight != 0 {
		t.Errorf("the rollback's event: %+v, want weight 0", last)
	}
}

// TestReleaseAbortAfterServiceRemoved: a release whose service was
// removed from the config (it pauses) can be aborted: nothing to put back.
func TestReleaseAbortAfterServiceRemoved(t *testing.T) {
	stable, _ := countingUpstream(t, "stable", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	other, _ := countingUpstream(t, "other", 0, 0)
	users := fmt.Sprintf(`
  users:
    versions:
      - { upstream: { endpoints: [ "%s" ] }, name: v1, weight: 100 }
      - { upstream: { endpoints: [ "%s" ] }, name: v2, weight: 0 }`, stable.URL, cand.URL)
	config := func(services string) string {
		return "services:" + services + fmt.Sprintf(`
  other: { versions: [ { upstream: { endpoints: [ "%s" ] } } ] }
routes:
  - { match: { path_prefix: / }, service: other }
`, other.URL)
	}
	g := serve(t, config(users))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--steps", "20,100", "--hold", "1h", "--min-requests", "100000", admin)
	if err := os.WriteFile(g.config, []byte(loopbackConfig(config(""))), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the release to pause", func() bool { return releaseOf(t, g, "users").Phase == rollout.Paused })
	ok(t, opts{}, "release", "abort", "users", admin)
	if rel := releaseOf(t, g, "users"); rel.Phase != rollout.Aborted {
		t.Errorf("the release is %s after the abort", rel.Phase)
	}
}

// TestReleaseLaneGuarded: a lane that a release moves its candidate in
// may not be changed or deleted under it (409, naming the release), as the
// service's deploys are refused; once the release is over it may.
func TestReleaseLaneGuarded(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, "")+"lanes:\n  testers: { entry: [ { header: X-Lane=testers } ] }\n")
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--lane", "testers", "--steps", "50,100", "--hold", "1h", "--min-requests", "100000", admin)
	for _, args := range [][]string{{"lane", "update", "testers", "--version", "users=", admin}, {"lane", "delete", "testers", admin}} {
		if r := wasmesh(t, opts{}, args...); r.code == 0 || !strings.Contains(r.stderr, `lane "testers" carries the release of service "users"`) {
			t.Errorf("%v during the release: exit %d, %q; want it refused, naming the release", args[:2], r.code, r.stderr)
		}
	}
	ok(t, opts{}, "release", "abort", "users", admin)
	ok(t, opts{}, "lane", "delete", "testers", admin)
}

// TestReleaseStartRefusedOverARefusedEdit: a release is not started over
// an edit of the config file that was refused (as a deploy is not): it
// would write over the edit. The file is left as the operator wrote it.
// Nor is one of the version that has all the traffic already.
func TestReleaseStartRefusedOverARefusedEdit(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, ""))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	if r := wasmesh(t, opts{}, "release", "start", "users", "v1", admin); r.code == 0 || !strings.Contains(r.stderr, "nothing to release to it") {
		t.Errorf("release start of the version with all the traffic: exit %d, %q; want it refused, saying why", r.code, r.stderr)
	}
	good, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(good, []byte("weight: 100"), []byte("weight: 190"), 1)
	if err := os.WriteFile(g.config, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the edit to be refused", func() bool {
		return metric(t, g, `wasmesh_config_reload_total{result="error"}`) == "1"
	})
	if r := wasmesh(t, opts{}, "release", "start", "users", "v2", admin); r.code == 0 || !strings.Contains(r.stderr, "holds an edit that was refused") {
		t.Errorf("release start over a refused edit: exit %d, %q; want it refused, saying why", r.code, r.stderr)
	}
	if now, _ := os.ReadFile(g.config); !bytes.Equal(now, bad) {
		t.Errorf("the refused edit was written over:\n%s", now)
	}
}

// TestDeployDuringReleaseUploadsNothing: a deploy of a file to a service
// whose release runs is refused before the file is uploaded.
func TestDeployDuringReleaseUploadsNothing(t *testing.T) {
	base, _ := countingUpstream(t, "base", 0, 0)
	cand, _ := countingUpstream(t, "cand", 0, 0)
	g := serve(t, usersRelease(base.URL, cand.URL, ""))
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "release", "start", "users", "v2", "--hold", "1h", admin)
	r := wasmesh(t, opts{}, "deploy", "users", hello("zig"), admin)
	if r.code == 0 || strings.Contains(r.stdout, "pushed") || !strings.Contains(r.stderr, `service "users" has a release running`) {
		t.Errorf("deploy during a release: exit %d, stdout %q, stderr %q; want it refused before the upload", r.code, r.stdout, r.stderr)
	}
}
