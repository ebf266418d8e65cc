package lifecycle

import (
	"context"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// register links the Node that joined under the claim's name to the claim:
// the Node gets the claim's labels (those the kubelet may not set itself
// too), its provider ID, an owner reference to the claim and the
// termination finalizer, and loses the unregistered taint. A machine whose
// Node has not registered within the registration TTL is given up: the
// claim is deleted, which terminates it.
func (c *Controller) register(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	node, err := c.Nodes.Get(nc.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return controller.Result{}, err
	}
	if err == nil && node.Spec.ProviderID != "" && nc.Status.ProviderID != "" && node.Spec.ProviderID != nc.Status.ProviderID {
		// A node of that name from another machine: never adopt it. The
		// claim's own machine has not registered, so liveness still applies.
		if err := c.recordMismatch(ctx, nc, node); err != nil {
			return controller.Result{}, err
		}
		node = nil
	}
	if node == nil {
		ttl := c.registrationTTL()
		waited := c.now().Sub(transitioned(nc, karpv1.ConditionTypeLaunched).Time)
		if waited < ttl {
			return controller.Result{RequeueAfter: ttl - waited}, nil
		}
		if c.Health != nil {
			c.Health.Unregistered(nc.Labels[karpv1.NodePoolLabelKey], nc.Name)
		}
		return c.giveUp(ctx, nc, "RegistrationTimeout",
			fmt.Sprintf("the node did not register within %s of launch; check the instance's console output and that its bootstrap token is valid", ttl))
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
	if c.Health != nil {
		c.Health.Registered(nc.Labels[karpv1.NodePoolLabelKey])
	}
	klog.FromContext(ctx).V(2).Info("Registered", "nodeClaim", nc.Name, "node", node.Name)
	if hook, ok := c.Cloud.(cloudprovider.RegisteredHook); ok {
		if err := hook.Registered(ctx, nc); err != nil {
			klog.FromContext(ctx).Error(err, "Tidying up after registration failed", "nodeClaim", nc.Name)
		}
	}
	return c.initialize(ctx, nc)
}

// recordMismatch says once, as the Registered condition and an event, that
// the Node of the claim's name belongs to another machine. (The Node's
// heartbeats requeue the claim; they must not repeat the event each time.)
func (c *Controller) recordMismatch(ctx context.Context, nc *karpv1.NodeClaim, node *v1.Node) error {
	const reason = "ProviderIDMismatch"
	msg := fmt.Sprintf("Node %s has provider ID %s, the claim's machine is %s; not registering it", node.Name, node.Spec.ProviderID, nc.Status.ProviderID)
	if cur := nc.GetCondition(karpv1.ConditionTypeRegistered); cur != nil && cur.Reason == reason && cur.Message == msg {
		return nil
	}
	setCondition(nc, karpv1.ConditionTypeRegistered, metav1.ConditionFalse, reason, msg)
	if _, err := c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.Recorder.Eventf(nc, node, v1.EventTypeWarning, reason, "Register", "%s", msg)
	return nil
}

// syncNode writes the claim onto its Node, retrying on conflicts with the kubelet's own updates.
//
// The claim's taints and startup taints are added unless the Node opts out
// with karpenter.sh/do-not-sync-taints=true (as in Karpenter). Startup taints
// are added only by the first sync: once the Node carries the registered
// label, a startup taint it lacks was removed by whatever owns it and is not
// put back.
func (c *Controller) syncNode(ctx context.Context, nc *karpv1.NodeClaim) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := c.Kube.CoreV1().Nodes().Get(ctx, nc.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if node.Labels == nil {
			node.Labels = map[string]string{}
		}
		if node.Spec.ProviderID != "" && nc.Status.ProviderID != "" && node.Spec.ProviderID != nc.Status.ProviderID {
			return fmt.Errorf("node %s now has provider ID %s, the claim's machine is %s", node.Name, node.Spec.ProviderID, nc.Status.ProviderID)
		}
		registeredBefore := node.Labels[karpv1.NodeRegisteredLabelKey] == "true"
		for k, v := range nc.Labels {
			node.Labels[k] = v
		}
		node.Labels[karpv1.NodeRegisteredLabelKey] = "true"
		if node.Spec.ProviderID == "" {
			node.Spec.ProviderID = nc.Status.ProviderID
		}
		node.Spec.Taints = withoutTaint(node.Spec.Taints, karpv1.UnregisteredTaintKey)
		if node.Labels[karpv1.NodeDoNotSyncTaintsLabelKey] != "true" {
			want := append([]v1.Taint{}, nc.Spec.Taints...)
			if !registeredBefore {
				want = append(want, nc.Spec.StartupTaints...)
			}
			for _, t := range want {
				if !hasTaint(node.Spec.Taints, t) {
					node.Spec.Taints = append(node.Spec.Taints, t)
				}
			}
		}
		// The termination finalizer sends a deletion of the Node through
		// the claim's termination (drain, instance), as in Karpenter. The
		// API refuses new finalizers on an object being deleted.
		if node.DeletionTimestamp == nil && !slices.Contains(node.Finalizers, karpv1.TerminationFinalizer) {
			node.Finalizers = append(node.Finalizers, karpv1.TerminationFinalizer)
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

// giveUp deletes a claim that will not become a node; its pods are
// provisioned again and the termination controller ends its machine.
func (c *Controller) giveUp(ctx context.Context, nc *karpv1.NodeClaim, reason, message string) (controller.Result, error) {
	c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, reason, "Liveness", "Deleting the claim: %s", message)
	klog.FromContext(ctx).Info("Deleting NodeClaim", "nodeClaim", nc.Name, "reason", reason, "message", message)
	metrics.NodeClaimsDisrupted.WithLabelValues(metrics.ReasonLiveness, nc.Labels[karpv1.NodePoolLabelKey]).Inc()
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
