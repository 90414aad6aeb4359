package kube

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/wasmesh/wasmesh/internal/rollout"
)

// Leases is the resource the replicas coordinate through.
var Leases = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// The Lease the replica leading releases holds, and the label and
// annotation of the Lease each replica publishes its counts in.
const (
	LeaderLease      = "wasmesh-releases"
	replicaLabel     = "wasmesh.dev/replica"
	countsAnnotation = "wasmesh.dev/counts"
)

// FleetOptions configure a Fleet.
type FleetOptions struct {
	// Identity names this replica among the others (the pod's name).
	// Required.
	Identity string
	// LeaseDuration bounds how long the releases wait for another replica
	// to lead after the leader dies. Default 15s. The Lease itself is held
	// for four fifths of it without renewal; the leader renews it within
	// half of it (or steps down), and every replica tries to take it, or
	// renews it, every twentieth of it (client-go jitters a try by up to
	// 1.2 more): a dead leader's successor takes over within 0.8 + 0.11
	// of it.
	LeaseDuration time.Duration
	// PublishEvery is how often the replica publishes its counts of the
	// versions under release. Default 1s.
	PublishEvery time.Duration
	// Local gives this replica's own counts of a version (the data
	// plane's). Required before Run (SetLocal).
	Local func(service, digest string) rollout.Count
}

// Fleet makes the gateways reading one namespace a fleet: one leads the
// releases, holding the Lease LeaderLease; each publishes what it served
// of the versions under release in a Lease of its own
// ("wasmesh-replica-NAME", annotation wasmesh.dev/counts), which the
// leader sums; a release's state is kept in its WasmeshService's
// status.release, where every replica reads it.
type Fleet struct {
	src    *Source
	opts   FleetOptions
	leases coordinationclient.LeasesGetter

	mu       sync.Mutex
	leader   string
	lister   cache.GenericLister
	leadMu   sync.Mutex        // held while this replica leads (Run)
	saved    map[string]string // the status.release last written, by service
	answered map[string]string // the ID of the request last answered, by service
	started  time.Time
}

// NewFleet returns the fleet of s's namespace, seen from this replica.
func (s *Source) NewFleet(rc *rest.Config, opts FleetOptions) (*Fleet, error) {
	if opts.Identity == "" {
		return nil, errors.New("kubernetes: a replica needs a name (--replica, or $POD_NAME)")
	}
	opts.LeaseDuration = cmp.Or(opts.LeaseDuration, 15*time.Second)
	opts.PublishEvery = cmp.Or(opts.PublishEvery, time.Second)
	if opts.LeaseDuration < time.Second {
		return nil, fmt.Errorf("kubernetes: the lease duration must be at least 1s, got %s", opts.LeaseDuration)
	}
	cc, err := coordinationclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	s.instance = opts.Identity
	return &Fleet{src: s, opts: opts, leases: cc, saved: map[string]string{}, answered: map[string]string{}, started: time.Now()}, nil
}

// SetLocal sets FleetOptions.Local, for a replica whose data plane is
// made after its fleet.
func (f *Fleet) SetLocal(local func(service, digest string) rollout.Count) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts.Local = local
}

func (f *Fleet) local(service, digest string) rollout.Count {
	f.mu.Lock()
	local := f.opts.Local
	f.mu.Unlock()
	return local(service, digest)
}

// Rollout is what the release controller needs of the fleet.
func (f *Fleet) Rollout() rollout.Fleet {
	return rollout.Fleet{State: releaseState{f}, Counts: f.counts, Leader: f.Leader, Event: f.releaseEvent,
		Ask: f.ask, Requests: f.requests, Answer: f.answer}
}

// releaseEvent records an event of a release as an Event regarding its
// WasmeshService: ReleaseStarted, ReleaseStep, ReleasePromoted,
// ReleaseRolledBack (a warning), ….
func (f *Fleet) releaseEvent(service string, e rollout.Event) {
	lister := f.src.listed[Services]
	if lister == nil {
		return
	}
	obj, err := lister.ByNamespace(f.src.opts.Namespace).Get(service)
	if err != nil {
		return
	}
	o, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	typ := Normal
	if e.Kind == rollout.RolledBack || e.Kind == rollout.Aborted || e.Kind == rollout.Paused {
		typ = Warning
	}
	note := fmt.Sprintf("step %d, candidate at weight %d", e.Step, e.Weight)
	if e.Lane != "" {
		note += " in lane " + e.Lane
	}
	if e.Reason != "" {
		note += ": " + e.Reason
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f.src.event(ctx, o, typ, "Release"+camel(e.Kind), "Release", note)
}

// camel is a release event's kind in CamelCase ("rolled_back": "RolledBack").
func camel(kind string) string {
	var b strings.Builder
	for _, part := range strings.Split(kind, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// Leader names the replica that holds the leader's Lease, as last seen.
func (f *Fleet) Leader() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

// Run takes part in the fleet until ctx ends: once the source has loaded
// its first config, this replica publishes its counts and stands for the
// lead; while it holds the Lease, lead runs (and is stopped, through its
// context, when the lease is lost).
func (f *Fleet) Run(ctx context.Context, lead func(ctx context.Context)) error {
	inf := dynamicinformer.NewFilteredDynamicSharedInformerFactory(f.src.client, f.src.opts.Resync, f.src.opts.Namespace,
		func(o *metav1.ListOptions) { o.LabelSelector = replicaLabel })
	lf := inf.ForResource(Leases)
	if _, err := lf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{}); err != nil {
		return err
	}
	f.mu.Lock()
	f.lister = lf.Lister()
	f.mu.Unlock()
	inf.Start(ctx.Done())
	defer inf.Shutdown()
	for !f.src.Synced() { // a leader needs the config to resume releases against
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	go f.publish(ctx)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaderLease, Namespace: f.src.opts.Namespace},
		Client:     f.leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: f.opts.Identity},
		Labels:     map[string]string{"app.kubernetes.io/managed-by": "wasmesh"},
	}
	d := f.opts.LeaseDuration
	var le *leaderelection.LeaderElector
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: LeaderLease, ReleaseOnCancel: true,
		LeaseDuration: d * 4 / 5, RenewDeadline: d / 2, RetryPeriod: d / 20,
		Callbacks: leaderelection.LeaderCallbacks{
			// client-go starts this in a goroutine of its own and does not
			// wait for it: leadMu keeps two terms from overlapping.
			OnStartedLeading: func(ctx context.Context) {
				f.leadMu.Lock()
				defer f.leadMu.Unlock()
				if ctx.Err() != nil {
					return
				}
				f.src.log.Info("kubernetes: leading releases", "replica", f.opts.Identity, "lease", LeaderLease)
				lead(context.WithValue(ctx, fenceKey{}, func() error {
					// The lease renewed within its duration: a replica
					// stalled past it (a long pause, a frozen VM) may
					// have lost it to another before its context ends.
					if ctx.Err() != nil || !le.IsLeader() || le.Check(0) != nil {
						return errLeaseLost
					}
					return nil
				}))
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				f.mu.Lock()
				f.leader = id
				f.mu.Unlock()
				f.src.log.Info("kubernetes: the releases' leader", "replica", id, "lease", LeaderLease)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	for ctx.Err() == nil {
		le.Run(ctx) // returns when the lease is lost: stand again, once the term has ended
		f.leadMu.Lock()
		//lint:ignore SA2001 the lock is the term: taking it waits for it to end
		f.leadMu.Unlock()
	}
	return nil
}

// fenceKey carries, in the context a leader's writes are made in, the
// check that it still holds the lease (fence).
type fenceKey struct{}

var errLeaseLost = errors.New("kubernetes: this replica's lease on the releases' lead may have passed to another (not renewed within its duration): the write is left to the leader")

// fence is nil unless ctx is a leader's whose lease may have passed to
// another replica: its writes (weights, status) are then not made, so
// that two replicas never drive one release.
func fence(ctx context.Context) error {
	if check, ok := ctx.Value(fenceKey{}).(func() error); ok {
		return check()
	}
	return nil
}

// replicaLease is the name of the Lease a replica publishes its counts in.
func replicaLease(identity string) string {
	name := "wasmesh-replica-" + strings.Trim(notName.ReplaceAllString(strings.ToLower(identity), "-"), "-")
	return name[:min(len(name), 253)]
}

var notName = regexp.MustCompile(`[^a-z0-9.-]+`)

// publish writes, every PublishEvery while a release runs in the
// namespace, this replica's counts of the versions under release in its
// Lease. The Lease outlives the replica: what it served still counts in
// the step it served it in.
func (f *Fleet) publish(ctx context.Context) {
	name := replicaLease(f.opts.Identity)
	client := f.leases.Leases(f.src.opts.Namespace)
	tick := time.NewTicker(f.opts.PublishEvery)
	defer tick.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		counts := map[string]map[string]rollout.Count{}
		for service, digests := range f.src.releasing() {
			counts[service] = map[string]rollout.Count{}
			for _, d := range digests {
				counts[service][d] = f.local(service, d)
			}
		}
		f.collectLeases(ctx, client, name)
		data, _ := json.Marshal(counts)
		if string(data) == last {
			continue
		}
		if err := f.writeLease(ctx, client, name, string(data)); err != nil {
			f.src.log.Debug("kubernetes: counts not published", "lease", name, "error", err)
			continue
		}
		last = string(data)
	}
}

// staleReplica is how long another replica's Lease may go unrenewed with
// nothing under release in it before it is deleted; staleAny, with
// counts: a step that its counts may still be judged in is over by then.
const (
	staleReplica = 10 * time.Minute
	staleAny     = 24 * time.Hour
)

// collectLeases deletes the Leases of replicas gone (one is made by each
// replica that ever ran: a Deployment's rollouts would pile them up): those
// not renewed for staleReplica with no counts in them, or for staleAny.
// A Lease renewed meanwhile is not deleted (the delete's precondition).
func (f *Fleet) collectLeases(ctx context.Context, client coordinationclient.LeaseInterface, own string) {
	f.mu.Lock()
	lister := f.lister
	f.mu.Unlock()
	now := time.Now()
	for _, u := range listAll(lister) {
		if u.GetName() == own {
			continue
		}
		renewed, _, _ := unstructured.NestedString(u.Object, "spec", "renewTime")
		at, err := time.Parse(time.RFC3339Nano, renewed)
		if err != nil {
			continue
		}
		idle := u.GetAnnotations()[countsAnnotation] == "{}"
		if age := now.Sub(at); age < staleAny && (!idle || age < staleReplica) {
			continue
		}
		rv := u.GetResourceVersion()
		err = client.Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			f.src.log.Debug("kubernetes: a gone replica's Lease not deleted", "lease", u.GetName(), "error", err)
		}
	}
}

func (f *Fleet) writeLease(ctx context.Context, client coordinationclient.LeaseInterface, name, counts string) error {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(math.Ceil(3 * f.opts.PublishEvery.Seconds()))
	lease, err := client.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.src.opts.Namespace,
			Labels: map[string]string{replicaLabel: "true", "app.kubernetes.io/managed-by": "wasmesh"}}}
		lease.Spec.HolderIdentity = &f.opts.Identity
		lease.Spec.AcquireTime = &metav1.MicroTime{Time: f.started}
		lease.Spec.LeaseDurationSeconds = &secs
		lease.Spec.RenewTime = &now
		lease.Annotations = map[string]string{countsAnnotation: counts}
		_, err = client.Create(ctx, lease, metav1.CreateOptions{FieldManager: FieldManager})
		return err
	}
	if err != nil {
		return err
	}
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[countsAnnotation] = counts
	lease.Spec.HolderIdentity = &f.opts.Identity
	lease.Spec.LeaseDurationSeconds = &secs
	lease.Spec.RenewTime = &now
	_, err = client.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// counts are every replica's counts of a version: this one's, live, under
// ""; the others' as they last published them (a replica that has died
// keeps what it served).
func (f *Fleet) counts(service, digest string) map[string]rollout.Count {
	out := map[string]rollout.Count{"": f.local(service, digest)}
	f.mu.Lock()
	lister := f.lister
	f.mu.Unlock()
	for _, u := range listAll(lister) {
		holder, _, _ := unstructured.NestedString(u.Object, "spec", "holderIdentity")
		raw := u.GetAnnotations()[countsAnnotation]
		if holder == "" || holder == f.opts.Identity || raw == "" {
			continue
		}
		var published map[string]map[string]rollout.Count
		if json.Unmarshal([]byte(raw), &published) != nil {
			continue
		}
		if c, ok := published[service][digest]; ok {
			out[holder] = c
		}
	}
	return out
}

// listAll is every object lister has (none when it is nil).
func listAll(lister cache.GenericLister) []*unstructured.Unstructured {
	if lister == nil {
		return nil
	}
	objs, err := lister.List(labels.Everything())
	if err != nil {
		return nil
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out = append(out, u)
		}
	}
	return out
}

// releasing gives the services with a release running or paused, as their
// status says, each with its baseline's and candidate's digests.
func (s *Source) releasing() map[string][]string {
	out := map[string][]string{}
	for _, u := range listAll(s.listed[Services]) {
		rel, _, _ := unstructured.NestedMap(u.Object, "status", "release")
		if phase := rel["phase"]; phase != rollout.Running && phase != rollout.Paused {
			continue
		}
		var digests []string
		for _, k := range []string{"baseline", "candidate"} {
			if d, ok := rel[k].(string); ok && d != "" {
				digests = append(digests, d)
			}
		}
		out[u.GetName()] = digests
	}
	return out
}

// releaseState keeps each release in its WasmeshService's status.release.
type releaseState struct{ f *Fleet }

func (r releaseState) Where() string {
	return "the status.release of the WasmeshServices in namespace " + r.f.src.opts.Namespace
}

// Load reads the releases from the cluster itself (not a cache): a
// replica taking the lead resumes from what the last leader wrote.
func (r releaseState) Load(ctx context.Context) ([]*rollout.Release, error) {
	list, err := r.f.src.client.Resource(Services).Namespace(r.f.src.opts.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: listing WasmeshServices: %w", err)
	}
	var out []*rollout.Release
	for _, o := range list.Items {
		rel, ok, _ := unstructured.NestedMap(o.Object, "status", "release")
		if !ok {
			continue
		}
		data, _ := json.Marshal(rel)
		var x rollout.Release
		if err := json.Unmarshal(data, &x); err != nil || x.Service != o.GetName() {
			r.f.src.log.Error("kubernetes: a WasmeshService's status.release is unreadable; left out", "service", o.GetName(), "error", err)
			continue
		}
		r.f.mu.Lock()
		r.f.saved[x.Service] = string(data)
		r.f.mu.Unlock()
		out = append(out, &x)
	}
	return out, nil
}

// Save writes the status.release of each service whose release changed
// since it was last written (read again and written back on a conflict
// with another write of the status).
func (r releaseState) Save(ctx context.Context, releases []*rollout.Release) error {
	var errs []error
	for _, rel := range releases {
		data, err := json.Marshal(rel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.f.mu.Lock()
		same := r.f.saved[rel.Service] == string(data)
		r.f.mu.Unlock()
		if same {
			continue
		}
		var value map[string]any
		json.Unmarshal(data, &value)
		if err := r.f.writeStatus(ctx, rel.Service, "release", value); err != nil {
			errs = append(errs, err)
			continue
		}
		r.f.mu.Lock()
		r.f.saved[rel.Service] = string(data)
		r.f.mu.Unlock()
	}
	return errors.Join(errs...)
}

// writeStatus sets the field of a WasmeshService's status to value (read
// again and written back on a conflict with another write of the status).
func (f *Fleet) writeStatus(ctx context.Context, service, field string, value any) error {
	return f.writeStatusIf(ctx, service, field, value, nil)
}

// writeStatusIf is writeStatus, provided cond (when not nil) holds of the
// object as read before the write; nothing is written when it does not.
func (f *Fleet) writeStatusIf(ctx context.Context, service, field string, value any, cond func(*unstructured.Unstructured) bool) error {
	b, err := json.Marshal(value)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	client := f.src.client.Resource(Services).Namespace(f.src.opts.Namespace)
	for try := 0; ; try++ {
		cur, err := client.Get(ctx, service, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && field == "release" {
			return nil // the service is gone, and its release with it
		}
		if err != nil {
			return fmt.Errorf("kubernetes: reading WasmeshService %s: %w", service, err)
		}
		if cond != nil && !cond(cur) {
			return nil
		}
		if err := unstructured.SetNestedField(cur.Object, runtime.DeepCopyJSONValue(v), "status", field); err != nil {
			return err
		}
		if err := fence(ctx); err != nil {
			return err
		}
		_, err = client.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err) && try < 5:
			continue
		default:
			return fmt.Errorf("kubernetes: writing the status.%s of WasmeshService %s: %w", field, service, err)
		}
	}
}

// The request field of a WasmeshService's status: an operation on its
// release asked of the leader by another replica, and the answer.
const requestField = "release_request"

// request is a rollout.Request as status.release_request holds it, with
// the leader's answer.
type request struct {
	rollout.Request
	At    time.Time `json:"at"`
	Done  bool      `json:"done,omitempty"`
	Error string    `json:"error,omitempty"`
	// Kind is the error's: not_found, conflict or invalid.
	Kind string `json:"kind,omitempty"`
}

// ask writes r into its service's status.release_request, for the leader
// to do (a replica that does not lead was asked), and waits for the
// leader's answer: the release as the leader left it, or its error, of
// the same kind (rollout.ErrNotFound, ErrConflict, ErrInvalid).
func (f *Fleet) ask(ctx context.Context, r rollout.Request) (*rollout.Release, error) {
	var id [8]byte
	rand.Read(id[:])
	r.ID, r.By = hex.EncodeToString(id[:]), f.opts.Identity
	if err := f.writeStatus(ctx, r.Service, requestField, request{Request: r, At: time.Now().UTC()}); apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: service %q (no WasmeshService of that name)", rollout.ErrNotFound, r.Service)
	} else if err != nil {
		return nil, err
	}
	client := f.src.client.Resource(Services).Namespace(f.src.opts.Namespace)
	wait := 2*f.opts.LeaseDuration + 5*time.Second // a leader's tick, or a new leader's
	deadline := time.Now().Add(wait)
	for {
		o, err := client.Get(ctx, r.Service, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: service %q (no WasmeshService of that name)", rollout.ErrNotFound, r.Service)
		}
		if err != nil {
			return nil, fmt.Errorf("kubernetes: reading WasmeshService %s: %w", r.Service, err)
		}
		var got request
		if raw, ok, _ := unstructured.NestedMap(o.Object, "status", requestField); ok {
			b, _ := json.Marshal(raw)
			json.Unmarshal(b, &got)
		}
		switch {
		case got.ID != r.ID:
			return nil, fmt.Errorf("%w: another %s of the release of %s was asked meanwhile (by %s); try again", rollout.ErrConflict, got.Action, r.Service, got.By)
		case got.Done && got.Error != "":
			kind := map[string]error{"not_found": rollout.ErrNotFound, "invalid": rollout.ErrInvalid, "conflict": rollout.ErrConflict}[got.Kind]
			if kind == nil { // no kind: an error of the leader's own, as a direct call would give it
				return nil, fmt.Errorf("the leader (%s): %s", f.Leader(), got.Error)
			}
			return nil, fmt.Errorf("%w: the leader (%s): %s", kind, f.Leader(), strings.TrimPrefix(got.Error, kind.Error()+": "))
		case got.Done:
			raw, _, _ := unstructured.NestedMap(o.Object, "status", "release")
			b, _ := json.Marshal(raw)
			var rel rollout.Release
			if err := json.Unmarshal(b, &rel); err != nil {
				return nil, fmt.Errorf("kubernetes: WasmeshService %s's status.release: %w", r.Service, err)
			}
			return &rel, nil
		case time.Now().After(deadline):
			return nil, fmt.Errorf("%w: no replica leading releases answered within %s (leader: %q); the request stands in WasmeshService %s's status", rollout.ErrConflict, wait, f.Leader(), r.Service)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// requests are those the leader has not answered, from the services'
// status (each once: one answered is not given again while the status
// catches up).
func (f *Fleet) requests() []rollout.Request {
	var out []rollout.Request
	for _, u := range listAll(f.src.listed[Services]) {
		raw, ok, _ := unstructured.NestedMap(u.Object, "status", requestField)
		if !ok {
			continue
		}
		b, _ := json.Marshal(raw)
		var r request
		if json.Unmarshal(b, &r) != nil || r.Done || r.ID == "" {
			continue
		}
		f.mu.Lock()
		seen := f.answered[u.GetName()] == r.ID
		f.mu.Unlock()
		if !seen {
			r.Service = u.GetName()
			out = append(out, r.Request)
		}
	}
	return out
}

// answer records the leader's answer to r in its service's status,
// unless another request has taken r's place there meanwhile.
func (f *Fleet) answer(ctx context.Context, r rollout.Request, err error) {
	a := request{Request: r, At: time.Now().UTC(), Done: true}
	if err != nil {
		a.Error = err.Error()
		for kind, e := range map[string]error{"not_found": rollout.ErrNotFound, "conflict": rollout.ErrConflict, "invalid": rollout.ErrInvalid} {
			if errors.Is(err, e) {
				a.Kind = kind
			}
		}
	}
	still := func(cur *unstructured.Unstructured) bool {
		id, _, _ := unstructured.NestedString(cur.Object, "status", requestField, "id")
		return id == r.ID
	}
	if err := f.writeStatusIf(ctx, r.Service, requestField, a, still); err != nil {
		f.src.log.Warn("kubernetes: a release request's answer not written", "service", r.Service, "action", r.Action, "error", err)
		return
	}
	f.mu.Lock()
	f.answered[r.Service] = r.ID // its status may show it unanswered a while yet
	f.mu.Unlock()
}
