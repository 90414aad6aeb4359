package kube

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/wasmesh/wasmesh/config"
)

// EndpointSlices is the resource upstream versions' endpoints come from.
var EndpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

// serviceLabel is the label an EndpointSlice names its Service with.
const serviceLabel = "kubernetes.io/service-name"

// discovery watches the namespace's EndpointSlices, from the first Follow
// on, and tells each follower its Service's endpoints when they change.
type discovery struct {
	once      sync.Once
	lister    cache.GenericLister
	synced    chan struct{}
	mu        sync.Mutex
	followers map[*follower]struct{}
}

type follower struct {
	svc    config.KubernetesService
	update func(hosts []string, why string)
	// mu is held from listing its endpoints to telling them, so that the
	// informer and Follow never tell it an older list after a newer one.
	mu   sync.Mutex
	last string // the hosts or why last told, to tell only changes
}

// Follow implements dataplane.Discovery: it calls update with the
// endpoints of the Service svc names (in the source's namespace) at once
// and at every change of its EndpointSlices, until ctx ends.
func (s *Source) Follow(ctx context.Context, svc config.KubernetesService, update func(hosts []string, why string)) {
	d := &s.discovery
	d.once.Do(func() { s.watchSlices() })
	select {
	case <-ctx.Done():
		return
	case <-d.synced:
	}
	f := &follower{svc: svc, update: update}
	d.mu.Lock()
	d.followers[f] = struct{}{}
	d.mu.Unlock()
	s.tell(f)
	<-ctx.Done()
	d.mu.Lock()
	delete(d.followers, f)
	d.mu.Unlock()
}

// watchSlices starts the informer of the namespace's EndpointSlices that
// belong to a Service, for the life of the process.
func (s *Source) watchSlices() {
	d := &s.discovery
	d.followers = map[*follower]struct{}{}
	d.synced = make(chan struct{})
	f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.client, s.opts.Resync, s.opts.Namespace,
		func(o *metav1.ListOptions) { o.LabelSelector = serviceLabel })
	inf := f.ForResource(EndpointSlices)
	changed := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		name := u.GetLabels()[serviceLabel]
		d.mu.Lock()
		var tell []*follower
		for f := range d.followers {
			if f.svc.Service == name {
				tell = append(tell, f)
			}
		}
		d.mu.Unlock()
		for _, f := range tell {
			s.tell(f)
		}
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, cur any) { changed(cur) },
		DeleteFunc: changed,
	})
	d.lister = inf.Lister()
	stop := make(chan struct{}) // the source's life: never closed
	f.Start(stop)
	go func() {
		f.WaitForCacheSync(stop)
		s.log.Info("kubernetes: EndpointSlices listed", "namespace", s.opts.Namespace)
		close(d.synced)
	}()
}

// tell gives f its Service's endpoints, if they changed since it was last
// told.
func (s *Source) tell(f *follower) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &s.discovery
	objs, err := d.lister.List(labels.SelectorFromSet(labels.Set{serviceLabel: f.svc.Service}))
	var hosts []string
	why := ""
	if err != nil {
		why = "listing its EndpointSlices: " + err.Error()
	} else {
		hosts, why = endpointsOf(f.svc, objs)
	}
	key := strings.Join(hosts, ",") + "|" + why
	if f.last != key {
		f.last = key
		f.update(hosts, why)
	}
}

// endpointsOf is what the slices say of svc's endpoints: "host:port" each
// of those ready (a condition not set counts as ready), or, when none is,
// of those serving while terminating; with none, why.
func endpointsOf(svc config.KubernetesService, objs []runtime.Object) (hosts []string, why string) {
	if len(objs) == 0 {
		return nil, "no EndpointSlice names it (label " + serviceLabel + "=" + svc.Service + ")"
	}
	var ready, terminating []string
	var ports []string
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		port, names := slicePort(u, svc.Port)
		ports = append(ports, names...)
		if port == 0 {
			continue
		}
		eps, _, _ := unstructured.NestedSlice(u.Object, "endpoints")
		for _, e := range eps {
			m, _ := e.(map[string]any)
			addrs, _, _ := unstructured.NestedStringSlice(m, "addresses")
			if len(addrs) == 0 {
				continue
			}
			host := net.JoinHostPort(addrs[0], strconv.FormatInt(port, 10)) // the first address is the endpoint's
			isReady := condition(m, "ready", true)
			switch {
			case isReady:
				ready = append(ready, host)
			case condition(m, "serving", isReady) && condition(m, "terminating", false):
				terminating = append(terminating, host)
			}
		}
	}
	hosts = ready
	if len(hosts) == 0 {
		hosts = terminating
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	switch {
	case len(hosts) > 0:
		return hosts, ""
	case len(ports) > 0 && !slices.ContainsFunc(objs, func(o runtime.Object) bool {
		u, _ := o.(*unstructured.Unstructured)
		p, _ := slicePort(u, svc.Port)
		return p != 0
	}):
		slices.Sort(ports)
		if svc.Port == "" {
			return nil, fmt.Sprintf("it has several ports (%s): name one (port:)", strings.Join(slices.Compact(ports), ", "))
		}
		return nil, fmt.Sprintf("it has no port %s (its ports: %s)", svc.Port, strings.Join(slices.Compact(ports), ", "))
	default:
		return nil, "none of its endpoints is ready or serving"
	}
}

// slicePort is the number of the slice's port want names (its name, or
// its number; "" for the only one), 0 when it has none such, with the
// names of its ports.
func slicePort(u *unstructured.Unstructured, want string) (int64, []string) {
	if u == nil {
		return 0, nil
	}
	ports, _, _ := unstructured.NestedSlice(u.Object, "ports")
	var names []string
	var found int64
	for _, p := range ports {
		m, _ := p.(map[string]any)
		name, _ := m["name"].(string)
		num, _ := m["port"].(int64)
		names = append(names, cmp.Or(name, strconv.FormatInt(num, 10)))
		switch {
		case want == "" && len(ports) == 1, want != "" && (want == name || want == strconv.FormatInt(num, 10)):
			found = num
		}
	}
	return found, names
}

// condition is an endpoint's condition, def when it is not set.
func condition(endpoint map[string]any, name string, def bool) bool {
	v, ok, _ := unstructured.NestedBool(endpoint, "conditions", name)
	if !ok {
		return def
	}
	return v
}
