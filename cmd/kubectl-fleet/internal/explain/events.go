// Package explain says why a pod is pending and why a node is or is not
// being consolidated, from the objects and events fleet-scheduler leaves
// in the cluster and the rules its code applies to them.
package explain

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/kubernetes"
)

// event is the latest of a reason on one object.
type event struct {
	Type, Reason, Message string
	Last                  time.Time
	Count                 int32
}

// eventsFor lists the events regarding an object (kind, namespace,
// name), newest first; events of one reason and message count once, with
// their count.
func eventsFor(ctx context.Context, kube kubernetes.Interface, kind, namespace, name string) ([]event, error) {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}
	if namespace != "" {
		sel["involvedObject.namespace"] = namespace
	}
	list, err := kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil, fmt.Errorf("listing the events of %s %s: %w", kind, name, err)
	}
	var out []event
	for i := range list.Items {
		e := &list.Items[i]
		out = append(out, event{Type: e.Type, Reason: e.Reason, Message: e.Message, Last: lastSeen(e), Count: max(1, e.Count)})
		if e.Series != nil {
			out[len(out)-1].Count = max(e.Series.Count, 1)
		}
	}
	slices.SortFunc(out, func(a, b event) int { return b.Last.Compare(a.Last) })
	return out, nil
}

// lastSeen is when an event last happened, whichever API wrote it.
func lastSeen(e *v1.Event) time.Time {
	t := e.CreationTimestamp.Time
	for _, c := range []time.Time{e.LastTimestamp.Time, e.EventTime.Time, e.FirstTimestamp.Time} {
		if c.After(t) {
			t = c
		}
	}
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	return t
}

// latest is the newest event of one of reasons, or nil.
func latest(events []event, reasons ...string) *event {
	for i := range events {
		if slices.Contains(reasons, events[i].Reason) {
			return &events[i]
		}
	}
	return nil
}

// ago is a duration the way kubectl prints ages.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return duration.HumanDuration(now.Sub(t))
}

// printer writes indented lines.
type printer struct {
	w io.Writer
}

func (p printer) line(indent int, format string, args ...any) {
	for range indent {
		fmt.Fprint(p.w, "  ")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
