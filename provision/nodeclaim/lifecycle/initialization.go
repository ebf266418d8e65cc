package lifecycle

import (
	"context"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/kubernetes/pkg/util/taints"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// ephemeralTaints are put on a Node by the control plane (admission and node
// lifecycle) while it is not ready or not reachable, and taken off when it is.
var ephemeralTaints = []string{v1.TaintNodeNotReady, v1.TaintNodeUnreachable, v1.TaintNodeNetworkUnavailable}

// initialize marks the claim initialized once its Node is Ready and carries
// neither the unregistered taint, nor any of the claim's startup taints, nor
// a taint the control plane puts on a node that is not usable yet: from
// then on its pods can bind and the node counts as capacity. Until then the
// Provisioner keeps the claim in flight and its pods nominated to it.
func (c *Controller) initialize(ctx context.Context, nc *karpv1.NodeClaim) (controller.Result, error) {
	node, err := c.Nodes.Get(nc.Status.NodeName)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	if !nodeutil.IsNodeReady(node) || hasTaint(node.Spec.Taints, karpv1.UnregisteredNoExecuteTaint()) {
		return controller.Result{}, nil
	}
	for _, key := range ephemeralTaints {
		if taints.TaintKeyExists(node.Spec.Taints, key) {
			return controller.Result{}, nil
		}
	}
	for _, t := range nc.Spec.StartupTaints {
		if hasTaint(node.Spec.Taints, t) {
			return controller.Result{}, nil
		}
	}
	if node.Labels[karpv1.NodeInitializedLabelKey] != "true" {
		patch := []byte(`{"metadata":{"labels":{"` + karpv1.NodeInitializedLabelKey + `":"true"}}}`)
		if _, err := c.Kube.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return controller.Result{}, err
		}
	}
	setCondition(nc, karpv1.ConditionTypeInitialized, metav1.ConditionTrue, "Initialized", "")
	if _, err := c.Karpenter.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{}); err != nil {
		return controller.Result{}, err
	}
	pool := nc.Labels[karpv1.NodePoolLabelKey]
	metrics.NodeClaimsInitialized.WithLabelValues(pool).Inc()
	if launched := transitioned(nc, karpv1.ConditionTypeLaunched); !launched.IsZero() {
		metrics.NodeClaimsStartupDuration.WithLabelValues(pool).Observe(c.now().Sub(launched.Time).Seconds())
	}
	for name, q := range node.Status.Allocatable {
		metrics.NodesAllocatable.WithLabelValues(node.Name, pool, nc.Labels[v1.LabelInstanceTypeStable],
			nc.Labels[karpv1.CapacityTypeLabelKey], nc.Labels[v1.LabelTopologyZone], string(name)).Set(float64(q.MilliValue()) / 1000)
	}
	klog.FromContext(ctx).V(2).Info("Initialized", "nodeClaim", nc.Name, "node", node.Name)
	return controller.Result{}, nil
}
