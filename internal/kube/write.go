package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	yaml "go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/wasmesh/wasmesh/internal/control"
)

// Write makes the cluster say what data says, data being an edit of the
// config the source last loaded (a deploy, promote, rollback or weight
// change through the admin API): each WasmeshService whose spec the edit
// changed is updated, provided its spec is still the one loaded (its
// status, which the gateways write, may have changed), so that an edit made
// meanwhile elsewhere makes this one fail with an error wrapping
// control.ErrConflict rather than be undone by it. Every
// replica then loads the change from the cluster. An edit of anything else
// (routes, the file's settings, a service added or removed) is refused:
// those are edited where they live.
func (s *Source) Write(ctx context.Context, data []byte) error {
	s.mu.Lock()
	prev, objects := s.loaded, s.loadedServices
	s.mu.Unlock()
	if prev == nil {
		return errors.New("kubernetes: no config loaded from the cluster yet")
	}
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
		case k == "services" || reflect.DeepEqual(old[k], cur[k]):
		case k == "routes":
			return fmt.Errorf("%w: routes come from WasmeshRoute objects in namespace %s: change those", control.ErrExternal, s.opts.Namespace)
		default:
			return fmt.Errorf("%w: %s is in the gateway's file (%s), not in the cluster: change it in every replica's file", control.ErrExternal, k, s.opts.BasePath)
		}
	}
	oldServices, _ := old["services"].(map[string]any)
	curServices, _ := cur["services"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(oldServices)) {
		if _, ok := curServices[name]; !ok {
			return fmt.Errorf("%w: removing service %s: delete its WasmeshService", control.ErrExternal, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(curServices)) {
		spec, ok := oldServices[name]
		switch {
		case !ok || objects[name] == nil:
			return fmt.Errorf("%w: adding service %s: create a WasmeshService", control.ErrExternal, name)
		case reflect.DeepEqual(spec, curServices[name]):
			continue
		}
		// JSON's types (float64, map[string]any), which objects hold.
		b, err := json.Marshal(curServices[name])
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		var next map[string]any
		if err := json.Unmarshal(b, &next); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		if err := s.update(ctx, objects[name], next); err != nil {
			return err
		}
	}
	return nil
}

// update sets loaded's spec to next, by server-side apply (field manager
// "wasmesh", forced: an operator's edit through a gateway takes the fields
// it sets), provided the object's spec is still the one loaded: a change
// of its status or metadata since (the gateways write status) is no
// conflict, a change of its spec is. The apply carries the
// resourceVersion it was checked at, so that a change between the check
// and the apply is a conflict too (checked again).
func (s *Source) update(ctx context.Context, loaded *unstructured.Unstructured, next map[string]any) error {
	client := s.client.Resource(Services).Namespace(loaded.GetNamespace())
	name := loaded.GetName()
	for try := 0; ; try++ {
		cur, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("kubernetes: reading WasmeshService %s: %w", name, err)
		}
		if !reflect.DeepEqual(cur.Object["spec"], loaded.Object["spec"]) {
			return fmt.Errorf("%w: WasmeshService %s changed in the cluster since this gateway loaded it (generation %d, loaded %d); try again",
				control.ErrConflict, name, cur.GetGeneration(), loaded.GetGeneration())
		}
		apply := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": cur.GetAPIVersion(), "kind": cur.GetKind(),
			"metadata": map[string]any{"name": name, "namespace": cur.GetNamespace(), "resourceVersion": cur.GetResourceVersion()},
			"spec":     next,
		}}
		_, err = client.Apply(ctx, name, apply, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err) && try < 4: // changed between the read and the write: read again
			continue
		case apierrors.IsConflict(err):
			return fmt.Errorf("%w: WasmeshService %s keeps changing in the cluster; try again", control.ErrConflict, name)
		default:
			return fmt.Errorf("kubernetes: applying WasmeshService %s: %w", name, err)
		}
	}
}

// FieldManager is the field manager of the gateways' writes.
const FieldManager = "wasmesh"
