package tests

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

var leases = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// clusterRelease is a service's release as its status records it.
type clusterRelease struct {
	Step    int
	Phase   string
	History []struct {
		At      time.Time
		Kind    string
		Step    int
		Weight  int
		Reason  string
		Figures *struct {
			Candidate struct{ Requests int64 }
		}
	}
}

// TestKubernetesReleaseLeader: three replicas run from the cluster; one
// holds the releases' Lease. A release declared in the WasmeshService is
// driven by that one alone, its state in the object's status, judged on
// the figures of all three (the leader itself serves no request here); the
// leader killed with SIGKILL mid-release, another replica takes the Lease
// and resumes at the same step within the lease's duration (and a little
// of its retry period), and no step is applied twice. Replicas that do not
// lead answer the release's state and refuse to change it, naming the
// leader.
func TestKubernetesReleaseLeader(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	services := api.client.Resource(wasmeshServices).Namespace("default")
	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	kubeService(t, api, "rel", map[string]any{"path": rust, "name": "stable", "weight": int64(100)}, map[string]any{"path": zig, "name": "canary", "weight": int64(0)})

	const leaseDuration = 3 * time.Second
	names := []string{"rel-a", "rel-b", "rel-c"}
	replicas := map[string]*kubeReplica{}
	for _, n := range names {
		replicas[n] = startKubeReplica(t, api, "kube-test-admin-token", "--replica", n, "--lease-duration", leaseDuration.String())
	}
	for n, r := range replicas {
		poll(t, n+" serving rel", func() bool { return r.weights(t, "rel") == "stable=100 canary=0" })
	}
	holder := func() string {
		l, err := api.client.Resource(leases).Namespace("default").Get(ctx, "wasmesh-releases", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		h, _, _ := unstructured.NestedString(l.Object, "spec", "holderIdentity")
		return h
	}
	var leader string
	// A replica of an earlier test, killed, may hold the Lease until it
	// expires (15 s by default).
	testutil.WaitWithin(t, 40*time.Second, "one of the replicas leading releases", func() bool {
		leader = holder()
		return replicas[leader] != nil
	})
	var followers []*kubeReplica
	for _, n := range names {
		if n != leader {
			followers = append(followers, replicas[n])
		}
	}

	// Requests go to the followers only: the leader judges on what they
	// publish.
	stop := make(chan struct{})
	var failed atomic.Int64
	var next atomic.Int64
	client := &http.Client{Timeout: 5 * time.Second}
	wait := testutil.Load(2, stop, func() {
		f := followers[next.Add(1)%int64(len(followers))]
		resp, err := client.Get(f.url + "/hi")
		if err != nil || resp.StatusCode != 200 {
			failed.Add(1)
		}
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(2 * time.Millisecond)
	})
	defer func() { close(stop); wait() }()

	release := func() clusterRelease {
		o, err := services.Get(ctx, "rel", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _, _ := unstructured.NestedMap(o.Object, "status", "release")
		b, _ := json.Marshal(raw)
		var r clusterRelease
		json.Unmarshal(b, &r)
		return r
	}
	patch := `{"spec":{"release":{"version":"canary","steps":[10,30,60,100],"hold":"2s","min_requests":40}}}`
	if _, err := services.Patch(ctx, "rel", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitWithin(t, 30*time.Second, "the release at its second step (30)", func() bool { r := release(); return r.Phase == "running" && r.Step == 1 })
	r := release()
	first := r.History[len(r.History)-1]
	if first.Kind != "step" || first.Figures == nil || first.Figures.Candidate.Requests < 40 {
		t.Fatalf("the first step was passed on the followers' figures, or not: %+v", first)
	}

	// A follower answers the release's state and refuses to change it.
	st := adminCall(t, followers[0], "GET", "/v1/releases/rel")
	var seen clusterRelease
	if st.code != 200 || json.Unmarshal([]byte(st.body), &seen) != nil || seen.Step != 1 || seen.Phase != "running" {
		t.Fatalf("a follower's GET /v1/releases/rel: %d %s", st.code, st.body)
	}
	if p := adminCall(t, followers[0], "POST", "/v1/releases/rel/pause"); p.code != http.StatusConflict || !strings.Contains(p.body, leader) {
		t.Fatalf("a follower's pause: %d %s; want 409 naming the leader %s", p.code, p.body, leader)
	}

	killed := time.Now()
	replicas[leader].p.cmd.Process.Kill()
	replicas[leader].p.cmd.Wait()
	var successor string
	testutil.WaitWithin(t, 20*time.Second, "another replica leading", func() bool {
		successor = holder()
		return successor != leader && replicas[successor] != nil
	})
	testutil.WaitWithin(t, 20*time.Second, "the release resumed by "+successor, func() bool {
		for _, e := range release().History {
			if e.Kind == "resumed" {
				return true
			}
		}
		return false
	})
	r = release()
	var resumed time.Time
	for _, e := range r.History {
		if e.Kind == "resumed" {
			if e.Step != 1 {
				t.Fatalf("resumed at step %d, not at step 1 where the leader died: %+v", e.Step, r.History)
			}
			resumed = e.At
		}
	}
	took := resumed.Sub(killed)
	t.Logf("the leader %s killed; %s resumed the release at step 1 after %s (lease duration %s)", leader, successor, took.Round(10*time.Millisecond), leaseDuration)
	// The Lease expires at most leaseDuration after the last renewal,
	// and a candidate tries every tenth of it (client-go jitters that by
	// up to 1.2 more).
	if limit := leaseDuration + leaseDuration/10*22/10 + 500*time.Millisecond; took > limit {
		t.Errorf("the release resumed %s after the leader died; want within %s", took, limit)
	}
	testutil.WaitWithin(t, 40*time.Second, "the release promoted", func() bool { return release().Phase == "promoted" })
	r = release()
	var kinds []string
	var steps []int
	for _, e := range r.History {
		kinds = append(kinds, e.Kind)
		if e.Kind == "step" {
			steps = append(steps, e.Step)
		}
	}
	if !slices.Equal(steps, []int{1, 2}) {
		t.Errorf("steps recorded %v, want [1 2]: each once (history %v)", steps, kinds)
	}
	// The leaders recorded the release's events on the object.
	want := []string{"Normal ReleaseStarted Release", "Normal ReleaseStep Release", "Normal ReleaseResumed Release", "Normal ReleasePromoted Release"}
	poll(t, "the release's Events", func() bool {
		evs := events(t, api, "rel")
		for _, w := range want {
			if !slices.ContainsFunc(evs, func(e string) bool { return strings.HasPrefix(e, w+": ") }) {
				return false
			}
		}
		return true
	})
	for _, f := range followers {
		poll(t, "the promotion on every replica", func() bool { return f.weights(t, "rel") == "stable=0 canary=100" })
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests to the followers failed during the release", n)
	}
}

// adminResult is an admin API call's status and body.
type adminResult struct {
	code int
	body string
}

func adminCall(t *testing.T, r *kubeReplica, method, path string) adminResult {
	t.Helper()
	req, _ := http.NewRequest(method, r.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return adminResult{resp.StatusCode, b.String()}
}

// TestKubernetesExampleObjects: the example objects of the cluster
// overlay (deploy/kubernetes/cluster/hello.yaml) pass the real API
// server's validation of the CRDs (schema and CEL rules), in a dry run.
func TestKubernetesExampleObjects(t *testing.T) {
	api := startAPIServer(t)
	n := 0
	for _, o := range manifestObjects(t, "hello.yaml") {
		gvr := map[string]schema.GroupVersionResource{"WasmeshService": wasmeshServices, "WasmeshRoute": wasmeshRoutes}[o.GetKind()]
		if _, err := api.client.Resource(gvr).Namespace("default").Create(context.Background(), o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("hello.yaml holds %d objects, want a service and its route", n)
	}
}
