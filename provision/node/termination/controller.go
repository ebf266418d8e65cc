// Package termination sends the deletion of a managed Node through its
// NodeClaim, as Karpenter does: `kubectl delete node X` holds on the
// karpenter.sh/termination finalizer that registration put on the Node, and
// the NodeClaim is deleted, so the claim's termination drains the Node,
// takes the finalizer off, deletes it and terminates the instance. The
// finalizer is not removed here while the Node has a claim.
package termination

import (
	"context"
	"slices"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
)

// Name is the controller's name.
const Name = "node.termination"

// Controller reconciles Nodes being deleted.
type Controller struct {
	Karpenter  versioned.Interface
	Kube       kubernetes.Interface
	Nodes      corelisters.NodeLister
	NodeClaims karplisters.NodeClaimLister
	Recorder   events.EventRecorder
}

// Reconcile reconciles the Node the key names.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	return controller.ForObject(c.Nodes, c.reconcile).Reconcile(ctx, key)
}

// Register connects the controller to its informer: Node events.
func Register(ctl *controller.Controller, nodes cache.SharedIndexInformer) error {
	return ctl.Watch(nodes)
}

// reconcile deletes the NodeClaim of a Node being deleted that holds the
// termination finalizer. A Node whose claim is gone (its finalizer removed
// by hand) has nothing left to wait for: it loses the finalizer.
func (c *Controller) reconcile(ctx context.Context, node *v1.Node) (controller.Result, error) {
	if node.DeletionTimestamp == nil || !HasFinalizer(node) {
		return controller.Result{}, nil
	}
	logger := klog.FromContext(ctx).WithValues("node", node.Name)
	nc, err := c.claimOf(ctx, node)
	if err != nil {
		return controller.Result{}, err
	}
	if nc == nil {
		logger.Info("Node being deleted has no NodeClaim; removing its termination finalizer")
		return controller.Result{}, RemoveFinalizer(ctx, c.Kube, node)
	}
	if nc.DeletionTimestamp != nil {
		return controller.Result{}, nil // its termination is under way and ends with the Node
	}
	err = c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name,
		metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(nc.UID))})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone or replaced since the cache saw it: look again.
		return controller.Result{}, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, node.Name, err)
	}
	if err != nil {
		return controller.Result{}, err
	}
	c.Recorder.Eventf(controller.WithKind(node), nc, v1.EventTypeNormal, "DeletingNodeClaim", "Terminate",
		"Node is being deleted: deleting NodeClaim %s, which drains the Node and terminates its instance", nc.Name)
	logger.V(2).Info("Deleted the NodeClaim of a Node being deleted", "nodeClaim", nc.Name)
	return controller.Result{}, nil
}

// claimOf finds the Node's NodeClaim: its owner, else a claim whose
// status.nodeName is the Node. nil means it has none; the owner is
// confirmed gone with the API, not only the cache.
func (c *Controller) claimOf(ctx context.Context, node *v1.Node) (*karpv1.NodeClaim, error) {
	for _, o := range node.OwnerReferences {
		if o.Kind != "NodeClaim" {
			continue
		}
		if gv, err := schema.ParseGroupVersion(o.APIVersion); err != nil || gv.Group != karpv1.SchemeGroupVersion.Group {
			continue
		}
		nc, err := c.NodeClaims.Get(o.Name)
		if apierrors.IsNotFound(err) {
			nc, err = c.Karpenter.KarpenterV1().NodeClaims().Get(ctx, o.Name, metav1.GetOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, err
		}
		if err == nil && nc.UID == o.UID {
			return nc, nil
		}
	}
	claims, err := c.NodeClaims.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, nc := range claims {
		if nc.Status.NodeName == node.Name {
			return nc, nil
		}
	}
	return nil, nil
}

// HasFinalizer reports whether the Node holds the termination finalizer.
func HasFinalizer(node *v1.Node) bool {
	return slices.Contains(node.Finalizers, karpv1.TerminationFinalizer)
}

// RemoveFinalizer takes the termination finalizer off the Node, with its
// resource version as a precondition: a conflict is retried on a fresh
// Node rather than overwriting a concurrent change to its finalizers.
func RemoveFinalizer(ctx context.Context, kube kubernetes.Interface, node *v1.Node) error {
	if !HasFinalizer(node) {
		return nil
	}
	return controller.RemoveFinalizer(ctx, kube.CoreV1().Nodes().Patch, node, karpv1.TerminationFinalizer)
}
