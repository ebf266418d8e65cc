package env

import (
	"context"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// Events lists the events.k8s.io events, in every namespace, regarding the
// object name of kind (any kind when empty) with reason (any when empty).
func Events(ctx context.Context, t testing.TB, kube kubernetes.Interface, kind, name, reason string) []eventsv1.Event {
	t.Helper()
	list, err := kube.EventsV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if (kind == "" || e.Regarding.Kind == kind) && e.Regarding.Name == name && (reason == "" || e.Reason == reason) {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent waits up to timeout for an event regarding kind/name with
// reason whose note contains text, and returns the note.
func WaitEvent(t testing.TB, kube kubernetes.Interface, kind, name, reason, text string, timeout time.Duration) string {
	t.Helper()
	var note string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, e := range Events(ctx, t, kube, kind, name, reason) {
			if strings.Contains(e.Note, text) {
				note = e.Note
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no event %s about %s %s mentioning %q within %s", reason, kind, name, text, timeout)
	}
	return note
}
