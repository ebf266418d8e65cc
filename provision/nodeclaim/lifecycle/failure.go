package lifecycle

import (
	"context"
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
)

// NominatedIndex indexes pods by status.nominatedNodeName: the pods waiting
// for a claim's node.
const NominatedIndex = "lifecycle.nominatedNodeName"

// IndexPods adds NominatedIndex to the pod informer (before it starts).
func IndexPods(pods cache.SharedIndexInformer) error {
	return pods.AddIndexers(cache.Indexers{NominatedIndex: func(obj any) ([]string, error) {
		if pod, ok := obj.(*v1.Pod); ok && pod.Status.NominatedNodeName != "" && pod.Spec.NodeName == "" {
			return []string{pod.Status.NominatedNodeName}, nil
		}
		return nil, nil
	}})
}

// maxPodEvents bounds the pods told about one failure: the claim's own
// event and condition say it for all of them.
const maxPodEvents = 50

// conditionReason is the Launched condition's reason for a failed launch:
// the failure's own name (VcpuLimitExceeded, Unauthorized, CallTimeout...).
func conditionReason(err error) string {
	if ice, ok := err.(*cloudprovider.InsufficientCapacityError); ok && ice.Reason != "" {
		return ice.Reason
	}
	if le := cloudprovider.AsLaunchError(err); le != nil && le.Reason != "" {
		return le.Reason
	}
	if cloudprovider.IsInsufficientCapacity(err) {
		return "InsufficientCapacity"
	}
	return "LaunchFailed"
}

// recordLaunchFailure puts the failure on the claim as the Launched
// condition, where `kubectl describe nodeclaim` shows it, and, when the
// condition changed (not on every retry), as an event on the claim and on
// each pod waiting for it, where `kubectl describe pod` shows it.
func (c *Controller) recordLaunchFailure(ctx context.Context, nc *karpv1.NodeClaim, status metav1.ConditionStatus, reason string, err error) {
	msg := err.Error()
	prev := nc.GetCondition(karpv1.ConditionTypeLaunched)
	changed := prev == nil || prev.Status != status || prev.Reason != reason || prev.Message != msg
	setCondition(nc, karpv1.ConditionTypeLaunched, status, reason, msg)
	if !changed {
		return
	}
	if _, uerr := c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{}); uerr != nil {
		klog.FromContext(ctx).V(2).Info("Recording launch failure on the claim failed", "nodeClaim", nc.Name, "err", uerr)
	}
	c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, reason, "Launch", "Failed to launch: %s", msg)
	for i, pod := range c.podsWaitingFor(nc.Name) {
		if i == maxPodEvents {
			break
		}
		c.Recorder.Eventf(pod, nc, v1.EventTypeWarning, reason, "Launch",
			"NodeClaim %s (NodePool %s), the node this pod waits for, could not be launched: %s", nc.Name, nc.Labels[karpv1.NodePoolLabelKey], msg)
	}
}

// podsWaitingFor are the pods nominated to the claim's node.
func (c *Controller) podsWaitingFor(claim string) []*v1.Pod {
	if c.Pods == nil {
		return nil
	}
	objs, err := c.Pods.ByIndex(NominatedIndex, claim)
	if err != nil {
		return nil
	}
	out := make([]*v1.Pod, 0, len(objs))
	for _, o := range objs {
		if pod, ok := o.(*v1.Pod); ok {
			out = append(out, pod)
		}
	}
	return out
}

// nextLaunchAttempt moves the claim on to its next launch attempt once EC2
// answered one without an instance: the next CreateFleet carries a new
// ClientToken, so EC2 does not answer it with the failure again.
func (c *Controller) nextLaunchAttempt(ctx context.Context, nc *karpv1.NodeClaim) error {
	next := strconv.Itoa(cloudprovider.LaunchAttempt(nc) + 1)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, cloudprovider.AnnotationLaunchAttempt, next)
	updated, err := c.Karpenter.KarpenterV1().NodeClaims().Patch(ctx, nc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return err
	}
	nc.Annotations, nc.ResourceVersion = updated.Annotations, updated.ResourceVersion
	return nil
}
