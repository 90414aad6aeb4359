package kube

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/wasmesh/wasmesh/config"
)

// slice is an EndpointSlice of ports ("name=port") and endpoints.
func slice(ports []string, endpoints ...map[string]any) runtime.Object {
	var ps, eps []any
	for _, p := range ports {
		name, num, _ := strings.Cut(p, "=")
		var n int64
		for _, c := range num {
			n = 10*n + int64(c-'0')
		}
		ps = append(ps, map[string]any{"name": name, "port": n, "protocol": "TCP"})
	}
	for _, e := range endpoints {
		eps = append(eps, e)
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		"addressType": "IPv4", "ports": ps, "endpoints": eps}}
}

// ep is an endpoint at addr with conditions ("ready", "!ready", …).
func ep(addr string, conds ...string) map[string]any {
	c := map[string]any{}
	for _, cond := range conds {
		c[strings.TrimPrefix(cond, "!")] = !strings.HasPrefix(cond, "!")
	}
	return map[string]any{"addresses": []any{addr}, "conditions": c}
}

// TestEndpointsOf: an upstream's endpoints are those its Service's
// EndpointSlices say are ready, at the port it names; when none is, those
// serving while terminating; with none, why.
func TestEndpointsOf(t *testing.T) {
	svc := config.KubernetesService{Service: "users", Port: "http"}
	for _, c := range []struct {
		name    string
		svc     config.KubernetesService
		objs    []runtime.Object
		want    string
		wantWhy string
	}{
		{"ready ones", svc, []runtime.Object{slice([]string{"http=8080"}, ep("10.0.0.2", "ready"), ep("10.0.0.1"), ep("10.0.0.3", "!ready", "!serving"))},
			"10.0.0.1:8080 10.0.0.2:8080", ""},
		{"terminating left out while others are ready", svc, []runtime.Object{slice([]string{"http=8080"}, ep("10.0.0.1", "ready"), ep("10.0.0.2", "!ready", "serving", "terminating"))},
			"10.0.0.1:8080", ""},
		{"terminating when none is ready", svc, []runtime.Object{slice([]string{"http=8080"}, ep("10.0.0.2", "!ready", "serving", "terminating"), ep("10.0.0.3", "!ready", "!serving", "terminating"))},
			"10.0.0.2:8080", ""},
		{"slices with their own ports", svc, []runtime.Object{slice([]string{"http=8080"}, ep("10.0.0.1")), slice([]string{"http=9090"}, ep("10.0.0.1"))},
			"10.0.0.1:8080 10.0.0.1:9090", ""},
		{"a port by number", config.KubernetesService{Service: "users", Port: "9090"}, []runtime.Object{slice([]string{"http=8080", "admin=9090"}, ep("10.0.0.1"))},
			"10.0.0.1:9090", ""},
		{"the only port", config.KubernetesService{Service: "users"}, []runtime.Object{slice([]string{"web=80"}, ep("10.0.0.1"))},
			"10.0.0.1:80", ""},
		{"several ports, none named", config.KubernetesService{Service: "users"}, []runtime.Object{slice([]string{"web=80", "admin=81"}, ep("10.0.0.1"))},
			"", "it has several ports (admin, web): name one (port:)"},
		{"no such port", svc, []runtime.Object{slice([]string{"web=80"}, ep("10.0.0.1"))},
			"", "it has no port http (its ports: web)"},
		{"none serving", svc, []runtime.Object{slice([]string{"http=80"}, ep("10.0.0.1", "!ready", "!serving"))},
			"", "none of its endpoints is ready or serving"},
		{"no slice", svc, nil, "", "no EndpointSlice names it (label kubernetes.io/service-name=users)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hosts, why := endpointsOf(c.svc, c.objs)
			if got := strings.Join(hosts, " "); got != c.want || why != c.wantWhy {
				t.Errorf("endpoints %q (%q), want %q (%q)", got, why, c.want, c.wantWhy)
			}
		})
	}
}
