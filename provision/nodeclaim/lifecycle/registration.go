package lifecycle

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// register links the Node that joined under the claim's name to the claim:
// the Node gets the claim's labels (those the kubelet may not set itself
// too), its provider ID, an owner reference to the claim, and loses the
// unregistered taint. A machine whose Node has not registered within the
// registration TTL is given up: the claim is deleted, which terminates it.
func (c *Controller) register(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	node, err := c.Nodes.Get(nc.Name)
	if apierrors.IsNotFound(err) {
		waited := c.now().Sub(transitioned(nc, karpv1.ConditionTypeLaunched).Time)
		if waited < c.RegistrationTTL {
			return controller.Result{RequeueAfter: c.RegistrationTTL - waited}, nil
		}
		return c.giveUp(ctx, nc, "RegistrationTimeout",
			fmt.Sprintf("the node did not register within %s of launch; check the instance's console output and that its bootstrap token is valid", c.RegistrationTTL))
	}
	if err != nil {
		return controller.Result{}, err
	}
	if node.Spec.ProviderID != "" && nc.Status.ProviderID != "" && node.Spec.ProviderID != nc.Status.ProviderID {
		// A node of that name from another machine: never adopt it.
		c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, "ProviderIDMismatch", "Register",
			"Node %s has provider ID %s, the claim's machine is %s; not registering it", node.Name, node.Spec.ProviderID, nc.Status.ProviderID)
		return controller.Result{RequeueAfter: c.RegistrationTTL}, nil
	}
	if err := c.syncNode(ctx, nc); err != nil {
		return controller.Result{}, err
	}
	nc.Status.NodeName = node.Name
	setCondition(nc, karpv1.ConditionTypeRegistered, metav1.ConditionTrue, "Registered", "")
	if _, err := c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{}); err != nil {
		return controller.Result{}, err
	}
	metrics.NodeClaimsRegistered.WithLabelValues(nc.Labels[karpv1.NodePoolLabelKey]).Inc()
	klog.FromContext(ctx).V(2).Info("Registered", "nodeClaim", nc.Name, "node", node.Name)
	return c.initialize(ctx, nc)
}

// syncNode writes the claim onto its Node, retrying on conflicts with the kubelet's own updates.
func (c *Controller) syncNode(ctx context.Context, nc *karpv1.NodeClaim) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := c.Kube.CoreV1().Nodes().Get(ctx, nc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		for k, v := range nc.Labels {
			node.Labels[k] = v
		}
		node.Labels[karpv1.NodeRegisteredLabelKey] = "true"
		if node.Spec.ProviderID == "" {
			node.Spec.ProviderID = nc.Status.ProviderID
		}
		node.Spec.Taints = withoutTaint(node.Spec.Taints, karpv1.UnregisteredTaintKey)
		for _, t := range append(append([]v1.Taint{}, nc.Spec.Taints...), nc.Spec.StartupTaints...) {
			if !hasTaint(node.Spec.Taints, t) && !isStartupTaintGone(nc, node, t) {
				node.Spec.Taints = append(node.Spec.Taints, t)
			}
		}
		if !ownedBy(node, nc) {
			node.OwnerReferences = append(node.OwnerReferences, metav1.OwnerReference{
				APIVersion: karpv1.SchemeGroupVersion.String(), Kind: "NodeClaim",
				Name: nc.Name, UID: nc.UID, BlockOwnerDeletion: ptr.To(true),
			})
		}
		_, err = c.Kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

// isStartupTaintGone is true for a startup taint the node already shed:
// once registered, nothing puts it back.
func isStartupTaintGone(nc *karpv1.NodeClaim, node *v1.Node, t v1.Taint) bool {
	return node.Labels[karpv1.NodeRegisteredLabelKey] == "true" && hasTaint(nc.Spec.StartupTaints, t)
}

// giveUp deletes a claim that will not become a node; its pods are
// provisioned again and the termination controller ends its machine.
func (c *Controller) giveUp(ctx context.Context, nc *karpv1.NodeClaim, reason, message string) (controller.Result, error) {
	c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, reason, "Liveness", "Deleting the claim: %s", message)
	klog.FromContext(ctx).Info("Deleting NodeClaim", "nodeClaim", nc.Name, "reason", reason, "message", message)
	metrics.NodeClaimsDisrupted.WithLabelValues("liveness", nc.Labels[karpv1.NodePoolLabelKey]).Inc()
	err := c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return controller.Result{}, err
	}
	return controller.Result{}, nil
}

func hasTaint(taints []v1.Taint, t v1.Taint) bool {
	for _, x := range taints {
		if x.MatchTaint(&t) {
			return true
		}
	}
	return false
}

func withoutTaint(taints []v1.Taint, key string) []v1.Taint {
	out := taints[:0:0]
	for _, t := range taints {
		if t.Key != key {
			out = append(out, t)
		}
	}
	return out
}

func ownedBy(node *v1.Node, nc *karpv1.NodeClaim) bool {
	for _, o := range node.OwnerReferences {
		if o.UID == nc.UID {
			return true
		}
	}
	return false
}
