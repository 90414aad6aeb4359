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

	"github.com/wasmesh/wasmesh/internal/control"
)

// Write makes the cluster say what data says, data being an edit of the
// config the source last loaded (a deploy, promote, rollback or weight
// change through the admin API): each WasmeshService whose spec the edit
// changed is updated, with the resourceVersion it had when it was loaded,
// so that an edit made meanwhile elsewhere makes this one fail with an
// error wrapping control.ErrConflict rather than be undone by it. Every
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
		o := objects[name].DeepCopy()
		o.Object["spec"] = next
		_, err = s.client.Resource(Services).Namespace(o.GetNamespace()).Update(ctx, o, metav1.UpdateOptions{FieldManager: "wasmesh"})
		switch {
		case apierrors.IsConflict(err):
			return fmt.Errorf("%w: WasmeshService %s changed in the cluster since this gateway loaded it (resourceVersion %s); try again",
				control.ErrConflict, name, o.GetResourceVersion())
		case err != nil:
			return fmt.Errorf("kubernetes: updating WasmeshService %s: %w", name, err)
		}
	}
	return nil
}
