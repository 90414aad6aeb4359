package kube

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wasmesh/wasmesh/config"
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
