package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// kubeObject is a wasmesh.dev/v1alpha1 object of kind in the default
// namespace.
func kubeObject(kind, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wasmesh.dev/v1alpha1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     spec,
	}}
}

// kubeReplica is a gateway that runs from the cluster's default namespace.
type kubeReplica struct {
	*gateway
	token string
}

func startKubeReplica(t *testing.T, api *apiServer, token string, args ...string) *kubeReplica {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "wasmesh.yaml")
	cfg := fmt.Sprintf("listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0, token_file: %s }\nstore: %s\ndrain_delay: 0s\n", tokenFile, filepath.Join(dir, "store"))
	if err := os.WriteFile(base, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g := serveArgs(t, base, append([]string{"--kubernetes", "default", "--kubeconfig", api.kubeconfig}, args...))
	return &kubeReplica{gateway: g, token: token}
}

// weights are the replica's weights of service, "name=weight" each, ""
// before it has a config.
func (r *kubeReplica) weights(t *testing.T, service string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", r.admin+"/v1/services", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var services []struct {
		Name     string
		Versions []struct {
			Name   string
			Weight int
		}
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/services: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&services); err != nil {
		t.Fatalf("GET /v1/services: %v", err)
	}
	for _, s := range services {
		if s.Name == service {
			var parts []string
			for _, v := range s.Versions {
				parts = append(parts, fmt.Sprintf("%s=%d", v.Name, v.Weight))
			}
			return strings.Join(parts, " ")
		}
	}
	return ""
}

// share is the share of n requests to the replica served by digest.
func (r *kubeReplica) share(t *testing.T, n int, digest string) float64 {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	hits := 0
	for range n {
		resp, err := client.Get(r.url + "/hi")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /hi: %d", resp.StatusCode)
		}
		if resp.Header.Get("X-Wasmesh-Version") == digest {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// accepted is the Accepted condition of the object: its status, reason
// and message, "" when it has none yet.
func accepted(t *testing.T, api *apiServer, gvr schema.GroupVersionResource, name string) (status, reason, message string) {
	t.Helper()
	o, err := api.client.Resource(gvr).Namespace("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Accepted" {
			return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
		}
	}
	return "", "", ""
}

// manifestObjects are the objects of a file of deploy/kubernetes/cluster,
// with JSON's types (as the API server gives them).
func manifestObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(repoPath("deploy", "kubernetes", "cluster", file))
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		j, _ := json.Marshal(doc)
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(j); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, o)
	}
}

// kubeService creates a WasmeshService of versions and a WasmeshRoute of
// every path to it, both named name in the default namespace, deleted when
// t ends.
func kubeService(t *testing.T, api *apiServer, name string, versions ...any) {
	t.Helper()
	ctx := context.Background()
	services := api.client.Resource(wasmeshServices).Namespace("default")
	routes := api.client.Resource(wasmeshRoutes).Namespace("default")
	if _, err := services.Create(ctx, kubeObject("WasmeshService", name, map[string]any{"versions": versions}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { services.Delete(ctx, name, metav1.DeleteOptions{}) })
	if _, err := routes.Create(ctx, kubeObject("WasmeshRoute", name, map[string]any{"match": map[string]any{"path_prefix": "/"}, "service": name}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routes.Delete(ctx, name, metav1.DeleteOptions{}) })
}

// events are the Events regarding the object name: "TYPE REASON ACTION: NOTE" each.
func events(t *testing.T, api *apiServer, name string) []string {
	t.Helper()
	list, err := api.client.Resource(schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}).Namespace("default").
		List(context.Background(), metav1.ListOptions{FieldSelector: "regarding.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		str := func(k string) string { v, _, _ := unstructured.NestedString(e.Object, k); return v }
		out = append(out, fmt.Sprintf("%s %s %s: %s", str("type"), str("reason"), str("action"), str("note")))
	}
	return out
}

// TestKubernetesReplicas: three gateways take their services and routes
// from a real API server's WasmeshService and WasmeshRoute objects: each
// serves the declared 90/10 split (±3% over 3,000 requests), and a sticky
// key the same version on all three; a patch of
// the weights reaches all three within 2 s (the slowest of 20 patches); an
// object the gateways refuse says why in its status, and traffic goes on
// as before on every replica; an edit through a replica's admin API
// (promote, deploy) changes the object and every replica converges, and of
// two made at once one wins and the other is told it conflicted.
func TestKubernetesReplicas(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	canary := fileDigest(t, zig)
	split := func(stable, canary int) []any {
		return []any{
			map[string]any{"path": rust, "name": "stable", "weight": int64(stable)},
			map[string]any{"path": zig, "name": "canary", "weight": int64(canary)},
		}
	}
	services := api.client.Resource(wasmeshServices).Namespace("default")
	if _, err := services.Create(ctx, kubeObject("WasmeshService", "hello", map[string]any{"versions": split(90, 10), "sticky": "header:x-user"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { services.Delete(ctx, "hello", metav1.DeleteOptions{}) })
	routes := api.client.Resource(wasmeshRoutes).Namespace("default")
	if _, err := routes.Create(ctx, kubeObject("WasmeshRoute", "hello", map[string]any{"match": map[string]any{"path_prefix": "/"}, "service": "hello"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routes.Delete(ctx, "hello", metav1.DeleteOptions{}) })

	var replicas []*kubeReplica
	for range 3 {
		replicas = append(replicas, startKubeReplica(t, api, "kube-test-admin-token"))
	}
	for i, r := range replicas {
		if err := waitHTTP(r.admin+"/readyz", nil, 60*time.Second); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	poll(t, "hello accepted", func() bool { s, _, _ := accepted(t, api, wasmeshServices, "hello"); return s == "True" })
	for i, r := range replicas {
		if got := r.share(t, 3000, canary); got < 0.07 || got > 0.13 {
			t.Errorf("replica %d: the canary served %.1f%% of 3,000 requests, want 10%% ± 3%%", i, 100*got)
		}
	}
	// A sticky key picks the same version on every replica.
	client := &http.Client{Timeout: 10 * time.Second}
	keysOnCanary := 0
	for k := range 300 {
		var got []string
		for _, r := range replicas {
			req, _ := http.NewRequest("GET", r.url+"/hi", nil)
			req.Header.Set("X-User", fmt.Sprintf("user-%d", k))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got = append(got, resp.Header.Get("X-Wasmesh-Version"))
		}
		if got[0] != got[1] || got[1] != got[2] {
			t.Fatalf("sticky key user-%d: the replicas chose %v", k, got)
		}
		if got[0] == canary {
			keysOnCanary++
		}
	}
	if keysOnCanary < 12 || keysOnCanary > 48 {
		t.Errorf("%d of 300 sticky keys on the canary at 10%%", keysOnCanary)
	}

	// Patches of the weights, each waited for on every replica.
	var took []time.Duration
	for i := range 20 {
		s, c := 50, 50
		if i%2 == 1 {
			s, c = 90, 10
		}
		if i == 19 {
			s, c = 50, 50
		}
		patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"versions": split(s, c)}})
		start := time.Now()
		if _, err := services.Patch(ctx, "hello", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("stable=%d canary=%d", s, c)
		for _, r := range replicas {
			for r.weights(t, "hello") != want {
				if time.Since(start) > 30*time.Second {
					t.Fatalf("patch %d: a replica serves %q, want %q", i, r.weights(t, "hello"), want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("a patch reached all three replicas in %s (median), %s (slowest of %d)", took[len(took)/2], took[len(took)-1], len(took))
	if slowest := took[len(took)-1]; slowest > 2*time.Second {
		t.Errorf("the slowest of %d patches reached the replicas in %s, want within 2s", len(took), slowest)
	}
	for i, r := range replicas {
		if got := r.share(t, 3000, canary); got < 0.47 || got > 0.53 {
			t.Errorf("replica %d after the patches: the canary served %.1f%% of 3,000 requests, want 50%% ± 3%%", i, 100*got)
		}
	}

	// An object the gateways refuse: its status says why, and nothing
	// changes on any replica.
	missing := filepath.Join(t.TempDir(), "missing.wasm")
	if _, err := services.Create(ctx, kubeObject("WasmeshService", "broken", map[string]any{
		"versions": []any{map[string]any{"path": missing}}}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { services.Delete(ctx, "broken", metav1.DeleteOptions{}) })
	// refused waits for the object's Accepted=False and checks its reason
	// and that its message has want.
	refused := func(gvr schema.GroupVersionResource, name, want string) {
		t.Helper()
		var reason, message string
		poll(t, name+" refused", func() bool {
			var status string
			status, reason, message = accepted(t, api, gvr, name)
			return status == "False"
		})
		if reason != "Invalid" || !strings.Contains(message, want) {
			t.Errorf("%s's condition: %s: %s, want Invalid with %q", name, reason, message, want)
		}
	}
	refused(wasmeshServices, "broken", "missing.wasm")
	poll(t, "a Warning event regarding broken", func() bool {
		return slices.ContainsFunc(events(t, api, "broken"), func(e string) bool {
			return strings.HasPrefix(e, "Warning Invalid Load: ") && strings.Contains(e, "missing.wasm")
		})
	})
	for i, r := range replicas {
		if w := r.weights(t, "hello"); w != "stable=50 canary=50" {
			t.Errorf("replica %d after the refused object: %q", i, w)
		}
		if got := r.share(t, 300, canary); got < 0.35 || got > 0.65 {
			t.Errorf("replica %d after the refused object: the canary served %.1f%%", i, 100*got)
		}
	}
	// A module by a digest no store has: refused the same way.
	unknown := "sha256:" + strings.Repeat("0", 64)
	if _, err := services.Create(ctx, kubeObject("WasmeshService", "unknown", map[string]any{
		"versions": []any{map[string]any{"module": unknown}}}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { services.Delete(ctx, "unknown", metav1.DeleteOptions{}) })
	refused(wasmeshServices, "unknown", "sha256:00000000")
	// A match the schema lets through and the gateways refuse.
	if _, err := routes.Create(ctx, kubeObject("WasmeshRoute", "badhost", map[string]any{"match": map[string]any{"host": "not a host!", "path_prefix": "/bad"}, "service": "hello"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routes.Delete(ctx, "badhost", metav1.DeleteOptions{}) })
	refused(wasmeshRoutes, "badhost", `invalid host pattern "not a host!"`)
	for i, r := range replicas {
		if w := r.weights(t, "hello"); w != "stable=50 canary=50" {
			t.Errorf("replica %d after the unknown digest and the bad match: %q", i, w)
		}
		if got := r.share(t, 200, canary); got < 0.3 || got > 0.7 {
			t.Errorf("replica %d after the unknown digest and the bad match: the canary served %.1f%%", i, 100*got)
		}
	}
	// The schema catches what it can before a gateway sees it.
	for _, c := range []struct {
		what string
		obj  *unstructured.Unstructured
		want string
	}{
		{"a weight of 150", kubeObject("WasmeshService", "heavy", map[string]any{"versions": []any{map[string]any{"path": rust, "weight": int64(150)}}}), "150"},
		{"a negative weight", kubeObject("WasmeshService", "negative", map[string]any{"versions": []any{map[string]any{"path": rust, "weight": int64(-1)}}}), "-1"},
		{"a version with module and path", kubeObject("WasmeshService", "both", map[string]any{"versions": []any{map[string]any{"path": rust, "module": unknown}}}), "a version has one of module, path or upstream"},
		{"a match with path and path_prefix", kubeObject("WasmeshRoute", "badmatch", map[string]any{"match": map[string]any{"path": "/a", "path_prefix": "/"}, "service": "hello"}), "a match has path or path_prefix, not both"},
		{"a path without /", kubeObject("WasmeshRoute", "noslash", map[string]any{"match": map[string]any{"path_prefix": "hello"}, "service": "hello"}), "path_prefix"},
	} {
		gvr := wasmeshServices
		if c.obj.GetKind() == "WasmeshRoute" {
			gvr = wasmeshRoutes
		}
		if _, err := api.client.Resource(gvr).Namespace("default").Create(ctx, c.obj, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want the API server to refuse it (%q)", c.what, err, c.want)
		}
	}

	// Edits through a replica go to the cluster, and every replica
	// converges; two made at once from the same state: one wins, the other
	// is told it conflicted.
	admin := func(r *kubeReplica, args ...string) result {
		return wasmesh(t, opts{env: []string{"WASMESH_ADMIN_TOKEN=kube-test-admin-token"}},
			append(args, "--admin="+strings.TrimPrefix(r.admin, "http://"))...)
	}
	// converged waits until every replica serves what the object says,
	// and returns it.
	converged := func() string {
		t.Helper()
		o, err := services.Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vs, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		var parts []string
		for _, v := range vs {
			m := v.(map[string]any)
			parts = append(parts, fmt.Sprintf("%v=%v", m["name"], m["weight"]))
		}
		want := strings.Join(parts, " ")
		for _, r := range replicas {
			poll(t, "replica at "+want, func() bool { return r.weights(t, "hello") == want })
		}
		return want
	}
	if res := admin(replicas[0], "promote", "hello", "canary"); res.code != 0 {
		t.Fatalf("promote through a replica: exit %d, %s", res.code, res.stderr)
	}
	if got := converged(); got != "canary=100" {
		t.Errorf("after promote through a replica, the object says %s", got)
	}
	// The edit is an update by the gateways' field manager.
	if o, err := services.Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if !slices.ContainsFunc(o.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == "wasmesh" && m.Operation == metav1.ManagedFieldsOperationUpdate
	}) {
		t.Errorf("no update by field manager wasmesh in %+v", o.GetManagedFields())
	}
	conflicted := false
	for round := 0; round < 5 && !conflicted; round++ {
		var wg sync.WaitGroup
		var results [2]result
		for i, weight := range []string{fmt.Sprint(20 + round), fmt.Sprint(40 + round)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = admin(replicas[1+i], "deploy", "hello", rust, "--weight", weight, "--name", "stable")
			}()
		}
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.code == 0:
				ok++
			case strings.Contains(r.stderr, "changed in the cluster since this gateway loaded it"), strings.Contains(r.stderr, "keeps changing in the cluster"):
				conflicted = true
			default:
				t.Fatalf("a deploy at the same time as another: exit %d, %s", r.code, r.stderr)
			}
		}
		if ok == 0 {
			t.Fatalf("both deploys failed: %s / %s", results[0].stderr, results[1].stderr)
		}
		t.Logf("round %d: %d of 2 deploys won; every replica serves %s", round, ok, converged())
	}
	if !conflicted {
		t.Errorf("five rounds of two deploys at once, and never a conflict")
	}
}

// TestKubernetesRefusedRecovers: an object refused for what it lacked is
// taken once that comes, with no edit of it: a route to a service made
// after it, a service whose module file appears later (tried again on a
// backoff, as a watched file is), an object deleted and made again under
// its name; and a refused edit of one service (its last good spec serving
// in its place) holds back no edit of another through the admin API.
func TestKubernetesRefusedRecovers(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	services := api.client.Resource(wasmeshServices).Namespace("default")
	create := func(gvr schema.GroupVersionResource, kind, name string, spec map[string]any) {
		t.Helper()
		res := api.client.Resource(gvr).Namespace("default")
		if _, err := res.Create(ctx, kubeObject(kind, name, spec), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	route := func(name string) {
		t.Helper()
		create(wasmeshRoutes, "WasmeshRoute", name, map[string]any{"match": map[string]any{"path_prefix": "/" + name + "/"}, "service": name})
	}
	condition := func(gvr schema.GroupVersionResource, name, want string) {
		t.Helper()
		poll(t, name+" Accepted="+want, func() bool { s, _, _ := accepted(t, api, gvr, name); return s == want })
	}
	r := startKubeReplica(t, api, "kube-test-admin-token")
	if err := waitHTTP(r.admin+"/readyz", nil, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	served := func(name string) func() bool {
		return func() bool { code, _, _ := get(t, r.url+"/"+name+"/"); return code == 200 }
	}

	// A route before its service: its status names it, not its index
	// in the replica's assembled config.
	route("late")
	condition(wasmeshRoutes, "late", "False")
	if _, _, msg := accepted(t, api, wasmeshRoutes, "late"); !strings.Contains(msg, `route "late"`) || strings.Contains(msg, "routes[") {
		t.Errorf("the route's status: %s", msg)
	}
	create(wasmeshServices, "WasmeshService", "late", map[string]any{"versions": []any{map[string]any{"path": rust, "name": "stable", "weight": int64(100)}}})
	poll(t, "/late/ served once its service came", served("late"))
	condition(wasmeshRoutes, "late", "True")
	if !strings.Contains(r.p.stderr.String(), `msg="service added" service=late`) || !strings.Contains(r.p.stderr.String(), `by="Kubernetes namespace default"`) {
		t.Errorf("the service's coming not logged as the cluster's:\n%s", r.p.stderr.String())
	}

	// A module file that comes after its service.
	later := filepath.Join(t.TempDir(), "later.wasm")
	create(wasmeshServices, "WasmeshService", "later", map[string]any{"versions": []any{map[string]any{"path": later}}})
	route("later")
	condition(wasmeshServices, "later", "False")
	wasm, err := os.ReadFile(rust)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(later, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitWithin(t, 45*time.Second, "/later/ served once its module came", served("later"))
	condition(wasmeshServices, "later", "True")

	// Refused, then deleted and made again, good, under the same name.
	create(wasmeshServices, "WasmeshService", "again", map[string]any{"versions": []any{map[string]any{"path": later + ".missing"}}})
	condition(wasmeshServices, "again", "False")
	if err := services.Delete(ctx, "again", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := services.Create(ctx, kubeObject("WasmeshService", "again", map[string]any{"versions": []any{map[string]any{"path": rust}}}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	route("again")
	poll(t, "/again/ served once made again", served("again"))
	condition(wasmeshServices, "again", "True")

	// A refused edit of late: its last good spec serves in its place, and
	// an edit of another service through the admin API goes through.
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"versions": []any{
		map[string]any{"path": rust, "name": "stable", "weight": int64(90)},
		map[string]any{"path": zig, "name": "canary", "weight": int64(20)},
	}}})
	if _, err := services.Patch(ctx, "late", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	condition(wasmeshServices, "late", "False")
	if _, _, msg := accepted(t, api, wasmeshServices, "late"); strings.Contains(msg, "again") || strings.Contains(msg, "later") {
		t.Errorf("late's status names other objects' errors: %s", msg)
	}
	admin := func(args ...string) result {
		return wasmesh(t, opts{env: []string{"WASMESH_ADMIN_TOKEN=kube-test-admin-token"}},
			append(args, "--admin="+strings.TrimPrefix(r.admin, "http://"))...)
	}
	if res := admin("deploy", "again", zig, "--weight", "50", "--name", "canary"); res.code != 0 {
		t.Fatalf("a deploy of again while late is refused: exit %d, %s", res.code, res.stderr)
	}
	poll(t, "again's canary served", func() bool { return strings.Contains(r.weights(t, "again"), "canary=50") })
	if res := admin("deploy", "late", zig, "--weight", "10", "--name", "canary"); res.code == 0 || !strings.Contains(res.stderr, "refused") {
		t.Errorf("a deploy of late, refused in the cluster: exit %d, %s; want it refused, saying why", res.code, res.stderr)
	}
	if got := r.weights(t, "late"); got != "stable=100" {
		t.Errorf("late serves %q, want its last good spec (stable=100)", got)
	}
}

// TestKubernetesAPIOutage: with the API server stopped for 30 s, the
// replicas keep serving the config they have; once it is back, they take
// the changes made since (their watches resume on their own).
func TestKubernetesAPIOutage(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	services := api.client.Resource(wasmeshServices).Namespace("default")
	routes := api.client.Resource(wasmeshRoutes).Namespace("default")
	versions := func(stable, canary int64) []any {
		return []any{map[string]any{"path": rust, "name": "stable", "weight": stable}, map[string]any{"path": zig, "name": "canary", "weight": canary}}
	}
	if _, err := services.Create(ctx, kubeObject("WasmeshService", "outage", map[string]any{"versions": versions(100, 0)}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { services.Delete(ctx, "outage", metav1.DeleteOptions{}) })
	if _, err := routes.Create(ctx, kubeObject("WasmeshRoute", "outage", map[string]any{"match": map[string]any{"path_prefix": "/"}, "service": "outage"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routes.Delete(ctx, "outage", metav1.DeleteOptions{}) })
	replicas := []*kubeReplica{startKubeReplica(t, api, "kube-test-admin-token"), startKubeReplica(t, api, "kube-test-admin-token", "--log-format", "json")}
	for _, r := range replicas {
		poll(t, "replica serving", func() bool { return r.weights(t, "outage") == "stable=100 canary=0" })
	}
	// The JSON log stays JSON through the outage: client-go's lines too.
	defer func() {
		for _, line := range strings.Split(strings.TrimSpace(replicas[1].p.stderr.String()), "\n") {
			if !json.Valid([]byte(line)) {
				t.Errorf("a line of the JSON log is not JSON: %q", line)
				break
			}
		}
	}()

	down := make(chan error, 1)
	go func() { down <- api.restart(30 * time.Second) }()
	time.Sleep(time.Second)
	for deadline := time.Now().Add(25 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Second) {
		for i, r := range replicas {
			if code, _, _ := get(t, r.url+"/hi"); code != 200 {
				t.Fatalf("replica %d with the API server down: %d", i, code)
			}
		}
	}
	if err := <-down; err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"versions": versions(0, 100)}})
	if _, err := services.Patch(ctx, "outage", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, r := range replicas {
		for r.weights(t, "outage") != "stable=0 canary=100" {
			if time.Since(back) > 90*time.Second {
				t.Fatalf("replica %d never took the change made after the outage: %q", i, r.weights(t, "outage"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("the replicas took a change made after a 30 s outage %s after the API server was back", time.Since(back).Round(time.Millisecond))
}

// rss is the resident memory of the process pid, in bytes (VmRSS).
func rss(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestKubernetes1000Services: a replica starts on a namespace of 1,000
// services (each its own WasmeshService, the same small module) and is
// ready within 60 s; each service costs it at most 1 MiB of memory over a
// replica of 10 services. The figures go to docs/PERFORMANCE.md.
func TestKubernetes1000Services(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	services := api.client.Resource(wasmeshServices).Namespace("default")
	routes := api.client.Resource(wasmeshRoutes).Namespace("default")
	zig := repoPath("examples", "hello", "zig", "hello.wasm")
	label := metav1.ListOptions{LabelSelector: "wasmesh-test=scale"}
	t.Cleanup(func() {
		began := time.Now()
		services.DeleteCollection(ctx, metav1.DeleteOptions{}, label)
		routes.DeleteCollection(ctx, metav1.DeleteOptions{}, label)
		t.Logf("deleted in %s", time.Since(began).Round(time.Millisecond))
	})
	create := func(from, to int) { // 16 at a time: etcd's writes take a while each here
		var wg sync.WaitGroup
		errs := make(chan error, to-from)
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from + w; i < to; i += 16 {
					o := kubeObject("WasmeshService", fmt.Sprintf("scale-%d", i), map[string]any{"versions": []any{map[string]any{"path": zig}}})
					o.SetLabels(map[string]string{"wasmesh-test": "scale"})
					if _, err := services.Create(ctx, o, metav1.CreateOptions{}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	route := kubeObject("WasmeshRoute", "scale", map[string]any{"match": map[string]any{"path_prefix": "/"}, "service": "scale-0"})
	route.SetLabels(map[string]string{"wasmesh-test": "scale"})
	if _, err := routes.Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// ready starts a replica and returns how long it took to serve the
	// last service, and its memory then (after a GC's worth of settling).
	ready := func(last string) (time.Duration, int64) {
		start := time.Now()
		r := startKubeReplica(t, api, "kube-test-admin-token")
		for r.weights(t, last) == "" {
			if time.Since(start) > 2*time.Minute {
				t.Fatalf("a replica of %s not ready after 2 minutes", last)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(start)
		time.Sleep(2 * time.Second)
		return took, rss(t, r.p.cmd.Process.Pid)
	}
	create(0, 10)
	t10, m10 := ready("scale-9")
	began := time.Now()
	create(10, 1000)
	t.Logf("990 objects created in %s", time.Since(began).Round(time.Millisecond))
	t1000, m1000 := ready("scale-999")
	perService := float64(m1000-m10) / 990
	t.Logf("10 services: ready in %s, RSS %.1f MiB; 1,000: ready in %s, RSS %.1f MiB; %.0f KiB per service",
		t10.Round(time.Millisecond), float64(m10)/(1<<20), t1000.Round(time.Millisecond), float64(m1000)/(1<<20), perService/1024)
	if t1000 > time.Minute {
		t.Errorf("ready on 1,000 services after %s, want within a minute", t1000)
	}
	if perService > 1<<20 {
		t.Errorf("%.0f KiB per service, want at most 1 MiB", perService/1024)
	}
}

// TestKubernetesLeastPrivilege: a gateway whose service account has only
// the Role of deploy/kubernetes/cluster/rbac.yaml reads its objects,
// writes their status and takes an edit through its admin API to the
// cluster; the same token may not read the namespace's Secrets.
func TestKubernetesLeastPrivilege(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	for _, o := range manifestObjects(t, "rbac.yaml") {
		gvr := map[string]schema.GroupVersionResource{
			"ServiceAccount": {Version: "v1", Resource: "serviceaccounts"},
			"Role":           {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
			"RoleBinding":    {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		}[o.GetKind()]
		if _, err := api.client.Resource(gvr).Namespace("default").Create(ctx, o, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	req := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"metadata": map[string]any{"name": "wasmesh-cluster"}, "spec": map[string]any{"expirationSeconds": int64(3600)}}}
	tr, err := api.client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}).Namespace("default").
		Create(ctx, req, metav1.CreateOptions{}, "token")
	if err != nil {
		t.Fatal(err)
	}
	token, _, _ := unstructured.NestedString(tr.Object, "status", "token")
	kc, err := os.ReadFile(api.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	limited := &apiServer{kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	if err := os.WriteFile(limited.kubeconfig, bytes.Replace(kc, []byte("wasmesh-test-admin-token"), []byte(token), 1), 0o600); err != nil {
		t.Fatal(err)
	}

	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	kubeService(t, api, "lp", map[string]any{"path": rust, "name": "stable", "weight": int64(90)}, map[string]any{"path": zig, "name": "canary", "weight": int64(10)})

	r := startKubeReplica(t, limited, "kube-test-admin-token")
	poll(t, "the limited replica serving", func() bool { return r.weights(t, "lp") == "stable=90 canary=10" })
	poll(t, "lp accepted", func() bool { s, _, _ := accepted(t, api, wasmeshServices, "lp"); return s == "True" })
	poll(t, "an Event regarding lp", func() bool {
		return slices.ContainsFunc(events(t, api, "lp"), func(e string) bool { return strings.HasPrefix(e, "Normal Accepted Load: ") })
	})
	poll(t, "the limited replica seeing the releases' leader in its Lease", func() bool {
		return strings.Contains(r.p.stderr.String(), "kubernetes: the releases' leader")
	})
	res := wasmesh(t, opts{env: []string{"WASMESH_ADMIN_TOKEN=kube-test-admin-token"}}, "promote", "lp", "canary", "--admin="+strings.TrimPrefix(r.admin, "http://"))
	if res.code != 0 {
		t.Fatalf("promote with the Role's rights: exit %d, %s", res.code, res.stderr)
	}
	poll(t, "the promote in the cluster", func() bool {
		o, err := api.client.Resource(wasmeshServices).Namespace("default").Get(ctx, "lp", metav1.GetOptions{})
		vs, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		return err == nil && len(vs) == 1
	})
	rc, err := clientcmd.BuildConfigFromFlags("", limited.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("the gateway's token listing Secrets: %v, want forbidden", err)
	}

	// A Role without WasmeshLanes (from before lanes): a replica serves the
	// services and routes, saying why it has no lanes, rather than never
	// being ready.
	roles := api.client.Resource(schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}).Namespace("default")
	role, err := roles.Get(ctx, "wasmesh-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	kept := slices.Clone(rules)
	for i, rule := range rules {
		rule := runtime.DeepCopyJSONValue(rule).(map[string]any)
		var resources []any
		for _, res := range rule["resources"].([]any) {
			if res != "wasmeshlanes" {
				resources = append(resources, res)
			}
		}
		rule["resources"] = resources
		rules[i] = rule
	}
	role.Object["rules"] = rules
	if _, err := roles.Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if role, err := roles.Get(ctx, "wasmesh-gateway", metav1.GetOptions{}); err == nil {
			role.Object["rules"] = kept
			roles.Update(ctx, role, metav1.UpdateOptions{})
		}
	})
	noLanes := startKubeReplica(t, limited, "kube-test-admin-token")
	poll(t, "a replica without lanes serving", func() bool { return noLanes.weights(t, "lp") == "canary=100" })
	if !strings.Contains(noLanes.p.stderr.String(), "WasmeshLanes cannot be read: serving without lanes") {
		t.Errorf("a replica without lanes did not say why:\n%s", noLanes.p.stderr.String())
	}
}
