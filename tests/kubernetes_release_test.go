package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	History []releaseEvent
}

// clusterReleaseOf is the release of service as its status records it.
func clusterReleaseOf(t *testing.T, api *apiServer, service string) clusterRelease {
	t.Helper()
	o, err := api.client.Resource(wasmeshServices).Namespace("default").Get(context.Background(), service, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, _ := unstructured.NestedMap(o.Object, "status", "release")
	b, _ := json.Marshal(raw)
	var r clusterRelease
	json.Unmarshal(b, &r)
	return r
}

// startCanaryRelease declares a release of service's version canary in
// steps of 10, 30, 60, 100 held 2 s each, judged on 40 requests (the
// latency check out of reach: a p99 on a loaded machine is noise here),
// and waits for it at its second step.
func startCanaryRelease(t *testing.T, api *apiServer, service string) {
	t.Helper()
	patch := `{"spec":{"release":{"version":"canary","steps":[10,30,60,100],"hold":"2s","min_requests":40,"max_p99_ratio":1000}}}`
	if _, err := api.client.Resource(wasmeshServices).Namespace("default").Patch(context.Background(), service, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitWithin(t, 30*time.Second, "the release at its second step", func() bool {
		r := clusterReleaseOf(t, api, service)
		return r.Phase == "running" && r.Step == 1
	})
}

// releasesLeader is the holder of the releases' Lease, "" for none.
func releasesLeader(api *apiServer) string {
	l, err := api.client.Resource(leases).Namespace("default").Get(context.Background(), "wasmesh-releases", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	h, _, _ := unstructured.NestedString(l.Object, "spec", "holderIdentity")
	return h
}

// releaseEvent is an entry of a release's history.
type releaseEvent struct {
	At      time.Time
	Kind    string
	Step    int
	Weight  int
	Lane    string
	Reason  string
	Figures *struct {
		Candidate struct{ Requests int64 }
	}
}

// TestKubernetesReleaseLeader: three replicas run from the cluster; one
// holds the releases' Lease. A release declared in the WasmeshService is
// driven by that one alone, its state in the object's status, judged on
// the figures of all three (the leader itself serves no request here); the
// leader killed with SIGKILL mid-release, another replica takes the Lease
// and resumes at the same step within the lease duration, and no step is
// applied twice. Replicas that do not
// lead answer the release's state from the cluster, and take a pause or a
// resume to the leader (through the object's status), answering with what
// the leader did or its reason for refusing.
func TestKubernetesReleaseLeader(t *testing.T) {
	api := startAPIServer(t)
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
	holder := func() string { return releasesLeader(api) }
	var leader string
	// A replica of an earlier test, killed, may hold the Lease until it
	// expires (15 s by default).
	testutil.WaitWithin(t, 40*time.Second, "one of the replicas leading releases", func() bool {
		leader = holder()
		return replicas[leader] != nil
	})
	// The leader says so in its metrics, the others not.
	for n, r := range replicas {
		want := "0"
		if n == leader {
			want = "1"
		}
		poll(t, n+"'s wasmesh_release_leader", func() bool { return metric(t, r.gateway, "wasmesh_release_leader") == want })
	}
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

	release := func() clusterRelease { return clusterReleaseOf(t, api, "rel") }
	startCanaryRelease(t, api, "rel")
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
	// Operations through followers are done by the leader.
	if p := adminCall(t, followers[0], "POST", "/v1/releases/rel/pause"); p.code != 200 || !strings.Contains(p.body, `"paused"`) {
		t.Fatalf("a follower's pause: %d %s; want 200, paused by the leader", p.code, p.body)
	}
	if got := release(); got.Phase != "paused" || got.Step != 1 {
		t.Fatalf("after a follower's pause the release is %s at step %d", got.Phase, got.Step)
	}
	if p := adminCall(t, followers[1], "POST", "/v1/releases/rel/resume"); p.code != 200 || !strings.Contains(p.body, `"running"`) {
		t.Fatalf("a follower's resume: %d %s; want 200, resumed by the leader", p.code, p.body)
	}
	if p := adminCall(t, followers[1], "POST", "/v1/releases/rel/resume"); p.code != http.StatusConflict || !strings.Contains(p.body, leader) || !strings.Contains(p.body, "not paused") {
		t.Fatalf("a follower's resume of a running release: %d %s; want 409 with the leader's (%s) reason", p.code, p.body, leader)
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
			if e.Kind == "resumed" && strings.Contains(e.Reason, "taken over") {
				return true
			}
		}
		return false
	})
	r = release()
	var resumed time.Time
	for _, e := range r.History {
		if e.Kind == "resumed" && strings.Contains(e.Reason, "taken over") {
			if e.Step != 1 {
				t.Fatalf("resumed at step %d, not at step 1 where the leader died: %+v", e.Step, r.History)
			}
			resumed = e.At
		}
	}
	took := resumed.Sub(killed)
	t.Logf("the leader %s killed; %s resumed the release at step 1 after %s (lease duration %s)", leader, successor, took.Round(10*time.Millisecond), leaseDuration)
	if took > leaseDuration {
		t.Errorf("the release resumed %s after the leader died; want within the lease duration, %s", took, leaseDuration)
	}
	for deadline := time.Now().Add(40 * time.Second); release().Phase != "promoted"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the release not promoted 40 s after the takeover: %+v", release())
		}
	}
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

// TestKubernetesStalledLeaderFenced: a leader stalled past its lease (a
// long pause, a frozen VM: SIGSTOP here) while another replica takes the
// lead and resumes its release makes no write when it wakes, before it
// sees the lease lost: the release goes on under the new leader alone,
// each step once, never paused by weights it did not set.
func TestKubernetesStalledLeaderFenced(t *testing.T) {
	api := startAPIServer(t)
	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	kubeService(t, api, "fen", map[string]any{"path": rust, "name": "stable", "weight": int64(100)}, map[string]any{"path": zig, "name": "canary", "weight": int64(0)})
	replicas := map[string]*kubeReplica{}
	for _, n := range []string{"fen-a", "fen-b"} {
		replicas[n] = startKubeReplica(t, api, "kube-test-admin-token", "--replica", n, "--lease-duration", "3s")
	}
	holder := func() string { return releasesLeader(api) }
	var leader, follower string
	testutil.WaitWithin(t, 40*time.Second, "one of the replicas leading releases", func() bool {
		leader = holder()
		return replicas[leader] != nil
	})
	for n := range replicas {
		if n != leader {
			follower = n
		}
	}
	poll(t, "the follower serving fen", func() bool { return replicas[follower].weights(t, "fen") == "stable=100 canary=0" })
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	wait := testutil.Load(2, stop, func() {
		if resp, err := client.Get(replicas[follower].url + "/hi"); err == nil {
			resp.Body.Close()
		}
		time.Sleep(2 * time.Millisecond)
	})
	defer func() { close(stop); wait() }()
	release := func() clusterRelease { return clusterReleaseOf(t, api, "fen") }
	startCanaryRelease(t, api, "fen")

	stalled := replicas[leader].p.cmd.Process
	if err := stalled.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	woken := false
	defer func() {
		if !woken {
			stalled.Signal(syscall.SIGCONT)
		}
	}()
	testutil.WaitWithin(t, 20*time.Second, "the follower leading", func() bool { return holder() == follower })
	testutil.WaitWithin(t, 20*time.Second, "the release resumed by the follower", func() bool {
		return slices.ContainsFunc(release().History, func(e releaseEvent) bool {
			return e.Kind == "resumed" && strings.Contains(e.Reason, "taken over")
		})
	})
	stalled.Signal(syscall.SIGCONT)
	woken = true
	for deadline := time.Now().Add(40 * time.Second); release().Phase != "promoted"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the release not promoted 40 s after the stalled leader woke: %+v", release())
		}
	}
	var kinds []string
	var steps []int
	for _, e := range release().History {
		kinds = append(kinds, e.Kind)
		if e.Kind == "step" {
			steps = append(steps, e.Step)
		}
	}
	if slices.Contains(kinds, "paused") || !slices.Equal(steps, []int{1, 2}) {
		t.Errorf("history %v, steps %v: want no pause, each step once ([1 2])", kinds, steps)
	}
	if w := replicas[follower].weights(t, "fen"); w != "stable=0 canary=100" {
		t.Errorf("after the promotion the follower serves %q", w)
	}
}

// TestKubernetesGoneReplicaLeases: the Leases of replicas gone (each
// replica that ever ran makes one) are deleted: one not renewed for an
// hour with nothing under release in it; one with counts in it is kept
// (a step may still be judged on them) until a day has passed.
func TestKubernetesGoneReplicaLeases(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	client := api.client.Resource(leases).Namespace("default")
	hourAgo := time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	for name, counts := range map[string]string{"wasmesh-replica-gone": "{}", "wasmesh-replica-busy": `{"hello":{"sha256:00":{"Requests":3}}}`} {
		lease := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
			"metadata": map[string]any{"name": name, "namespace": "default",
				"labels": map[string]any{"wasmesh.dev/replica": "true"}, "annotations": map[string]any{"wasmesh.dev/counts": counts}},
			"spec": map[string]any{"holderIdentity": name, "renewTime": hourAgo, "leaseDurationSeconds": int64(3)},
		}}
		if _, err := client.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	r := startKubeReplica(t, api, "kube-test-admin-token", "--replica", "collector")
	if err := waitHTTP(r.admin+"/readyz", nil, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	poll(t, "the gone replica's Lease deleted", func() bool {
		_, err := client.Get(ctx, "wasmesh-replica-gone", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	if _, err := client.Get(ctx, "wasmesh-replica-busy", metav1.GetOptions{}); err != nil {
		t.Errorf("the Lease with counts in it, an hour old: %v, want it kept", err)
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

// TestKubernetesLanes: traffic lanes are WasmeshLane objects; `wasmesh
// lane update` through one replica edits the object, and every replica
// sends the lane's requests to its version; a lane the gateways refuse
// says why in its status and changes nothing; creating a lane through a
// replica is refused, naming the object to create. A lane-first release
// started through the replica that does not lead is started by the
// leader, which edits the WasmeshLane, promotes the candidate and puts
// the lane back.
func TestKubernetesLanes(t *testing.T) {
	api := startAPIServer(t)
	ctx := context.Background()
	rust, zig := repoPath("examples", "hello", "rust", "hello.wasm"), repoPath("examples", "hello", "zig", "hello.wasm")
	stable, canary := fileDigest(t, rust), fileDigest(t, zig)
	kubeService(t, api, "ln", map[string]any{"path": rust, "name": "stable", "weight": int64(100)}, map[string]any{"path": zig, "name": "canary", "weight": int64(0)})
	lanes := api.client.Resource(schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshlanes"}).Namespace("default")
	for name, spec := range map[string]map[string]any{
		"beta": {"entry": []any{map[string]any{"header": "X-Lane=beta"}}},
		"bad":  {"versions": map[string]any{"ln": "nope"}, "entry": []any{map[string]any{"header": "X-Lane=bad"}}},
	} {
		if _, err := lanes.Create(ctx, kubeObject("WasmeshLane", name, spec), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lanes.Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	replicas := []*kubeReplica{startKubeReplica(t, api, "kube-test-admin-token", "--replica", "ln-0", "--lease-duration", "3s"),
		startKubeReplica(t, api, "kube-test-admin-token", "--replica", "ln-1", "--lease-duration", "3s")}
	lanesGVR := schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshlanes"}
	poll(t, "beta accepted", func() bool { s, _, _ := accepted(t, api, lanesGVR, "beta"); return s == "True" })
	poll(t, "bad refused", func() bool { s, _, _ := accepted(t, api, lanesGVR, "bad"); return s == "False" })
	if _, reason, msg := accepted(t, api, lanesGVR, "bad"); reason != "Invalid" || !strings.Contains(msg, `service "ln" has no version "nope"`) {
		t.Errorf("the refused lane's condition: %s: %s", reason, msg)
	}
	served := func(r *kubeReplica, lane string) string {
		req, _ := http.NewRequest("GET", r.url+"/hi", nil)
		if lane != "" {
			req.Header.Set("X-Lane", lane)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Wasmesh-Version")
	}
	for _, r := range replicas {
		poll(t, "ln served", func() bool { return served(r, "") == stable })
	}

	cli := func(args ...string) result {
		return wasmesh(t, opts{env: []string{"WASMESH_ADMIN_TOKEN=kube-test-admin-token"}}, append(args, "--admin="+strings.TrimPrefix(replicas[0].admin, "http://"))...)
	}
	if res := cli("lane", "update", "beta", "--version", "ln=canary"); res.code != 0 {
		t.Fatalf("lane update through a replica: exit %d, %s", res.code, res.stderr)
	}
	o, err := lanes.Get(ctx, "beta", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(o.Object, "spec", "versions", "ln"); v != "canary" {
		t.Errorf("the WasmeshLane after lane update: versions.ln = %q, want canary", v)
	}
	for i, r := range replicas {
		poll(t, fmt.Sprintf("replica %d sending beta's requests to the canary", i), func() bool { return served(r, "beta") == canary })
		if got := served(r, ""); got != stable {
			t.Errorf("replica %d: a request outside the lane served by %s", i, got)
		}
	}
	// A lane replaced through the admin API is what the edit says: a field
	// it leaves out is removed, though another manager (kubectl) set it.
	if _, err := lanes.Patch(ctx, "beta", types.MergePatchType, []byte(`{"spec":{"mode":"strict"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	laneMode := func() string {
		req, _ := http.NewRequest("GET", replicas[0].admin+"/v1/lanes/beta", nil)
		req.Header.Set("Authorization", "Bearer kube-test-admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lane struct{ Mode string }
		json.NewDecoder(resp.Body).Decode(&lane)
		return lane.Mode
	}
	poll(t, "beta strict on the replica", func() bool { return laneMode() == "strict" })
	put, _ := http.NewRequest("PUT", replicas[0].admin+"/v1/lanes/beta",
		strings.NewReader(`{"name":"beta","versions":{"ln":"canary"},"entry":[{"header":"X-Lane=beta"}]}`))
	put.Header.Set("Authorization", "Bearer kube-test-admin-token")
	if resp, err := http.DefaultClient.Do(put); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 200 {
		t.Fatalf("PUT /v1/lanes/beta: %s", resp.Status)
	}
	if o, err := lanes.Get(ctx, "beta", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if mode, found, _ := unstructured.NestedString(o.Object, "spec", "mode"); found && mode != "permissive" {
		t.Errorf("the WasmeshLane after a PUT without mode: mode %q, want none", mode)
	}
	poll(t, "beta permissive on the replica", func() bool { return laneMode() != "strict" })
	if res := cli("lane", "create", "gamma", "--version", "ln=canary"); res.code == 0 || !strings.Contains(res.stderr, "create a WasmeshLane") {
		t.Errorf("lane create through a replica: exit %d, %s; want it refused, naming WasmeshLane", res.code, res.stderr)
	}

	// A release that takes its candidate through the lane first: the
	// leader sets the lane's version in the WasmeshLane, then the weights.
	if res := cli("lane", "update", "beta", "--version", "ln="); res.code != 0 {
		t.Fatalf("lane update through a replica: exit %d, %s", res.code, res.stderr)
	}
	for i, r := range replicas {
		poll(t, fmt.Sprintf("replica %d with ln out of the lane", i), func() bool { return served(r, "beta") == stable })
	}
	// Started through the replica that does not lead: the leader starts it.
	var holder string
	testutil.WaitWithin(t, 30*time.Second, "a replica leading releases", func() bool {
		l, err := api.client.Resource(leases).Namespace("default").Get(ctx, "wasmesh-releases", metav1.GetOptions{})
		if err != nil {
			return false
		}
		holder, _, _ = unstructured.NestedString(l.Object, "spec", "holderIdentity")
		return holder == "ln-0" || holder == "ln-1"
	})
	follower := replicas[0]
	if holder == "ln-0" {
		follower = replicas[1]
	}
	res := wasmesh(t, opts{env: []string{"WASMESH_ADMIN_TOKEN=kube-test-admin-token"}}, "release", "start", "ln", "canary", "--lane", "beta",
		"--steps", "100", "--hold", "1s", "--min-requests", "5", "--max-p99-ratio", "1000", "--admin="+strings.TrimPrefix(follower.admin, "http://"))
	if res.code != 0 {
		t.Fatalf("release start through the replica that does not lead: exit %d, %s", res.code, res.stderr)
	}
	services := api.client.Resource(wasmeshServices).Namespace("default")
	var rel clusterRelease
	for deadline := time.Now().Add(60 * time.Second); rel.Phase != "promoted"; {
		for _, r := range replicas {
			served(r, "beta")
			served(r, "")
		}
		o, err := services.Get(ctx, "ln", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _, _ := unstructured.NestedMap(o.Object, "status", "release")
		b, _ := json.Marshal(raw)
		rel = clusterRelease{}
		json.Unmarshal(b, &rel)
		if time.Now().After(deadline) {
			t.Fatalf("the lane-first release not promoted: %+v", rel)
		}
	}
	if h := rel.History; len(h) != 2 || h[0].Kind != "started" || h[0].Lane != "beta" || h[0].Weight != 0 || h[1].Kind != "promoted" || h[1].Weight != 100 {
		t.Errorf("the lane-first release's history: %+v; want started in lane beta at weight 0, then promoted", h)
	}
	o, err = lanes.Get(ctx, "beta", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, found, _ := unstructured.NestedString(o.Object, "spec", "versions", "ln"); found {
		t.Errorf("the lane's version of ln after the release: %q, want it put back (none)", v)
		for _, r := range replicas {
			for _, l := range strings.Split(r.p.stderr.String(), "\n") {
				if (strings.Contains(l, "lane") || strings.Contains(l, "release")) && !strings.Contains(l, "msg=request") {
					t.Log(l)
				}
			}
		}
	}
	for i, r := range replicas {
		poll(t, fmt.Sprintf("replica %d serving the promoted canary", i), func() bool { return served(r, "") == canary })
	}
}
