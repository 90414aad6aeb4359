package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/wasmesh/wasmesh/internal/control"
)

// Write makes the cluster say what data says, data being an edit of prev,
// a config the source assembled or an edit written before (a deploy, promote, rollback, weight
// change or lane's version through the admin API, a release's step): each
// WasmeshService and WasmeshLane whose spec the edit changed is updated,
// provided its spec is still the one prev was made of (its status, which the
// gateways write, may have changed), so that an edit made meanwhile
// elsewhere makes this one fail with an error wrapping control.ErrConflict
// rather than be undone by it. Every replica then loads the change from
// the cluster. An edit of anything else (routes, the file's settings, a
// service or lane added or removed) is refused: those are edited where
// they live.
func (s *Source) Write(ctx context.Context, prev, data []byte) error {
	s.mu.Lock()
	objects := s.assembled.get(prev)
	s.mu.Unlock()
	if objects == nil {
		return fmt.Errorf("%w: the gateway's config changed while the edit was made; try again", control.ErrConflict)
	}
	written := maps.Clone(objects)
	defer func() {
		s.mu.Lock()
		s.assembled.put(data, written) // an edit of this edit finds what it was written over
		s.mu.Unlock()
	}()
	var old, cur map[string]any
	if err := yaml.Unmarshal(prev, &old); err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, &cur); err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(old))
	for _, k := range slices.Sorted(maps.Keys(cur)) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		switch {
		case k == "services" || k == "lanes" || reflect.DeepEqual(old[k], cur[k]):
		case k == "routes":
			return fmt.Errorf("%w: routes come from WasmeshRoute objects in namespace %s: change those", control.ErrExternal, s.opts.Namespace)
		default:
			return fmt.Errorf("%w: %s is in the gateway's file (%s), not in the cluster: change it in every replica's file", control.ErrExternal, k, s.opts.BasePath)
		}
	}
	for _, k := range kinds {
		if k.key == "routes" {
			continue
		}
		was, _ := old[k.key].(map[string]any)
		now, _ := cur[k.key].(map[string]any)
		what := strings.TrimSuffix(k.key, "s")
		for _, name := range slices.Sorted(maps.Keys(was)) {
			if _, ok := now[name]; !ok {
				return fmt.Errorf("%w: removing %s %s: delete its %s", control.ErrExternal, what, name, k.kind)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(now)) {
			spec, ok := was[name]
			obj := objects[k.kind+"/"+name]
			switch {
			case !ok:
				return fmt.Errorf("%w: adding %s %s: create a %s", control.ErrExternal, what, name, k.kind)
			case reflect.DeepEqual(spec, now[name]):
				continue
			case obj == nil:
				// Refused in the cluster: its last good spec serves in
				// its place, which an edit here would overwrite the
				// cluster's with.
				return fmt.Errorf("%w: %s %s: the cluster's %s is refused (its status says why) and its last good spec serves; fix it there first",
					control.ErrConflict, what, name, k.kind)
			}
			// JSON's types (float64, map[string]any), which objects hold.
			b, err := json.Marshal(now[name])
			if err != nil {
				return fmt.Errorf("%s %s: %w", what, name, err)
			}
			var next map[string]any
			if err := json.Unmarshal(b, &next); err != nil {
				return fmt.Errorf("%s %s: %w", what, name, err)
			}
			for f, v := range next {
				if m, isMap := v.(map[string]any); v == nil || isMap && len(m) == 0 {
					delete(next, f) // a lane's versions emptied: no field (an apply's empty map is a null to the schema)
				}
			}
			updated, err := s.update(ctx, k.gvr, obj, next)
			if err != nil {
				return err
			}
			written[k.kind+"/"+name] = updated
		}
	}
	return nil
}

// update sets loaded's spec to next, exactly (an update of the object
// with its spec replaced, field manager "wasmesh": a field the edit
// leaves out is removed, whoever set it, where a server-side apply would
// keep those another manager owns), provided the object's spec is still
// the one loaded: a change of its status or metadata since (the gateways
// write status) is no conflict, a change of its spec is. The update
// carries the resourceVersion it was checked at, so that a change between
// the check and the update is a conflict too (checked again).
func (s *Source) update(ctx context.Context, gvr schema.GroupVersionResource, loaded *unstructured.Unstructured, next map[string]any) (*unstructured.Unstructured, error) {
	client := s.client.Resource(gvr).Namespace(loaded.GetNamespace())
	kind := loaded.GetKind()
	name := loaded.GetName()
	for try := 0; ; try++ {
		cur, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("kubernetes: reading %s %s: %w", kind, name, unavailable(err))
		}
		if !reflect.DeepEqual(cur.Object["spec"], loaded.Object["spec"]) {
			return nil, fmt.Errorf("%w: %s %s changed in the cluster since this gateway loaded it (generation %d, loaded %d); try again",
				control.ErrConflict, kind, name, cur.GetGeneration(), loaded.GetGeneration())
		}
		if err := fence(ctx); err != nil {
			return nil, err
		}
		cur.Object["spec"] = next
		updated, err := client.Update(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			return updated, nil
		case apierrors.IsConflict(err) && try < 4: // changed between the read and the write: read again
			continue
		case apierrors.IsConflict(err):
			return nil, fmt.Errorf("%w: %s %s keeps changing in the cluster; try again", control.ErrConflict, kind, name)
		default:
			return nil, fmt.Errorf("kubernetes: updating %s %s: %w", kind, name, unavailable(err))
		}
	}
}

// unavailable is err, wrapping control.ErrUnavailable too when it says the
// API server could not be reached or could not answer now (no API status:
// a network error; a timeout, 429 or 5xx): an edit to try again, not a
// wrong one.
func unavailable(err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) {
		return unavailableError{err}
	}
	return err
}

// unavailableError is an API server's failure to answer, which is
// control.ErrUnavailable too; it says what err says.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{e.err, control.ErrUnavailable} }

// FieldManager is the field manager of the gateways' writes.
const FieldManager = "wasmesh"
