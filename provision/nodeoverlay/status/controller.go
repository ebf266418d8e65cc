// Package status keeps each NodeOverlay's status, as Karpenter's
// NodeOverlay controller does: ValidationSucceeded (False with reason
// RuntimeValidation when the spec cannot be used, Conflict when an overlay
// of the same weight sets the same thing) and Ready, which sums it up.
// What the overlays do is computed once, by nodepool.Source, for the
// decision and for this status alike.
package status

import (
	"context"
	"errors"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	alphalisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeoverlay"
)

// Name is the controller's name.
const Name = "nodeoverlay.status"

// recheck is how often an overlay is judged again with nothing changed on
// the objects: the catalogue (instance types, prices) changes in the
// background and can make or end a conflict.
const recheck = 5 * time.Minute

// Controller writes NodeOverlay status.
type Controller struct {
	Karpenter    versioned.Interface
	NodeOverlays alphalisters.NodeOverlayLister
	// Overlays is what the overlays do to the current pools
	// (nodepool.Source.Overlays).
	Overlays func() nodeoverlay.Result
	Recorder events.EventRecorder
}

// Reconcile computes one overlay's conditions and writes them if they
// changed.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	return controller.ForObject(c.NodeOverlays, c.reconcile).Reconcile(ctx, key)
}

func (c *Controller) reconcile(ctx context.Context, current *v1alpha1.NodeOverlay) (controller.Result, error) {
	name := current.Name
	res := c.Overlays()
	o := current.DeepCopy()
	validation, ready := conditions(name, res)
	o.SetCondition(validation)
	o.SetCondition(ready)
	if equality.Semantic.DeepEqual(current.Status, o.Status) {
		return controller.Result{RequeueAfter: recheck}, nil
	}
	if _, err := c.Karpenter.KarpenterV1alpha1().NodeOverlays().UpdateStatus(ctx, o, metav1.UpdateOptions{}); err != nil {
		return controller.Result{}, err
	}
	if validation.Status == metav1.ConditionFalse {
		if prev := current.GetCondition(v1alpha1.ConditionTypeValidationSucceeded); prev == nil || prev.Status != validation.Status || prev.Message != validation.Message {
			klog.FromContext(ctx).Info("NodeOverlay not applied", "nodeOverlay", name, "reason", validation.Reason, "message", validation.Message)
			c.Recorder.Eventf(o, nil, v1.EventTypeWarning, validation.Reason, "Validate", "NodeOverlay not applied: %s", validation.Message)
		}
	}
	return controller.Result{RequeueAfter: recheck}, nil
}

// conditions are ValidationSucceeded and Ready for the overlay.
func conditions(name string, res nodeoverlay.Result) (validation, ready metav1.Condition) {
	if p, ok := res.Problems[name]; ok {
		return metav1.Condition{Type: v1alpha1.ConditionTypeValidationSucceeded, Status: metav1.ConditionFalse, Reason: p.Reason, Message: p.Message},
			metav1.Condition{Type: v1alpha1.ConditionTypeReady, Status: metav1.ConditionFalse, Reason: "NotReady",
				Message: v1alpha1.ConditionTypeValidationSucceeded + "=False: " + p.Message}
	}
	validation = metav1.Condition{Type: v1alpha1.ConditionTypeValidationSucceeded, Status: metav1.ConditionTrue, Reason: "ValidationSucceeded"}
	if n, ok := res.Selected[name]; ok && n == 0 {
		// Valid, and harmless, but most likely a typo in a requirement.
		validation.Message = "its requirements select no launch option of any NodePool"
	}
	return validation, metav1.Condition{Type: v1alpha1.ConditionTypeReady, Status: metav1.ConditionTrue, Reason: "Ready"}
}

// Register connects the controller to its informers: every event of a
// NodeOverlay, a NodePool or an EC2NodeClass enqueues every overlay, as
// any of them can make or end a conflict between overlays.
func Register(ctl *controller.Controller, overlays, nodePools, nodeClasses cache.SharedIndexInformer) error {
	all := func(any) []string {
		var keys []string
		for _, o := range overlays.GetStore().List() {
			if ov, ok := o.(*v1alpha1.NodeOverlay); ok {
				keys = append(keys, ov.Name)
			}
		}
		return keys
	}
	return errors.Join(
		ctl.WatchMapped(overlays, all),
		ctl.WatchMapped(nodePools, all),
		ctl.WatchMapped(nodeClasses, all),
	)
}
