package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Events is where the gateways say what they did with an object.
var Events = schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"}

// Event types.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// event records an Event regarding o (kubectl describe shows it): reason
// (CamelCase) and note say what happened, action what the gateway was
// doing. A failure is logged at debug (the first at warn): an event is worth
// less than the work it reports.
func (s *Source) event(ctx context.Context, o *unstructured.Unstructured, typ, reason, action, note string) {
	const maxNote = 1024
	if len(note) > maxNote {
		note = note[:maxNote-3] + "..."
	}
	now := time.Now() // names the event, as client-go's recorder does
	instance := s.instance
	if instance == "" {
		instance = "wasmesh"
	}
	ev := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event",
		"metadata":            map[string]any{"name": eventName(o.GetName(), now), "namespace": o.GetNamespace()},
		"eventTime":           now.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
		"reportingController": "wasmesh.dev/gateway",
		"reportingInstance":   instance[:min(len(instance), 128)],
		"action":              action,
		"reason":              reason,
		"type":                typ,
		"note":                note,
		"regarding": map[string]any{"apiVersion": o.GetAPIVersion(), "kind": o.GetKind(), "name": o.GetName(),
			"namespace": o.GetNamespace(), "uid": string(o.GetUID()), "resourceVersion": o.GetResourceVersion()},
	}}
	if _, err := s.client.Resource(Events).Namespace(o.GetNamespace()).Create(ctx, ev, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		level := slog.LevelDebug
		if s.eventFailed.CompareAndSwap(false, true) {
			level = slog.LevelWarn // the first failure, which later ones repeat (a Role without events)
		}
		s.log.Log(ctx, level, "kubernetes: event not recorded", "object", o.GetName(), "reason", reason, "error", err)
	}
}

// eventName names an event regarding an object named name at now: the
// name, a dot and the time in hex, as client-go's recorder does, the name
// cut so that the whole is a name the API server takes (253 characters:
// an object's name may have as many).
func eventName(name string, now time.Time) string {
	suffix := fmt.Sprintf(".%x", now.UnixNano())
	return strings.TrimRight(name[:min(len(name), 253-len(suffix))], ".-") + suffix
}
