package testutil

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// RegistryBin is the OCI registry StartRegistry runs: Debian's
// docker-registry package (the CNCF distribution registry).
const RegistryBin = "/usr/bin/docker-registry"

// Registry is an OCI registry serving plain HTTP on loopback, with its
// storage in a temporary directory.
type Registry struct {
	// Addr is "127.0.0.1:<port>", the registry part of references to it.
	Addr string
	cmd  *exec.Cmd
	log  *LockedBuffer
}

// StartRegistry starts docker-registry on a free loopback port, waits until
// it answers GET /v2/, and stops it when the test ends. Without the binary
// it skips the test, unless CI or WASMESH_REQUIRE_REGISTRY is set: then it
// fails it (examples/toolchains.sh installs the package).
func StartRegistry(tb testing.TB) *Registry {
	tb.Helper()
	bin := RegistryBin
	if _, err := os.Stat(bin); err != nil {
		if path, lerr := exec.LookPath("docker-registry"); lerr == nil {
			bin = path
		} else if os.Getenv("CI") != "" || os.Getenv("WASMESH_REQUIRE_REGISTRY") != "" {
			tb.Fatalf("no OCI registry to test against: %s: %v (apt-get install docker-registry, or run examples/toolchains.sh)", bin, err)
		} else {
			tb.Skipf("no OCI registry to test against: %s is not installed (apt-get install docker-registry); set WASMESH_REQUIRE_REGISTRY=1 to fail instead", bin)
		}
	}
	var errs []error
	for range 3 { // another process may take the free port first
		r, err := startRegistry(tb, bin)
		if err == nil {
			return r
		}
		errs = append(errs, err)
	}
	tb.Fatalf("start %s: %v", bin, errs)
	return nil
}

func startRegistry(tb testing.TB, bin string) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := tb.TempDir()
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog: { disabled: true }
storage:
  filesystem: { rootdirectory: %s }
  delete: { enabled: true }
http:
  addr: %s
  secret: wasmesh-test
`, strconv.Quote(filepath.Join(dir, "data")), addr)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	r := &Registry{Addr: addr, log: &LockedBuffer{}}
	r.cmd = exec.Command(bin, "serve", configPath)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { r.cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		r.cmd.Process.Kill()
		<-exited
		if tb.Failed() {
			tb.Logf("docker-registry log:\n%s", r.log.String())
		}
	})
	deadline := time.Now().Add(WaitTimeout)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("exited before serving: %s", r.log.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			return nil, fmt.Errorf("no answer on http://%s/v2/ after %s: %s", addr, WaitTimeout, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Proxy is a reverse proxy in front of a server, counting the requests it
// forwards and optionally changing responses.
type Proxy struct {
	// Addr is the proxy's "127.0.0.1:<port>".
	Addr string
	// Requests counts the requests forwarded.
	Requests atomic.Int64
}

// StartProxy starts a reverse proxy to the HTTP server at target
// ("host:port"). modify, when not nil, may change each response (for
// example to tamper with its body). It stops when the test ends.
func StartProxy(tb testing.TB, target string, modify func(*http.Response) error) *Proxy {
	tb.Helper()
	p := &Proxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	rp.ModifyResponse = modify
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	p.Addr = srv.Listener.Addr().String()
	return p
}
