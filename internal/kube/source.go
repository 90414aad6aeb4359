// Package kube makes a Kubernetes cluster the gateway's config source: the
// services and routes of a namespace, as WasmeshService and WasmeshRoute
// objects (deploy/kubernetes/crds), watched through client-go's informers.
// Every change is assembled with the gateway's own settings (its config
// file, without services or routes) into a config, which goes through the
// same decode, validate, provision and swap as a file; whether it was
// taken is written back to each object's status (condition Accepted), as
// Gateway API and Istio controllers do.
package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	yaml "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmesh/wasmesh/internal/control"
)

// The resources the gateway reads.
var (
	Services = schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshservices"}
	Routes   = schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshroutes"}
	Lanes    = schema.GroupVersionResource{Group: "wasmesh.dev", Version: "v1alpha1", Resource: "wasmeshlanes"}
)

// Objects are the namespace's objects a config is assembled from, each
// kind sorted by name.
type Objects struct {
	Services, Routes, Lanes []*unstructured.Unstructured
}

// all is every object, services first.
func (o Objects) all() []*unstructured.Unstructured {
	return slices.Concat(o.Services, o.Routes, o.Lanes)
}

// each applies f to each kind's list.
func (o Objects) each(f func([]*unstructured.Unstructured) []*unstructured.Unstructured) Objects {
	return Objects{Services: f(o.Services), Routes: f(o.Routes), Lanes: f(o.Lanes)}
}

// kinds are the resources read, each with the config's key its objects
// go under.
var kinds = []struct {
	gvr  schema.GroupVersionResource
	kind string
	key  string
}{{Services, "WasmeshService", "services"}, {Routes, "WasmeshRoute", "routes"}, {Lanes, "WasmeshLane", "lanes"}}

// Options configure a Source.
type Options struct {
	// Namespace is where the objects are read. Required.
	Namespace string
	// Base is the gateway's config file: its own settings (listen, admin,
	// store, tls, …), with no services or routes, which the cluster gives;
	// BasePath names it in errors.
	Base     []byte
	BasePath string
	// Load takes an assembled config: decoded, provisioned and swapped in,
	// or refused with an error that names what was wrong where (the
	// control plane's Load). Required.
	Load func(ctx context.Context, data []byte) error
	// Resync is the informers' resync period. Default 10 minutes.
	Resync time.Duration
	// Logger receives what the source does. Default slog.Default().
	Logger *slog.Logger
}

// Source loads the gateway's config from a namespace's objects.
type Source struct {
	opts    Options
	client  dynamic.Interface
	log     *slog.Logger
	changed chan struct{}
	synced  atomic.Bool
	listed  map[schema.GroupVersionResource]cache.GenericLister // set by Run before its first sync

	mu sync.Mutex
	// assembled are the objects (by key) of the configs assembled lately,
	// and of the edits written since: what Write compares an edit of one
	// of them with.
	assembled recent
	// lastGood are the specs of the objects last loaded, by key: what a
	// refused object's place is taken by; refused are the generations of
	// the objects refused at the last sync.
	lastGood map[string]map[string]any
	refused  map[string]refusal
	// world is what the objects were at the last sync (worldOf): an
	// object refused then is taken as refused again, unchanged, only
	// while no other object changed (what it lacked may have come).
	world string
	// retry is when a sync with objects refused tries them all again,
	// for what is outside the cluster (a module file that was not there
	// yet): retryWait after the sync (control.NextRetry).
	retry     *time.Timer
	retryWait time.Duration
	retryAll  atomic.Bool

	// discovery follows EndpointSlices for upstream versions (Follow).
	discovery discovery
	// instance names this replica in the Events it records (its
	// fleet's identity); eventFailed says an event failed already.
	instance    string
	eventFailed atomic.Bool
}

// New returns a source reading opts.Namespace through the API server rc
// points at. It refuses a base config that has services or routes.
func New(rc *rest.Config, opts Options) (*Source, error) {
	if opts.Namespace == "" {
		return nil, errors.New("kubernetes: a namespace is required")
	}
	var top map[string]any
	if err := yaml.Unmarshal(opts.Base, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", opts.BasePath, err)
	}
	for _, k := range kinds {
		if _, ok := top[k.key]; ok {
			return nil, fmt.Errorf("%s: %s come from the cluster (%s objects in namespace %s): remove them from the file", opts.BasePath, k.key, k.kind, opts.Namespace)
		}
	}
	client, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	if opts.Resync == 0 {
		opts.Resync = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Source{opts: opts, client: client, log: opts.Logger, changed: make(chan struct{}, 1),
		listed: map[schema.GroupVersionResource]cache.GenericLister{}}, nil
}

// Synced reports whether the informers have listed the namespace once
// (and the first config was offered to Load).
func (s *Source) Synced() bool { return s.synced.Load() }

// Run watches the namespace until ctx ends: after the informers' first
// list, and after every change (a burst of them taken together), the
// config is assembled and loaded, and the objects' status written.
func (s *Source) Run(ctx context.Context) error {
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.client, s.opts.Resync, s.opts.Namespace, nil)
	poke := s.poke
	defer func() {
		s.mu.Lock()
		if s.retry != nil {
			s.retry.Stop()
		}
		s.mu.Unlock()
	}()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(old, cur any) { poke() },
		DeleteFunc: func(any) { poke() },
	}
	for _, k := range kinds {
		gvr := k.gvr
		if gvr == Lanes {
			// Lanes are optional: a cluster without their CRD (installed
			// before lanes came), or a Role without them, serves services
			// and routes, saying so, rather than never being ready.
			_, err := s.client.Resource(gvr).Namespace(s.opts.Namespace).List(ctx, metav1.ListOptions{Limit: 1})
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
				s.log.Warn("kubernetes: WasmeshLanes cannot be read: serving without lanes (install the CRD and grant the Role list and watch on wasmeshlanes, then restart)",
					"namespace", s.opts.Namespace, "error", err)
				continue
			}
		}
		inf := f.ForResource(gvr)
		if _, err := inf.Informer().AddEventHandler(handler); err != nil {
			return err
		}
		s.listed[gvr] = inf.Lister()
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	for gvr, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kubernetes: %s in namespace %s never listed: %w", gvr.Resource, s.opts.Namespace, context.Cause(ctx))
		}
	}
	s.log.Info("kubernetes: objects listed", "namespace", s.opts.Namespace)
	poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		}
		// Changes arriving together (kubectl apply of several objects)
		// make one load.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
		s.sync(ctx)
		s.synced.Store(true)
	}
}

// refusal is an object refused at a sync: its generation, and whether the
// refusal was for what may come later (control.Retryable: a module file
// not there yet), for which the refused objects are tried again on a
// timer; those refused for their spec alone are not.
type refusal struct {
	gen   int64
	retry bool
}

// poke asks Run for a sync.
func (s *Source) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// worldOf identifies objs as a sync sees them: each object's kind, name,
// uid and generation (a spec's change; not its status, which the
// gateways write).
func worldOf(objs Objects) string {
	h := sha256.New()
	for _, o := range objs.all() {
		fmt.Fprintf(h, "%s/%s/%s/%d\n", o.GetKind(), o.GetName(), o.GetUID(), o.GetGeneration())
	}
	return string(h.Sum(nil))
}

// sync loads the namespace's objects as they are now, and writes their
// status. An object that the config is refused for is taken out of it —
// or, when an earlier spec of it was loaded, that spec put back in its
// place — and the rest loaded without it: one bad object holds no other
// change back. It says why in its status.
func (s *Source) sync(ctx context.Context) {
	objs, err := s.objects()
	if err != nil {
		s.log.Error("kubernetes: listing the objects", "error", err)
		return
	}
	refused := map[*unstructured.Unstructured]string{} // by the object as listed: why
	retry := map[*unstructured.Unstructured]bool{}     // those refused for what may come later
	stand := map[*unstructured.Unstructured]*unstructured.Unstructured{}
	// An object refused before is left out (or its last good spec put
	// in) at once, as it would be refused again, while no object changed
	// since (nor was added or removed: what it lacked, another object,
	// may have come) and no retry is due (what it lacked outside the
	// cluster, a module's file, may have come).
	world := worldOf(objs)
	retryAll := s.retryAll.Swap(false)
	s.mu.Lock()
	before := s.refused
	if world != s.world || retryAll {
		// All of them: one refused for another that a retry takes (a
		// route to a service whose module came) is taken with it.
		before = nil
	}
	s.world = world
	s.mu.Unlock()
	for _, o := range objs.all() {
		if r, ok := before[refusedKey(o)]; ok && r.gen == o.GetGeneration() {
			refused[o], retry[o] = "", r.retry
			objs = s.withoutOrLastGood(o, o, objs, stand)
		}
	}
	for attempt := 0; ; attempt++ {
		data, lines := Assemble(s.opts.Base, objs)
		s.assembledFrom(data, objs, stand) // before it serves: an edit of it may come at once
		err := s.opts.Load(ctx, data)
		if err == nil {
			s.loadedAs(objs)
			for _, o := range objs.all() {
				if _, standIn := stand[o]; !standIn {
					s.setAccepted(ctx, o, true, "Accepted", "loaded by the gateway")
				}
			}
			break
		}
		blamed := Blame(err, lines, objs)
		if len(blamed) == 0 || attempt == 8 {
			// Said as the objects' statuses say it: no place in the
			// assembled config, which no one reads, and routes by name.
			s.log.Error("kubernetes: config refused; the last one loaded keeps serving", "namespace", s.opts.Namespace,
				"error", routeNames(objs, errorAt.ReplaceAllString(err.Error(), "")))
			break
		}
		for _, o := range blamed {
			orig := o
			if listed, ok := stand[o]; ok {
				orig = listed // its last good spec was refused too: out with it
			}
			refused[orig] = routeNames(objs, errorAt.ReplaceAllString(blamedFor(o, err, lines, objs), ""))
			retry[orig] = control.Retryable(err)
			objs = s.withoutOrLastGood(o, orig, objs, stand)
		}
	}
	s.mu.Lock()
	s.refused = map[string]refusal{}
	retrying := false
	for o := range refused {
		s.refused[refusedKey(o)] = refusal{o.GetGeneration(), retry[o]}
		retrying = retrying || retry[o]
	}
	switch {
	case !retrying:
		if s.retry != nil {
			s.retry.Stop()
		}
		s.retry, s.retryWait = nil, 0
	case retryAll || s.retry == nil:
		// The retry that ran, or the first: the next, later. A sync
		// between (a status written, another object changed) leaves the
		// one set where it is.
		s.retryWait = control.NextRetry(s.retryWait)
		s.retry = time.AfterFunc(s.retryWait, func() {
			s.retryAll.Store(true)
			s.poke()
		})
	}
	s.mu.Unlock()
	for o, why := range refused {
		if why != "" { // "": refused before, its status says why already
			s.setAccepted(ctx, o, false, "Invalid", why)
		}
	}
}

// routeIndex is a route's index in the assembled config as errors name
// it, which differs from replica to replica as objects are refused.
var routeIndex = regexp.MustCompile(`routes\[(\d+)\]`)

// routeNames names the routes msg names by index (routes[i]) by their
// objects' names (route "NAME"), as every replica says them.
func routeNames(objs Objects, msg string) string {
	return routeIndex.ReplaceAllStringFunc(msg, func(m string) string {
		i, err := strconv.Atoi(routeIndex.FindStringSubmatch(m)[1])
		if err != nil || i >= len(objs.Routes) {
			return m
		}
		return fmt.Sprintf("route %q", objs.Routes[i].GetName())
	})
}

// errorAt is the place a config error names in the assembled config
// ("FILE:LINE:COL: "), which its reader never sees: the status says the
// rest, the same on every replica.
var errorAt = regexp.MustCompile(`(?m)^\S*?:\d+:\d+: `)

// withoutOrLastGood takes o (orig as listed) out of objs, or puts in its
// place a copy with the spec last loaded for it, when there is one and o
// is not that copy already.
func (s *Source) withoutOrLastGood(o, orig *unstructured.Unstructured, objs Objects,
	stand map[*unstructured.Unstructured]*unstructured.Unstructured) Objects {
	replace := func(list []*unstructured.Unstructured) []*unstructured.Unstructured {
		i := slices.Index(list, o)
		if i < 0 {
			return list
		}
		s.mu.Lock()
		spec, ok := s.lastGood[key(orig)]
		s.mu.Unlock()
		if _, isStandIn := stand[o]; ok && !isStandIn {
			cp := orig.DeepCopy()
			cp.Object["spec"] = runtimeCopy(spec)
			stand[cp] = orig
			list = slices.Clone(list)
			list[i] = cp
			return list
		}
		return slices.Delete(slices.Clone(list), i, i+1)
	}
	return objs.each(replace)
}

// loadedAs records a load that succeeded: each loaded object's spec as its
// last good one.
func (s *Source) loadedAs(objs Objects) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastGood = map[string]map[string]any{}
	for _, o := range objs.all() {
		if spec, ok := o.Object["spec"].(map[string]any); ok {
			s.lastGood[key(o)] = spec
		}
	}
}

// assembledFrom records that data was assembled from objs: the objects an
// edit of data (Write) is compared with, those listed (not stand-ins).
func (s *Source) assembledFrom(data []byte, objs Objects, stand map[*unstructured.Unstructured]*unstructured.Unstructured) {
	byKey := map[string]*unstructured.Unstructured{}
	for _, o := range objs.all() {
		if _, standIn := stand[o]; !standIn {
			byKey[key(o)] = o
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assembled.put(data, byKey)
}

// recent maps the last few configs (by their bytes' hash) to the objects
// they were made of.
type recent struct {
	keys []string
	objs map[string]map[string]*unstructured.Unstructured
}

const recentConfigs = 8

func (r *recent) put(data []byte, objs map[string]*unstructured.Unstructured) {
	k := configKey(data)
	if r.objs == nil {
		r.objs = map[string]map[string]*unstructured.Unstructured{}
	}
	if _, ok := r.objs[k]; !ok {
		r.keys = append(r.keys, k)
	}
	r.objs[k] = objs
	for len(r.keys) > recentConfigs {
		delete(r.objs, r.keys[0])
		r.keys = r.keys[1:]
	}
}

func (r *recent) get(data []byte) map[string]*unstructured.Unstructured {
	return r.objs[configKey(data)]
}

func configKey(data []byte) string {
	sum := sha256.Sum256(data)
	return string(sum[:])
}

// key names an object among both kinds.
func key(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

// refusedKey names an object refused: a new object of the same name
// (deleted and made again) is another.
func refusedKey(o *unstructured.Unstructured) string { return key(o) + "/" + string(o.GetUID()) }

func runtimeCopy(spec map[string]any) map[string]any {
	return runtime.DeepCopyJSONValue(spec).(map[string]any)
}

func (s *Source) objects() (Objects, error) {
	var out Objects
	for _, c := range []struct {
		gvr schema.GroupVersionResource
		out *[]*unstructured.Unstructured
	}{{Services, &out.Services}, {Routes, &out.Routes}, {Lanes, &out.Lanes}} {
		lister := s.listed[c.gvr]
		if lister == nil {
			continue // not read (lanes, when the cluster has none)
		}
		objs, err := lister.List(labels.Everything())
		if err != nil {
			return Objects{}, err
		}
		for _, o := range objs {
			if u, ok := o.(*unstructured.Unstructured); ok && u.GetDeletionTimestamp() == nil {
				*c.out = append(*c.out, u)
			}
		}
		slices.SortFunc(*c.out, func(a, b *unstructured.Unstructured) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	return out, nil
}

// Assemble is the config of base with objs' services, routes and lanes:
// each object's spec one line (JSON, which is YAML), so that an error's
// line names its object; lines maps a line of the result to the object on
// it.
func Assemble(base []byte, objs Objects) (data []byte, lines map[int]*unstructured.Unstructured) {
	var b bytes.Buffer
	b.Write(base)
	if len(base) > 0 && base[len(base)-1] != '\n' {
		b.WriteByte('\n')
	}
	line := bytes.Count(b.Bytes(), []byte("\n")) + 1
	lines = map[int]*unstructured.Unstructured{}
	write := func(prefix string, o *unstructured.Unstructured, spec map[string]any) {
		j, err := json.Marshal(spec)
		if err != nil || spec == nil {
			j = []byte("null")
		}
		b.WriteString(prefix)
		b.Write(j)
		b.WriteByte('\n')
		lines[line] = o
		line++
	}
	b.WriteString("services:\n")
	line++
	for _, o := range objs.Services {
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		write("  "+strconv.Quote(o.GetName())+": ", o, spec)
	}
	b.WriteString("routes:\n")
	line++
	for _, o := range objs.Routes {
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		if spec != nil {
			if _, named := spec["name"]; !named {
				spec["name"] = o.GetName()
			}
		}
		write("  - ", o, spec)
	}
	if len(objs.Lanes) > 0 {
		b.WriteString("lanes:\n")
		line++
		for _, o := range objs.Lanes {
			spec, _, _ := unstructured.NestedMap(o.Object, "spec")
			write("  "+strconv.Quote(o.GetName())+": ", o, spec)
		}
	}
	return b.Bytes(), lines
}

// errorLine is the line a config error names: "FILE:LINE:COL: …".
var errorLine = regexp.MustCompile(`(?m):(\d+):\d+: `)

// Blame returns the objects err names: each of its errors (a line each)
// by the line of the assembled config it points at, else by the service
// ("services.NAME"), route ("routes[i]") or lane ("lanes.NAME") it names.
func Blame(err error, lines map[int]*unstructured.Unstructured, objs Objects) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	add := func(o *unstructured.Unstructured) {
		if o != nil && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	for _, msg := range strings.Split(err.Error(), "\n") {
		blameLine(msg, lines, objs, add)
	}
	return out
}

// blameLine calls add with each object one error of a config's (a line
// of its message) names: by the line of the assembled config it points
// at, else by the service ("services.NAME"), route ("routes[i]") or lane
// ("lanes.NAME") it names.
func blameLine(msg string, lines map[int]*unstructured.Unstructured, objs Objects, add func(*unstructured.Unstructured)) {
	if m := errorLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if o := lines[n]; o != nil {
			add(o)
			return
		}
	}
	for _, o := range objs.Services {
		if strings.Contains(msg, "services."+o.GetName()+":") || strings.Contains(msg, "services."+o.GetName()+".") ||
			strings.Contains(msg, "service "+o.GetName()+",") || strings.Contains(msg, "service \""+o.GetName()+"\"") {
			add(o)
		}
	}
	for i, o := range objs.Routes {
		if strings.Contains(msg, fmt.Sprintf("routes[%d]", i)) {
			add(o)
		}
	}
	for _, o := range objs.Lanes {
		if strings.Contains(msg, "lanes."+o.GetName()+":") || strings.Contains(msg, "lanes."+o.GetName()+".") || strings.Contains(msg, "lane \""+o.GetName()+"\"") {
			add(o)
		}
	}
}

// blamedFor is what of err is o's: the lines of its message that name o
// (Blame), each error of another object's left out of o's status.
func blamedFor(o *unstructured.Unstructured, err error, lines map[int]*unstructured.Unstructured, objs Objects) string {
	var mine []string
	for _, msg := range strings.Split(err.Error(), "\n") {
		named := false
		blameLine(msg, lines, objs, func(b *unstructured.Unstructured) { named = named || b == o })
		if named {
			mine = append(mine, msg)
		}
	}
	if len(mine) == 0 {
		return err.Error()
	}
	return strings.Join(mine, "\n")
}

// setAccepted writes o's Accepted condition when it changed (a write of
// the same status would wake every informer for nothing).
func (s *Source) setAccepted(ctx context.Context, o *unstructured.Unstructured, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	const maxMessage = 32 << 10
	if len(message) > maxMessage {
		message = message[:maxMessage]
	}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Accepted" && m["status"] == string(status) && m["reason"] == reason && m["message"] == message &&
			fmt.Sprint(m["observedGeneration"]) == strconv.FormatInt(o.GetGeneration(), 10) {
			return
		}
	}
	cp := o.DeepCopy()
	cond := map[string]any{"type": "Accepted", "status": string(status), "reason": reason, "message": message,
		"observedGeneration": o.GetGeneration(), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
	if err := unstructured.SetNestedSlice(cp.Object, []any{cond}, "status", "conditions"); err != nil {
		return
	}
	gvr := Services
	for _, k := range kinds {
		if k.kind == cp.GetKind() {
			gvr = k.gvr
		}
	}
	if _, err := s.client.Resource(gvr).Namespace(cp.GetNamespace()).UpdateStatus(ctx, cp, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		s.log.Debug("kubernetes: status not written (the next change writes it)", "object", cp.GetName(), "error", err)
		return
	}
	// The replica whose write changed the condition says so, once.
	if ok {
		s.event(ctx, o, Normal, reason, "Load", message)
	} else {
		s.event(ctx, o, Warning, reason, "Load", message)
	}
}
