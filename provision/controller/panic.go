package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// PanicError is a panic in one reconcile, turned into that key's error so
// that one bad object never takes the scheduler down.
type PanicError struct {
	Key   string
	Value any
	Stack []byte
	// Object is what was being reconciled, when known: the event goes there.
	Object runtime.Object
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic reconciling %s: %v", e.Key, e.Value) }

// SetRecorder gives the controller a recorder for the events of panics.
func (c *Controller) SetRecorder(r events.EventRecorder) { c.recorder = r }

// recovered turns a recovered panic into a PanicError.
func recovered(key string, r any, obj runtime.Object) *PanicError {
	return &PanicError{Key: key, Value: r, Stack: debug.Stack(), Object: obj}
}

// reportPanic counts and logs a panic of this controller, with its stack,
// and puts an event on the object it failed on; the key is retried with
// backoff like any error.
func (c *Controller) reportPanic(ctx context.Context, err error) bool {
	pe, ok := errors.AsType[*PanicError](err)
	if !ok {
		return false
	}
	metrics.ReconcilePanics.WithLabelValues(c.name).Inc()
	klog.FromContext(ctx).Error(nil, "Reconcile panicked; retrying with backoff", "key", pe.Key, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	if c.recorder != nil && pe.Object != nil {
		c.recorder.Eventf(pe.Object, nil, v1.EventTypeWarning, "ReconcilePanic", c.name,
			"%s failed on this object (panic: %v); it is retried with backoff, the other objects are not affected", c.name, pe.Value)
	}
	return true
}

// Panicked counts and logs a panic recovered outside a controller (the
// Provisioner's PostFilter), stack included, under the component's name,
// and returns a sentence saying so.
func Panicked(ctx context.Context, component string, r any) string {
	metrics.ReconcilePanics.WithLabelValues(component).Inc()
	klog.FromContext(ctx).Error(nil, "Recovered from a panic", "component", component, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return fmt.Sprintf("%s panicked: %v", component, r)
}
