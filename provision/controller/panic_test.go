package controller

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-base/metrics/testutil"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

type pods map[string]*v1.Pod

func (p pods) Get(name string) (*v1.Pod, error) {
	if pod, ok := p[name]; ok {
		return pod, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
}

// TestPanicOnOneObject: a reconcile that panics on one object is
// recovered - counted, logged, an event on that object - and retried with
// backoff; the controller keeps reconciling the others.
func TestPanicOnOneObject(t *testing.T) {
	metrics.Register()
	var mu sync.Mutex
	seen := map[string]int{}
	lister := pods{
		"bad":  {ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: "default"}},
		"good": {ObjectMeta: metav1.ObjectMeta{Name: "good", Namespace: "default"}},
	}
	ctl := New("test.panics", ForObject[*v1.Pod](lister, func(_ context.Context, pod *v1.Pod) (Result, error) {
		mu.Lock()
		seen[pod.Name]++
		mu.Unlock()
		if pod.Name == "bad" {
			var m map[string]int
			m["boom"]++ // a nil map: the kind of bug one odd object finds
		}
		return Result{}, nil
	}))
	rec := events.NewFakeRecorder(10)
	ctl.SetRecorder(rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ctl.Run(ctx, 1)
	ctl.Enqueue("bad")
	ctl.Enqueue("good")

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		bad, good := seen["bad"], seen["good"]
		mu.Unlock()
		if bad >= 3 && good == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reconciles: bad %d (want retries), good %d (want 1)", bad, good)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case ev := <-rec.Events:
		if !strings.Contains(ev, "Warning ReconcilePanic") || !strings.Contains(ev, "assignment to entry in nil map") {
			t.Errorf("event %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the panic")
	}
	if v, err := testutil.GetCounterMetricValue(metrics.ReconcilePanics.WithLabelValues("test.panics")); err != nil || v < 3 {
		t.Errorf("controller_runtime_reconcile_panics_total = %v (%v), want one per panic", v, err)
	}
}
