package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

var endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

// hostAddr is the machine's first IPv4 address that is not loopback (the
// API server refuses loopback addresses in EndpointSlices).
func hostAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no IPv4 address but loopback, which EndpointSlices may not hold")
	return ""
}

// TestKubernetesEndpointSlices: an upstream version naming a Kubernetes
// Service proxies to the endpoints its EndpointSlices say are ready, and
// follows their changes: an endpoint added gets requests, one terminating
// gets no new request while another is ready (and gets them when it is the
// only one still serving), none at all is a 503 that says why.
func TestKubernetesEndpointSlices(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	ip := hostAddr(t)
	type backend struct {
		port int
		hits atomic.Int64
	}
	start := func(name string) *backend {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		b := &backend{port: l.Addr().(*net.TCPAddr).Port}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.hits.Add(1)
			w.Header().Set("X-Backend", name)
			io.WriteString(w, "hello from "+name+"\n")
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return b
	}
	a, b := start("a"), start("b")

	services := api.client.Resource(wasmeshServices).Namespace("default")
	routes := api.client.Resource(wasmeshRoutes).Namespace("default")
	eps := api.client.Resource(endpointSlices).Namespace("default")
	if _, err := services.Create(ctx, kubeObject("WasmeshService", "native", map[string]any{"versions": []any{
		map[string]any{"name": "go", "weight": int64(100), "upstream": map[string]any{"kubernetes": map[string]any{"service": "users-native", "port": "http"}}}}}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { services.Delete(ctx, "native", metav1.DeleteOptions{}) })
	if _, err := routes.Create(ctx, kubeObject("WasmeshRoute", "native", map[string]any{"match": map[string]any{"path_prefix": "/"}, "service": "native"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routes.Delete(ctx, "native", metav1.DeleteOptions{}) })
	r := startKubeReplica(t, api, "kube-test-admin-token")
	poll(t, "native accepted", func() bool { s, _, _ := accepted(t, api, wasmeshServices, "native"); return s == "True" })

	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, string, string) {
		resp, err := client.Get(r.url + "/users")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Backend"), string(body)
	}
	// served counts, of n requests, those each backend answered.
	served := func(n int) map[string]int {
		out := map[string]int{}
		for range n {
			code, by, body := get()
			if code != 200 {
				out[fmt.Sprint(code)]++
				_ = body
				continue
			}
			out[by]++
		}
		return out
	}
	slice := func(name string, port int, conditions map[string]any) {
		o := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
			"metadata":    map[string]any{"name": name, "namespace": "default", "labels": map[string]any{"kubernetes.io/service-name": "users-native"}},
			"addressType": "IPv4",
			"ports":       []any{map[string]any{"name": "http", "port": int64(port), "protocol": "TCP"}},
			"endpoints":   []any{map[string]any{"addresses": []any{ip}, "conditions": conditions}},
		}}
		cur, err := eps.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			o.SetResourceVersion(cur.GetResourceVersion())
			_, err = eps.Update(ctx, o, metav1.UpdateOptions{})
		} else {
			_, err = eps.Create(ctx, o, metav1.CreateOptions{})
			t.Cleanup(func() { eps.Delete(ctx, name, metav1.DeleteOptions{}) })
		}
		if err != nil {
			t.Fatalf("EndpointSlice %s: %v", name, err)
		}
	}
	ready := map[string]any{"ready": true, "serving": true, "terminating": false}
	terminating := map[string]any{"ready": false, "serving": true, "terminating": true}
	gone := map[string]any{"ready": false, "serving": false, "terminating": true}

	if code, _, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "users-native") {
		t.Fatalf("before any EndpointSlice: %d %q; want 503 naming the Service", code, body)
	}
	slice("users-native-a", a.port, ready)
	poll(t, "a's endpoint serving", func() bool { code, by, _ := get(); return code == 200 && by == "a" })
	slice("users-native-b", b.port, ready)
	poll(t, "b's endpoint added", func() bool { return served(40)["b"] > 0 })
	if got := served(200); got["a"] < 50 || got["b"] < 50 {
		t.Fatalf("two ready endpoints served %v of 200", got)
	}

	slice("users-native-a", a.port, terminating)
	changed := time.Now()
	poll(t, "a terminating, left out", func() bool { return served(20)["b"] == 20 })
	t.Logf("a terminating: left out %s after the EndpointSlice changed", time.Since(changed).Round(time.Millisecond))
	before := a.hits.Load()
	if got := served(200); got["b"] != 200 || a.hits.Load() != before {
		t.Fatalf("with a terminating and b ready: %v of 200, a got %d new requests; want all on b", got, a.hits.Load()-before)
	}

	slice("users-native-b", b.port, gone)
	poll(t, "a, terminating but serving, the only one left", func() bool { return served(20)["a"] == 20 })

	eps.Delete(ctx, "users-native-a", metav1.DeleteOptions{})
	eps.Delete(ctx, "users-native-b", metav1.DeleteOptions{})
	testutil.WaitFor(t, "no endpoints: 503", func() bool {
		code, _, body := get()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no EndpointSlice names it")
	})
}
