package lifecycle

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// nodeClassRetry is how soon a claim whose node class is not ready is retried.
const nodeClassRetry = 10 * time.Second

// launch asks the cloud provider for the claim's machine and records what
// it got. The labels (and the node class hash annotation) are written
// before the status; if the process dies in
// between, the next attempt finds the same machine by its tags.
func (c *Controller) launch(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	logger := klog.FromContext(ctx).WithValues("nodeClaim", nc.Name)
	created, err := c.Cloud.Create(ctx, nc)
	switch {
	case err == nil:
	case cloudprovider.IsNodeClassNotReady(err):
		c.recordLaunchFailure(ctx, nc, metav1.ConditionUnknown, "NodeClassNotReady", err)
		if left := c.launchTimeLeft(nc); left <= 0 {
			return c.giveUpLaunch(ctx, nc, err)
		} else if left < nodeClassRetry {
			return controller.Result{RequeueAfter: left}, nil
		}
		return controller.Result{RequeueAfter: nodeClassRetry}, nil
	case cloudprovider.IsInsufficientCapacity(err):
		// No capacity for any of the claim's offerings: give the claim up so
		// its pods are provisioned again from what is left.
		c.recordLaunchFailure(ctx, nc, metav1.ConditionFalse, "InsufficientCapacity", err)
		metrics.NodeClaimsDisrupted.WithLabelValues("insufficient_capacity", nc.Labels[karpv1.NodePoolLabelKey]).Inc()
		logger.Info("No capacity for the claim; deleting it so its pods are provisioned again", "reason", err.Error())
		if err := c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return controller.Result{}, err
		}
		return controller.Result{}, nil
	default:
		c.recordLaunchFailure(ctx, nc, metav1.ConditionFalse, "LaunchFailed", err)
		if c.launchTimeLeft(nc) <= 0 {
			return c.giveUpLaunch(ctx, nc, err)
		}
		return controller.Result{}, err
	}

	nc.Labels, nc.Annotations = created.Labels, created.Annotations
	updated, err := c.Karpenter.KarpenterV1().NodeClaims().Update(ctx, nc, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		// The claim was deleted and released while its machine launched:
		// nothing else will ever terminate that machine.
		logger.Info("NodeClaim deleted during its launch; terminating the machine", "providerID", created.Status.ProviderID)
		return controller.Result{}, c.Cloud.Delete(ctx, created)
	}
	if err != nil {
		return controller.Result{}, err
	}
	updated.Status.ProviderID = created.Status.ProviderID
	updated.Status.ImageID = created.Status.ImageID
	updated.Status.Capacity = created.Status.Capacity
	updated.Status.Allocatable = created.Status.Allocatable
	setCondition(updated, karpv1.ConditionTypeLaunched, metav1.ConditionTrue, "Launched", "")
	if _, err := c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return controller.Result{}, err
	}
	metrics.NodeClaimsLaunched.WithLabelValues(updated.Labels[karpv1.NodePoolLabelKey]).Inc()
	c.Recorder.Eventf(updated, nil, v1.EventTypeNormal, "Launched", "Launch",
		"Launched %s %s in %s (%s)", updated.Labels[v1.LabelInstanceTypeStable], updated.Labels[karpv1.CapacityTypeLabelKey],
		updated.Labels[v1.LabelTopologyZone], updated.Status.ProviderID)
	logger.V(2).Info("Launched", "providerID", updated.Status.ProviderID, "instanceType", updated.Labels[v1.LabelInstanceTypeStable])
	return controller.Result{RequeueAfter: c.registrationTTL()}, nil
}

// launchTimeLeft is how much of the registration TTL, counted from the
// claim's creation as Karpenter counts it, is left for a launch that keeps
// failing.
func (c *Controller) launchTimeLeft(nc *karpv1.NodeClaim) time.Duration {
	return c.registrationTTL() - c.now().Sub(nc.CreationTimestamp.Time)
}

// giveUpLaunch deletes a claim that could not be launched within the TTL,
// so that its pods, nominated to a node that will not come, are
// provisioned again from what is launchable now.
func (c *Controller) giveUpLaunch(ctx context.Context, nc *karpv1.NodeClaim, err error) (controller.Result, error) {
	return c.giveUp(ctx, nc, "LaunchTimeout",
		fmt.Sprintf("the machine could not be launched within %s of the claim's creation: %v", c.registrationTTL(), err))
}

// recordLaunchFailure puts the failure on the claim as the Launched
// condition and as an event, where `kubectl describe nodeclaim` shows it.
func (c *Controller) recordLaunchFailure(ctx context.Context, nc *karpv1.NodeClaim, status metav1.ConditionStatus, reason string, err error) {
	setCondition(nc, karpv1.ConditionTypeLaunched, status, reason, err.Error())
	if _, uerr := c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{}); uerr != nil {
		klog.FromContext(ctx).V(2).Info("Recording launch failure on the claim failed", "nodeClaim", nc.Name, "err", uerr)
	}
	c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, reason, "Launch", "Failed to launch: %v", err)
}
