package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// distinctModule is the Zig hello with a custom section naming i: the same
// code under a digest of its own, compiled as a module of its own.
func distinctModule(wasm []byte, i int) []byte {
	name := fmt.Sprintf("wasmesh-fleet-%d", i)
	payload := binary.AppendUvarint(nil, uint64(len(name)))
	payload = append(payload, name...)
	payload = append(payload, 1) // wazero 1.12 refuses a custom section with no data at the end of a module
	out := append([]byte(nil), wasm...)
	out = append(out, 0) // a custom section
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// fleetReloads is how many reloads of one version measureFleet makes.
const fleetReloads = 3

// fleetConfig is a config of n services, s0 … s(n-1), each one version (a
// module of dir) and a route /sI.
func fleetConfig(n int, module func(i int) string) string {
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\ndrain_delay: 0s\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  s%d: { versions: [ { path: %s } ] }\n", i, module(i))
	}
	b.WriteString("routes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - { match: { path_prefix: /s%d/ }, service: s%d }\n", i, i)
	}
	return b.String()
}

// fleet is what one gateway of n versions measured.
type fleet struct {
	n                 int
	ready             time.Duration // process start to serving, warm compile cache
	rss               int64         // bytes, idle after ready
	reload            time.Duration // one version changed: file written to the new generation serving
	load              time.Duration // of which the load itself (wasmesh_config_load_seconds)
	worstDuringReload time.Duration // the slowest request while it reloaded
	median, p99       time.Duration // of sequential requests to one version
}

// measureFleet starts a gateway of n versions twice (the first fills the
// compile cache), then measures the second: time to ready, RSS, request
// latency, and a reload that changes one version while requests go on.
func measureFleet(b *testing.B, n int) fleet {
	wasm, err := os.ReadFile(hello("zig"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	module := func(i int) string { return filepath.Join(dir, fmt.Sprintf("m%d.wasm", i)) }
	for i := range n + fleetReloads {
		if err := os.WriteFile(module(i), distinctModule(wasm, i), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	config := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(config, []byte(fleetConfig(n, module)), 0o644); err != nil {
		b.Fatal(err)
	}
	f := fleet{n: n}
	cold := serveFile(b, config)
	cold.p.cmd.Process.Kill()
	cold.p.cmd.Wait()
	began := time.Now()
	g := serveFile(b, config)
	f.ready = time.Since(began)
	time.Sleep(2 * time.Second)
	f.rss = rss(b, g.p.cmd.Process.Pid)

	client := &http.Client{Timeout: 10 * time.Second}
	one := func(path string) time.Duration {
		start := time.Now()
		resp, err := client.Get(g.url + path)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return time.Since(start)
	}
	var lat []time.Duration
	for i := range 3000 {
		lat = append(lat, one(fmt.Sprintf("/s%d/", (i%10)*n/10))) // routes across the table
	}
	slices.Sort(lat)
	f.median, f.p99 = lat[len(lat)/2], lat[len(lat)*99/100]

	// One version changed at a time (sK to module n+K), while requests go
	// on; the median of the reloads.
	var worst atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if d := one("/s1/"); int64(d) > worst.Load() {
				worst.Store(int64(d))
			}
		}
	}()
	var reloadTimes, loadTimes []time.Duration
	next := fleetConfig(n, module)
	for k := range fleetReloads {
		gen := readReloads(b, g).generation
		next = strings.Replace(next, fmt.Sprintf("s%d: { versions: [ { path: %s", k, module(k)), fmt.Sprintf("s%d: { versions: [ { path: %s", k, module(n+k)), 1)
		began = time.Now()
		if err := os.WriteFile(config, []byte(next), 0o644); err != nil {
			b.Fatal(err)
		}
		for readReloads(b, g).generation == gen {
			if time.Since(began) > time.Minute {
				b.Fatalf("%d versions: the reload never served", n)
			}
			time.Sleep(time.Millisecond)
		}
		reloadTimes = append(reloadTimes, time.Since(began))
		secs, err := strconv.ParseFloat(metric(b, g, "wasmesh_config_load_seconds"), 64)
		if err != nil {
			b.Fatal(err)
		}
		loadTimes = append(loadTimes, time.Duration(secs*float64(time.Second)))
	}
	slices.Sort(reloadTimes)
	slices.Sort(loadTimes)
	f.reload, f.load = reloadTimes[fleetReloads/2], loadTimes[fleetReloads/2]
	close(stop)
	<-done
	f.worstDuringReload = time.Duration(worst.Load())
	return f
}

// BenchmarkFleetScale: what a gateway costs as its versions grow, 10
// against 1,000 in one run (issue 22's sixth goal): start-up per version
// with a warm compile cache, RSS per idle version, request latency, and a
// reload that changes one version, with the slowest request during it.
// b.N is ignored: each size is measured once per run; run it with
// -count for more.
//
//	go test -run='^$' -bench=FleetScale -benchtime=1x -count=3 ./tests/
func BenchmarkFleetScale(b *testing.B) {
	small := measureFleet(b, 10)
	large := measureFleet(b, 1000)
	for _, f := range []fleet{small, large} {
		b.Logf("%4d versions: ready %s (%.2f ms a version), RSS %.1f MiB, latency median %s p99 %s, reload of one %s (the load %s), slowest request meanwhile %s",
			f.n, f.ready.Round(time.Millisecond), float64(f.ready.Microseconds())/1000/float64(f.n), float64(f.rss)/(1<<20),
			f.median.Round(time.Microsecond), f.p99.Round(time.Microsecond), f.reload.Round(time.Millisecond), f.load.Round(time.Microsecond),
			f.worstDuringReload.Round(time.Microsecond))
	}
	perVersion := func(f fleet) float64 { return float64(f.ready) / float64(f.n) }
	b.ReportMetric(perVersion(large)/perVersion(small), "startup-per-version-ratio")
	b.ReportMetric(float64(large.reload)/float64(small.reload), "reload-ratio")
	b.ReportMetric(float64(large.load)/float64(small.load), "load-ratio")
	b.ReportMetric(float64(large.rss-small.rss)/float64(large.n-small.n)/1024, "KiB/idle-version")
	b.ReportMetric(float64(large.median)/float64(small.median), "median-latency-ratio")
	b.ReportMetric(float64(large.worstDuringReload)/1e6, "ms-slowest-during-reload")
}

// BenchmarkIdleConnections: what 10,000 idle keep-alive connections cost
// a gateway (issue 22's sixth goal): its RSS with none and with 10,000
// (each has served one request and waits for the next), and, where wrk is
// installed, its req/s at 10,000 connections against 100, in one run.
//
//	go test -run='^$' -bench=IdleConnections -benchtime=1x ./tests/
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 10000
	g := serve(b, `
services:
  hello: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	addr := strings.TrimPrefix(g.url, "http://")
	time.Sleep(time.Second)
	before := rss(b, g.p.cmd.Process.Pid)
	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("connection %d: %v", len(open), err)
		}
		open = append(open, c)
		if _, err := io.WriteString(c, "GET /hi HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatalf("connection %d: %v", len(open), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(2 * time.Second)
	after := rss(b, g.p.cmd.Process.Pid)
	perConn := float64(after-before) / conns / 1024
	b.Logf("RSS %.1f MiB idle, %.1f MiB with %d idle keep-alive connections: %.1f KiB a connection", float64(before)/(1<<20), float64(after)/(1<<20), conns, perConn)
	b.ReportMetric(perConn, "KiB/idle-conn")
	for _, c := range open {
		c.Close()
	}
	open = open[:0]

	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Log("wrk not installed: no throughput figures")
		return
	}
	// The yardstick, side by side: bench/native, a plain net/http server.
	native := filepath.Join(b.TempDir(), "native")
	if out, err := exec.Command("go", "build", "-o", native, repoPath("bench", "native")).CombinedOutput(); err != nil {
		b.Fatalf("building bench/native: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	nativeAddr := l.Addr().String()
	l.Close()
	cmd := exec.Command(native, "-listen", nativeAddr)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := waitHTTP("http://"+nativeAddr+"/hi", nil, 10*time.Second); err != nil {
		b.Fatal(err)
	}
	rate := func(url string, c int) float64 {
		out, err := exec.Command(wrk, "-t2", fmt.Sprintf("-c%d", c), "-d4s", url).CombinedOutput()
		if err != nil {
			b.Fatalf("wrk -c%d: %v\n%s", c, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Requests/sec:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return f
			}
		}
		b.Fatalf("wrk -c%d: no Requests/sec in\n%s", c, out)
		return 0
	}
	r100, r10k := rate(g.url+"/hi", 100), rate(g.url+"/hi", conns)
	n100, n10k := rate("http://"+nativeAddr+"/hi", 100), rate("http://"+nativeAddr+"/hi", conns)
	b.Logf("req/s: wasmesh %.0f at 100 connections, %.0f at %d (%.2f); native net/http %.0f and %.0f (%.2f)", r100, r10k, conns, r10k/r100, n100, n10k, n10k/n100)
	b.ReportMetric(r10k/r100, "rps-10k/100")
	b.ReportMetric(n10k/n100, "native-rps-10k/100")
}
