package disruption

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// syncConditions keeps Consolidatable and Drifted on the claims the run did
// not act on, and drops a DisruptionReason left by a deletion that failed.
// A claim is written only when one changes.
func (l *loop) syncConditions(ctx context.Context) {
	for _, k := range l.cands {
		if k.acted || !k.initialized {
			continue
		}
		nc := k.claim.DeepCopy()
		changed := false
		if consolidationEnabled(k.pool) && l.consolidatable(k) {
			changed = nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeConsolidatable, Status: metav1.ConditionTrue,
				Reason: "Consolidatable", Message: fmt.Sprintf("no pod bound or removed since %s", k.lastEvent.UTC().Format(time.RFC3339))}) || changed
		} else {
			changed = removeCondition(nc, karpv1.ConditionTypeConsolidatable) || changed
		}
		if k.driftReason != "" {
			changed = nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeDrifted, Status: metav1.ConditionTrue,
				Reason: k.driftReason, Message: k.driftMsg}) || changed
		} else {
			changed = removeCondition(nc, karpv1.ConditionTypeDrifted) || changed
		}
		changed = removeCondition(nc, karpv1.ConditionTypeDisruptionReason) || changed
		if !changed {
			continue
		}
		updated, err := l.c.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{})
		if err != nil {
			klog.FromContext(ctx).V(3).Info("Updating disruption conditions", "nodeClaim", nc.Name, "err", err)
			continue
		}
		k.claim = updated
	}
}

func removeCondition(nc *karpv1.NodeClaim, conditionType string) bool {
	for i, c := range nc.Status.Conditions {
		if c.Type == conditionType {
			nc.Status.Conditions = append(nc.Status.Conditions[:i:i], nc.Status.Conditions[i+1:]...)
			return true
		}
	}
	return false
}
