package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/control"
)

func object(kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "wasmesh.dev/v1alpha1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "default"}, "spec": spec}}
}

// TestAssemble: the objects' specs become the config's services and
// routes, one line each, which the config's parser takes as the file's;
// an error at a line, or naming a service or route, blames its object.
func TestAssemble(t *testing.T) {
	base := []byte("listen: 127.0.0.1:0\nadmin: off\n")
	services := []*unstructured.Unstructured{
		object("WasmeshService", "hello", map[string]any{"versions": []any{
			map[string]any{"path": "a.wasm", "name": "stable", "weight": int64(90)},
			map[string]any{"path": "b.wasm", "name": "canary", "weight": int64(10)}}}),
		object("WasmeshService", "users", map[string]any{"versions": []any{map[string]any{"path": "c.wasm", "weight": int64(-1)}}}),
	}
	routes := []*unstructured.Unstructured{object("WasmeshRoute", "hello", map[string]any{"match": map[string]any{"path_prefix": "/"}, "service": "hello"})}
	data, lines := Assemble(base, Objects{Services: services[:1], Routes: routes})
	cfg, err := config.Parse("cluster", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if s := cfg.Services["hello"]; s == nil || len(s.Versions) != 2 || s.Versions[1].Weight != 10 || len(cfg.Routes) != 1 || cfg.Routes[0].Name != "hello" {
		t.Fatalf("assembled config: %+v", cfg)
	}
	if lines[4] != services[0] || lines[6] != routes[0] {
		t.Fatalf("lines: %v\n%s", lines, data)
	}

	data, lines = Assemble(base, Objects{Services: services, Routes: routes})
	_, err = config.Parse("cluster", data)
	if err == nil {
		t.Fatalf("a negative weight parsed:\n%s", data)
	}
	if got := Blame(err, lines, Objects{Services: services, Routes: routes}); len(got) != 1 || got[0] != services[1] {
		t.Errorf("blamed %v for %v", got, err)
	}
	if got := Blame(errors.New("routes[0] leads to service hello, whose version stable is a library"), lines, Objects{Services: services, Routes: routes}); len(got) != 2 {
		t.Errorf("blamed %d objects for a route to a service, want the route and the service", len(got))
	}

	// Lanes go under lanes:, and an error at a lane's line or naming it
	// blames it.
	lanes := []*unstructured.Unstructured{
		object("WasmeshLane", "beta", map[string]any{"versions": map[string]any{"hello": "canary"}, "entry": []any{map[string]any{"header": "X-Lane=beta"}}}),
		object("WasmeshLane", "broken", map[string]any{"versions": map[string]any{"hello": "nope"}}),
	}
	objs := Objects{Services: services[:1], Routes: routes, Lanes: lanes[:1]}
	data, _ = Assemble(base, objs)
	if cfg, err := config.Parse("cluster", data); err != nil || cfg.Lanes["beta"] == nil || cfg.Lanes["beta"].Versions["hello"] != "canary" {
		t.Fatalf("a lane assembled: %v\n%s", err, data)
	}
	objs.Lanes = lanes
	data, lines = Assemble(base, objs)
	_, err = config.Parse("cluster", data)
	if got := Blame(err, lines, objs); err == nil || len(got) != 1 || got[0] != lanes[1] {
		t.Errorf("blamed %v for %v", got, err)
	}
}

func TestNewRefusesServicesInTheFile(t *testing.T) {
	for _, key := range []string{"services", "routes", "lanes"} {
		_, err := New(nil, Options{Namespace: "default", Base: []byte(key + ": {}\n"), BasePath: "base.yaml", Load: nil})
		if err == nil || !strings.Contains(err.Error(), "base.yaml: "+key+" come from the cluster") {
			t.Errorf("a base file with %s: %v", key, err)
		}
	}
}

// TestPermanentRefusalNotRetried: a WasmeshService refused for a reason no
// retry can mend (the config's own validation) is not loaded again while
// nothing changes in the cluster: each retry would be a failed load (an
// ERROR line, a reload error counted) every 30 s on every replica. The
// retries are for what may come later (control.Retryable), which
// TestKubernetesRefusedRecovers covers.
func TestPermanentRefusalNotRetried(t *testing.T) {
	bad := object("WasmeshService", "bad", map[string]any{"versions": []any{map[string]any{"path": "x.wasm", "weight": int64(-1)}}})
	bad.SetUID("u1")
	bad.SetGeneration(1)
	good := object("WasmeshService", "good", map[string]any{"versions": []any{map[string]any{"path": "y.wasm"}}})
	good.SetUID("u2")
	good.SetGeneration(1)
	scheme := runtime.NewScheme()
	client := dynfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		Services: "WasmeshServiceList", Routes: "WasmeshRouteList", Lanes: "WasmeshLaneList",
	}, bad, good)
	var failed, loads atomic.Int32
	s := &Source{
		opts: Options{Namespace: "default", Resync: time.Hour, Load: func(_ context.Context, data []byte) error {
			loads.Add(1)
			if strings.Contains(string(data), "x.wasm") {
				failed.Add(1)
				return errors.New("services.bad: versions[0].weight: -1 is not within 0 to 100")
			}
			return nil
		}},
		client: client, log: slog.New(slog.NewTextHandler(io.Discard, nil)), changed: make(chan struct{}, 1),
		listed: map[schema.GroupVersionResource]cache.GenericLister{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(4500 * time.Millisecond) // retries at 1 s and 3 s, were they made
	cancel()
	<-done
	t.Logf("in 4.5 s, nothing changed in the cluster: %d loads, %d of them refused", loads.Load(), failed.Load())
	if failed.Load() > 1 {
		t.Errorf("a refusal no retry can mend was loaded (and refused, logged at ERROR, counted as a failed reload) %d times", failed.Load())
	}
}

// TestUnavailable: an edit's failure to reach the API server, or the API
// server's failure to answer now, is control.ErrUnavailable (503, to try
// again); one it refused is not.
func TestUnavailable(t *testing.T) {
	gr := schema.GroupResource{Group: "wasmesh.dev", Resource: "wasmeshservices"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{apierrors.NewServiceUnavailable("etcd down"), true},
		{apierrors.NewTimeoutError("slow", 1), true},
		{apierrors.NewTooManyRequests("busy", 1), true},
		{apierrors.NewInternalError(errors.New("boom")), true},
		{apierrors.NewConflict(gr, "hello", errors.New("changed")), false},
		{apierrors.NewForbidden(gr, "hello", errors.New("no")), false},
		{apierrors.NewNotFound(gr, "hello"), false},
	} {
		err := unavailable(tc.err)
		if got := errors.Is(err, control.ErrUnavailable); got != tc.want || err.Error() != tc.err.Error() {
			t.Errorf("unavailable(%v): %v, Is ErrUnavailable %v; want %v, the same message", tc.err, err, got, tc.want)
		}
	}
}

// TestEventName: an event's name is its object's, a dot and the time,
// within the 253 characters a name may have, whatever its object's.
func TestEventName(t *testing.T) {
	now := time.Unix(1_700_000_000, 123)
	for _, name := range []string{"hello", strings.Repeat("a", 240) + ".b", strings.Repeat("x", 253)} {
		got := eventName(name, now)
		if len(got) > 253 || !strings.HasSuffix(got, fmt.Sprintf(".%x", now.UnixNano())) || !strings.HasPrefix(got, name[:5]) {
			t.Errorf("eventName(%d characters) = %q (%d)", len(name), got, len(got))
		}
	}
}

// TestRouteNames: a refused object's status names routes by their
// objects' names, not by their index in the assembled config (which
// differs from replica to replica).
func TestRouteNames(t *testing.T) {
	objs := Objects{Routes: []*unstructured.Unstructured{object("WasmeshRoute", "a", nil), object("WasmeshRoute", "b", nil)}}
	got := routeNames(objs, `routes[1].match.host: invalid host pattern; routes[0] leads to service x; routes[7] is past them`)
	if want := `route "b".match.host: invalid host pattern; route "a" leads to service x; routes[7] is past them`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestUnblamedRefusalLogged: a refusal no object is blamed for is logged
// without the place in the assembled config (which no one can open).
func TestUnblamedRefusalLogged(t *testing.T) {
	svc := object("WasmeshService", "hello", map[string]any{"versions": []any{map[string]any{"path": "y.wasm"}}})
	client := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		Services: "WasmeshServiceList", Routes: "WasmeshRouteList", Lanes: "WasmeshLaneList",
	}, svc)
	var logged bytes.Buffer
	var mu sync.Mutex
	s := &Source{
		opts: Options{Namespace: "default", Resync: time.Hour, Load: func(context.Context, []byte) error {
			return errors.New("/etc/wasmesh/assembled.yaml:3:7: http.max_body: must be at least 1 KiB")
		}},
		client: client, log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil)), changed: make(chan struct{}, 1),
		listed: map[schema.GroupVersionResource]cache.GenericLister{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		out := logged.String()
		mu.Unlock()
		if strings.Contains(out, "config refused") {
			if strings.Contains(out, "assembled.yaml") || !strings.Contains(out, "http.max_body: must be at least 1 KiB") {
				t.Errorf("logged %s; want the error without its place in the assembled config", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
