package disruption

import (
	"context"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// disrupt marks the claim with the reason and deletes it; the termination
// controller takes it from there.
func (l *loop) disrupt(ctx context.Context, k *candidate, reason, message string) {
	logger := klog.FromContext(ctx).WithValues("nodeClaim", k.claim.Name, "node", k.nodeName(), "reason", reason)
	nc := k.claim.DeepCopy()
	nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeDisruptionReason, Status: metav1.ConditionTrue, Reason: reason, Message: message})
	updated, err := l.c.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{})
	if err != nil {
		// Most likely a conflict: the claim changed since the cache saw it.
		// Judge it again next run.
		logger.V(2).Info("Not disrupting: marking the claim failed", "err", err)
		return
	}
	// Delete only the claim as judged: a pod event in between changes it.
	err = l.c.karp.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &updated.UID, ResourceVersion: &updated.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		logger.V(2).Info("Not disrupting: deleting the claim failed", "err", err)
		return
	}
	k.acted = true
	l.c.markDeleted(nc.Name, l.now)
	l.budgets[k.pool.Name].disrupting++
	if k.node != nil {
		l.leaving = append(l.leaving, k.node.Name)
		if l.sess != nil && !k.placed {
			l.sess.displace(ctx, k.node.Name, k.movable)
		}
	}
	l.c.report.decided(updated, k.node, reason, message)
	metrics.NodeClaimsDisrupted.WithLabelValues(strings.ToLower(reason), k.pool.Name).Inc()
	logger.Info("Disrupting node", "message", message, "pods", len(k.movable))
}
