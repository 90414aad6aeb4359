package mtls

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/mesh"
)

// What the benchmarks measure, all against the same gateway code serving the
// Rust hello guest (GET /x → "hello from rust: GET /x 0 bytes"):
//
//	BenchmarkHandshake/tcp           connect and close: the floor
//	BenchmarkHandshake/mtls          connect, full TLS 1.3 handshake with
//	                                 client and server SVIDs (ECDSA P-256),
//	                                 close: what every new connection costs
//	BenchmarkRequest/PROTO/CONN      requests in parallel (GOMAXPROCS×2
//	                                 goroutines), PROTO one of plain (HTTP/1.1
//	                                 over TCP), mtls (HTTP/1.1 over mTLS),
//	                                 mtls-h2 (HTTP/2 over mTLS, what one
//	                                 gateway's http_calls to another use);
//	                                 CONN keepalive (pooled connections) or
//	                                 newconn (one connection per request)
//	BenchmarkRequest/mtls-resumed/newconn
//	                                 mtls/newconn with a client session cache,
//	                                 so that new connections resume the TLS
//	                                 session (the gateway's own clients keep
//	                                 no cache: each new connection is a full
//	                                 handshake). The gateway verifies a resumed
//	                                 peer's chain again, so this is not free.
//
// Client and gateway share the machine's CPUs, so ns/op is the cost of both
// sides. The req/s (handshakes/s) metric is b.N over the elapsed time: for
// the parallel request benchmarks the throughput, for the sequential
// handshake benchmarks handshakes per second one connection at a time.
// cpu-ns/op is the process's CPU time (user and system, client and gateway
// together, from getrusage) per operation: unlike ns/op it does not grow when
// other work on the machine takes the CPUs away.

var (
	gwID     = spiffeid.RequireFromString("spiffe://example.org/gateway/bench")
	clientID = spiffeid.RequireFromString("spiffe://example.org/client/bench")
)

// fixture is a plain and an mTLS gateway, started once for all benchmarks.
type fixture struct {
	plain, mtls string      // host:port
	clientTLS   *tls.Config // presents clientID's SVID, expects gwID
	// native servers answering what the hello guest answers, with the
	// gateway's identity on the TLS one (see BenchmarkNative)
	nativePlain, nativeMTLS string
	stop                    []func()
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func TestMain(m *testing.M) {
	// net/http logs failed handshakes with the log package; the benchmarks
	// close connections right after their handshake, which it may report.
	log.SetOutput(io.Discard)
	code := m.Run()
	if fix != nil {
		for _, stop := range fix.stop {
			stop()
		}
	}
	os.Exit(code)
}

func setup(b *testing.B) *fixture {
	b.Helper()
	fixOnce.Do(func() { fix, fixErr = newFixture() })
	if fixErr != nil {
		b.Fatal(fixErr)
	}
	return fix
}

func newFixture() (*fixture, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "wasmesh-bench-mtls-")
	if err != nil {
		return nil, err
	}
	f := &fixture{stop: []func(){func() { os.RemoveAll(dir) }}}
	fail := func(err error) (*fixture, error) {
		for _, stop := range f.stop {
			stop()
		}
		return nil, err
	}
	hello, err := filepath.Abs(filepath.Join("..", "..", "examples", "hello", "rust", "hello.wasm"))
	if err != nil {
		return fail(err)
	}
	ca, err := identity.NewCA(gwID.TrustDomain())
	if err != nil {
		return fail(err)
	}
	serverSrc, err := ca.NewSource(gwID, time.Hour)
	if err != nil {
		return fail(err)
	}
	clientSrc, err := ca.NewSource(clientID, time.Hour)
	if err != nil {
		serverSrc.Close()
		return fail(err)
	}
	f.stop = append(f.stop, func() { serverSrc.Close(); clientSrc.Close() })
	f.clientTLS = identity.ClientConfig(clientSrc, gwID)

	config := fmt.Sprintf(`
store: %s
drain_delay: 0s
services:
  hello: { versions: [ { path: %q } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`, filepath.Join(dir, "store"), hello)
	if f.plain, err = startGateway(ctx, f, filepath.Join(dir, "plain.yaml"), config, nil); err != nil {
		return fail(err)
	}
	// The identity comes from Options; the tls block only says what to ask
	// of clients (and lets the config use tls features).
	if f.mtls, err = startGateway(ctx, f, filepath.Join(dir, "mtls.yaml"), "tls: { client_auth: require }\n"+config, serverSrc); err != nil {
		return fail(err)
	}
	if f.nativePlain, err = startNative(f, nil); err != nil {
		return fail(err)
	}
	if f.nativeMTLS, err = startNative(f, identity.ServerConfig(serverSrc, nil)); err != nil {
		return fail(err)
	}
	return f, nil
}

// startGateway serves config on a loopback port with identity src (nil:
// plain HTTP) and returns the port's address.
func startGateway(ctx context.Context, f *fixture, path, config string, src *identity.Source) (string, error) {
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		return "", err
	}
	opts := mesh.Options{
		ConfigPath: path,
		CacheDir:   filepath.Join(filepath.Dir(path), "cache"),
		// The access log at INFO is off: what is measured is the transport.
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	if src != nil {
		opts.Identity = src
	}
	g, err := mesh.New(ctx, opts)
	if err != nil {
		return "", err
	}
	if err := g.LoadFile(ctx); err != nil {
		g.Close(ctx)
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close(ctx)
		return "", err
	}
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Serve(serveCtx, ln, nil); err != nil {
			fmt.Fprintln(os.Stderr, "bench/mtls: Serve:", err)
		}
	}()
	f.stop = append(f.stop, func() {
		cancel()
		<-done
		g.Close(context.Background())
	})
	return ln.Addr().String(), nil
}

func BenchmarkHandshake(b *testing.B) {
	f := setup(b)
	b.Run("tcp", func(b *testing.B) {
		cpu := startCPU()
		for b.Loop() {
			c, err := net.Dial("tcp", f.plain)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		reportRate(b, "handshakes/s", cpu)
	})
	// (Resumption needs the session ticket, which a TLS 1.3 client reads only
	// with the first application data: see BenchmarkRequest/mtls-resumed.)
	b.Run("mtls", func(b *testing.B) {
		cpu := startCPU()
		for b.Loop() {
			c, err := tls.Dial("tcp", f.mtls, f.clientTLS)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		reportRate(b, "handshakes/s", cpu)
	})
}

func BenchmarkRequest(b *testing.B) {
	f := setup(b)
	for _, name := range []string{
		"plain/keepalive", "plain/newconn",
		"mtls/keepalive", "mtls/newconn",
		"mtls-h2/keepalive", "mtls-h2/newconn",
		"mtls-resumed/newconn",
	} {
		proto, conn, _ := strings.Cut(name, "/")
		b.Run(name, func(b *testing.B) {
			tr := &http.Transport{
				MaxIdleConnsPerHost: 64, // more than the goroutines: no churn with keep-alive
				DisableKeepAlives:   conn == "newconn",
			}
			url := "http://" + f.plain + "/x"
			if proto != "plain" {
				url = "https://" + f.mtls + "/x"
				tr.TLSClientConfig = f.clientTLS.Clone()
				tr.ForceAttemptHTTP2 = proto == "mtls-h2"
				if proto == "mtls-resumed" {
					tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(64)
				}
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			if _, err := get(client, url); err != nil { // warm up: pool, session ticket
				b.Fatal(err)
			}
			var resumed atomic.Int64
			b.SetParallelism(2)
			b.ResetTimer()
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := get(client, url)
					if err != nil {
						b.Error(err)
						return
					}
					if (proto == "mtls-h2") != (resp.ProtoMajor == 2) {
						b.Errorf("%s: got %s", proto, resp.Proto)
						return
					}
					if resp.TLS != nil && resp.TLS.DidResume {
						resumed.Add(1)
					}
				}
			})
			reportRate(b, "req/s", cpu)
			if proto == "mtls-resumed" {
				b.ReportMetric(float64(resumed.Load())/float64(b.N), "resumed/op")
			}
		})
	}
}

// get sends GET url and checks that the hello guest answered.
func get(c *http.Client, url string) (*http.Response, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 || string(body) != helloBody {
		return nil, fmt.Errorf("GET %s: %d %q", url, resp.StatusCode, body)
	}
	return resp, nil
}

// startCPU returns the process's CPU time so far, for reportRate.
func startCPU() int64 {
	ns, _ := cpuTime()
	return ns
}

// reportRate adds b.N per second of the benchmark's run as unit, and the
// CPU time per operation since cpuStart.
func reportRate(b *testing.B, unit string, cpuStart int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
	if ns, ok := cpuTime(); ok && b.N > 0 {
		b.ReportMetric(float64(ns-cpuStart)/float64(b.N), "cpu-ns/op")
	}
}
