// Package podevents records on each NodeClaim when a pod was last bound to
// or removed from its node (status.lastPodEventTime), as Karpenter v1
// does: consolidateAfter counts from it.
package podevents

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
)

// Name is the name of the controller that keeps status.lastPodEventTime
// on NodeClaims.
const Name = "nodeclaim.podevents"

// Controller records on each NodeClaim when a pod was last bound to or
// removed from its node. DaemonSet and mirror pods do not count.
// A Node is found by its claim's name (the node registers under it).
//
// It also remembers the latest event per claim in memory, so the
// disruption loop never acts on a lastPodEventTime that is about to move.
type Controller struct {
	Karpenter  versioned.Interface
	NodeClaims karplisters.NodeClaimLister
	// Clock stamps pod removals; the real clock when nil.
	Clock clock.PassiveClock

	mu     sync.Mutex
	latest map[string]time.Time // claim -> latest pod event seen
}

// Register feeds pod events to the controller, one key per claim. The
// handlers note each event's time on the controller's reconciler (which
// must be a *Controller) as it arrives: a removal is stamped when it is
// seen, not when the queue gets to it.
func Register(ctl *controller.Controller, pods cache.SharedIndexInformer) error {
	p, ok := ctl.Reconciler().(*Controller)
	if !ok {
		return fmt.Errorf("controller %s runs %T, not a pod-events reconciler", ctl.Name(), ctl.Reconciler())
	}
	_, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*v1.Pod); ok && counts(pod) {
				if t := scheduledTime(pod); !t.IsZero() {
					p.observe(ctl, pod.Spec.NodeName, t)
				}
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*v1.Pod)
			pod, ok2 := newObj.(*v1.Pod)
			if !ok1 || !ok2 || !counts(pod) {
				return
			}
			switch {
			case old.Spec.NodeName == "" || !scheduledTime(old).Equal(scheduledTime(pod)):
				p.observe(ctl, pod.Spec.NodeName, scheduledTime(pod))
			case !drain.IsTerminal(old) && drain.IsTerminal(pod), !drain.IsTerminating(old) && drain.IsTerminating(pod):
				p.observe(ctl, pod.Spec.NodeName, p.now())
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok && counts(pod) {
				p.observe(ctl, pod.Spec.NodeName, p.now())
			}
		},
	})
	return err
}

// counts is true for a bound pod whose comings and goings make a node busy.
func counts(pod *v1.Pod) bool {
	return pod.Spec.NodeName != "" && !drain.IsDaemonSetPod(pod) && !drain.IsMirror(pod)
}

// scheduledTime is when the pod was bound: its PodScheduled condition's
// transition, or its creation for a pod created bound.
func scheduledTime(pod *v1.Pod) time.Time {
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodScheduled && c.Status == v1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if pod.Spec.NodeName != "" {
		return pod.CreationTimestamp.Time
	}
	return time.Time{}
}

func (p *Controller) observe(ctl *controller.Controller, claim string, t time.Time) {
	if t.IsZero() {
		return
	}
	p.mu.Lock()
	if p.latest == nil {
		p.latest = map[string]time.Time{}
	}
	if t.After(p.latest[claim]) {
		p.latest[claim] = t
	}
	p.mu.Unlock()
	ctl.Enqueue(claim)
}

// Latest is the latest pod event seen for the claim in this process, or zero.
func (p *Controller) Latest(claim string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest[claim]
}

// Reconcile writes the latest pod event onto the claim when it is newer
// than what the claim says (to the second, the field's precision).
func (p *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	nc, err := p.NodeClaims.Get(key)
	if apierrors.IsNotFound(err) {
		p.mu.Lock()
		delete(p.latest, key)
		p.mu.Unlock()
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	t := p.Latest(key).Truncate(time.Second)
	if nc.DeletionTimestamp != nil || t.IsZero() || !t.After(nc.Status.LastPodEventTime.Time) {
		return controller.Result{}, nil
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"lastPodEventTime": metav1.NewTime(t)}})
	if err != nil {
		return controller.Result{}, err
	}
	_, err = p.Karpenter.KarpenterV1().NodeClaims().Patch(ctx, nc.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err == nil {
		klog.FromContext(ctx).V(5).Info("Recorded pod event", "nodeClaim", nc.Name, "lastPodEventTime", t)
	}
	return controller.Result{}, err
}

func (p *Controller) now() time.Time { return controller.Now(p.Clock) }

// LastPodEvent is the later of the claim's lastPodEventTime and what this
// process has seen but maybe not written yet.
func (p *Controller) LastPodEvent(nc *karpv1.NodeClaim) time.Time {
	t := nc.Status.LastPodEventTime.Time
	if l := p.Latest(nc.Name); l.After(t) {
		t = l
	}
	return t
}
