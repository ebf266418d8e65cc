// Package termination finishes a deleted NodeClaim: its Node goes, its
// machine is terminated, and only then is the finalizer removed, so no
// instance outlives the claim that launched it.
package termination

import (
	"context"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	nodetermination "github.com/fleet-scheduler/fleet-scheduler/provision/node/termination"
)

// Name is the controller's name.
const Name = "nodeclaim.termination"

// Controller reconciles NodeClaims being deleted.
type Controller struct {
	Karpenter  versioned.Interface
	Kube       kubernetes.Interface
	NodeClaims karplisters.NodeClaimLister
	Cloud      cloudprovider.CloudProvider
	Recorder   events.EventRecorder
	// Drainer empties the Node before it is deleted; nil deletes it at once.
	Drainer *drain.Drainer
}

// Reconcile reconciles the NodeClaim the key names.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	return controller.ForObject(c.NodeClaims, c.reconcile).Reconcile(ctx, key)
}

// Register connects the controller to its informer: NodeClaim events.
func Register(ctl *controller.Controller, nodeClaims cache.SharedIndexInformer) error {
	return ctl.Watch(nodeClaims)
}

// reconcile deletes the claim's Node and machine, then releases the claim.
func (c *Controller) reconcile(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	if nc.DeletionTimestamp == nil || !hasFinalizer(nc) {
		return controller.Result{}, nil
	}
	logger := klog.FromContext(ctx).WithValues("nodeClaim", nc.Name)
	if done, after, err := c.drain(ctx, nc); err != nil || !done {
		return controller.Result{RequeueAfter: after}, err
	}
	if err := c.deleteNode(ctx, nc); err != nil {
		return controller.Result{}, err
	}
	forgetAllocatable(nc)
	if err := c.Cloud.Delete(ctx, nc); err != nil {
		c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, "TerminationFailed", "Terminate", "Terminating the machine failed: %v", err)
		return controller.Result{}, err
	}
	if err := c.removeFinalizer(ctx, nc); err != nil {
		return controller.Result{}, err
	}
	metrics.NodeClaimsTerminated.WithLabelValues(nc.Labels[karpv1.NodePoolLabelKey]).Inc()
	logger.V(2).Info("Terminated", "providerID", nc.Status.ProviderID)
	return controller.Result{}, nil
}

// drain empties the claim's own Node through the Eviction API before it
// goes. A Node of its name that is another machine's is left alone, and a
// claim whose instance is gone is not drained: its pods could never stop.
func (c *Controller) drain(ctx context.Context, nc *karpv1.NodeClaim) (bool, time.Duration, error) {
	if c.Drainer == nil {
		return true, 0, nil
	}
	name := nc.Status.NodeName
	if name == "" {
		name = nc.Name
	}
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if mine, err := c.isClaimsNode(ctx, nc, node); err != nil || !mine {
		return err == nil, 0, err
	}
	if nc.Status.ProviderID != "" && !nodeutil.IsNodeReady(node) { // ask EC2 only when the kubelet looks dead
		if _, err := c.Cloud.Get(ctx, nc.Status.ProviderID); cloudprovider.IsNotFound(err) {
			return true, 0, nil
		}
	}
	st, err := c.Drainer.Drain(ctx, node.Name, nc)
	if err != nil {
		return false, 0, err
	}
	return st.Done, st.RequeueAfter, nil
}

// deleteNode deletes the claim's Node: the one it registered, else the
// Node of its name if that is its machine's. The Node's termination
// finalizer is taken off first; a Node already being deleted (by hand,
// which is what deleted the claim) only loses the finalizer. A Node of the
// claim's name that belongs to another machine is left alone.
func (c *Controller) deleteNode(ctx context.Context, nc *karpv1.NodeClaim) error {
	nodeName := nc.Status.NodeName
	if nodeName == "" {
		nodeName = nc.Name
	}
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	mine, err := c.isClaimsNode(ctx, nc, node)
	if err != nil {
		return err
	}
	if !mine {
		klog.FromContext(ctx).V(2).Info("Leaving a Node of the claim's name that belongs to another machine",
			"nodeClaim", nc.Name, "node", node.Name, "providerID", node.Spec.ProviderID)
		return nil
	}
	// Our finalizer on the Node sends a deletion of the Node here (see
	// provision/node/termination); now that the Node is drained it goes.
	if err := nodetermination.RemoveFinalizer(ctx, c.Kube, node); err != nil {
		return err
	}
	if node.DeletionTimestamp != nil {
		return nil
	}
	// The UID precondition keeps a Node re-registered since the Get.
	err = c.Kube.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(node.UID))})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// isClaimsNode reports whether the Node is the claim's: linked to it at
// registration, or not (yet) claimed by any machine, or showing the
// provider ID of the claim's machine - from the claim's status or, when a
// launch never wrote it, from the instances tagged with the claim.
func (c *Controller) isClaimsNode(ctx context.Context, nc *karpv1.NodeClaim, node *v1.Node) (bool, error) {
	for _, o := range node.OwnerReferences {
		if o.UID == nc.UID {
			return true, nil
		}
	}
	if nc.Status.NodeName == node.Name || node.Spec.ProviderID == "" || node.Spec.ProviderID == nc.Status.ProviderID {
		return true, nil
	}
	if nc.Status.ProviderID != "" {
		return false, nil
	}
	machines, err := c.Cloud.List(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range machines {
		if m.NodeClaim == nc.Name && m.ProviderID == node.Spec.ProviderID {
			return true, nil
		}
	}
	return false, nil
}

func hasFinalizer(nc *karpv1.NodeClaim) bool {
	return slices.Contains(nc.Finalizers, karpv1.TerminationFinalizer)
}

// removeFinalizer releases the claim.
func (c *Controller) removeFinalizer(ctx context.Context, nc *karpv1.NodeClaim) error {
	return controller.RemoveFinalizer(ctx, c.Karpenter.KarpenterV1().NodeClaims().Patch, nc, karpv1.TerminationFinalizer)
}

// forgetAllocatable drops the node's karpenter_nodes_allocatable series, so
// a gone node does not stay on dashboards.
func forgetAllocatable(nc *karpv1.NodeClaim) {
	node := nc.Status.NodeName
	if node == "" {
		return
	}
	names := map[v1.ResourceName]bool{v1.ResourceCPU: true, v1.ResourceMemory: true, v1.ResourcePods: true, v1.ResourceEphemeralStorage: true}
	for name := range nc.Status.Allocatable {
		names[name] = true
	}
	for name := range names {
		metrics.NodesAllocatable.DeleteLabelValues(node, nc.Labels[karpv1.NodePoolLabelKey], nc.Labels[v1.LabelInstanceTypeStable],
			nc.Labels[karpv1.CapacityTypeLabelKey], nc.Labels[v1.LabelTopologyZone], string(name))
	}
}
