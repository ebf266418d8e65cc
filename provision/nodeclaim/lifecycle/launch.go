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
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// nodeClassRetry is how soon a claim whose node class is not ready is retried.
const nodeClassRetry = 10 * time.Second

// busyRetry is how soon a claim another call holds is looked at again.
const busyRetry = 2 * time.Second

// launch asks the cloud provider for the claim's machine and records what
// it got. The labels (and the node class hash annotation) are written
// before the status; if the process dies in
// between, the next attempt finds the same machine by its tags.
func (c *Controller) launch(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	logger := klog.FromContext(ctx).WithValues("nodeClaim", nc.Name)
	created, err := c.Cloud.Create(ctx, nc)
	switch {
	case err == nil:
	case cloudprovider.IsBusy(err):
		// A deletion of the claim is under way (it waits for no launch).
		return controller.Result{RequeueAfter: busyRetry}, nil
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
		c.recordLaunchFailure(ctx, nc, metav1.ConditionFalse, conditionReason(err), err)
		metrics.NodeClaimsDisrupted.WithLabelValues(metrics.ReasonInsufficientCapacity, nc.Labels[karpv1.NodePoolLabelKey]).Inc()
		logger.Info("No capacity for the claim; deleting it so its pods are provisioned again", "reason", err.Error())
		if err := c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return controller.Result{}, err
		}
		return controller.Result{}, nil
	default:
		// Quota, permissions, bad parameters, a call that timed out: the
		// claim stays (its pods keep their nomination) and is retried when
		// its NodePool's backoff lets it, or at the controller's pace.
		c.recordLaunchFailure(ctx, nc, metav1.ConditionFalse, conditionReason(err), err)
		if le := cloudprovider.AsLaunchError(err); le != nil && le.Answered {
			if err := c.nextLaunchAttempt(ctx, nc); err != nil {
				return controller.Result{}, err
			}
		}
		left := c.launchTimeLeft(nc)
		if left <= 0 {
			return c.giveUpLaunch(ctx, nc, err)
		}
		if le := cloudprovider.AsLaunchError(err); le != nil && le.RetryAfter > 0 {
			return controller.Result{RequeueAfter: min(le.RetryAfter, left)}, nil
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

// launchFailureReasons are the error labels of the launches'
// karpenter_cloudprovider_errors_total, exported at zero so that the first
// failure of each shows as an increase.
var launchFailureReasons = []string{
	"NodeClassNotReadyError", "InsufficientCapacityError", ec2.ReasonVcpuLimitExceeded, ec2.ReasonMaxSpotInstanceCountExceeded,
	ec2.ReasonInstanceLimitExceeded, ec2.ReasonUnauthorized, ec2.ReasonInvalidParameter, ec2.ReasonThrottled,
	ec2.ReasonCallTimeout, ec2.ReasonLaunchFailed,
}
