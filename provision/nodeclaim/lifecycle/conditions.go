package lifecycle

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

func isTrue(nc *karpv1.NodeClaim, conditionType string) bool {
	return meta.IsStatusConditionTrue(nc.Status.Conditions, conditionType)
}

// setCondition records a step's condition and recomputes Ready, which is
// True only once launch, registration and initialization all are.
func setCondition(nc *karpv1.NodeClaim, conditionType string, status metav1.ConditionStatus, reason, message string) {
	nc.SetCondition(metav1.Condition{Type: conditionType, Status: status, Reason: reason, Message: message})
	ready := metav1.Condition{Type: karpv1.ConditionTypeReady, Status: metav1.ConditionTrue, Reason: "Ready"}
	for _, dep := range karpv1.NodeClaimReadyDependents() {
		c := meta.FindStatusCondition(nc.Status.Conditions, dep)
		if c == nil || c.Status != metav1.ConditionTrue {
			ready.Status, ready.Reason = metav1.ConditionUnknown, "AwaitingReconciliation"
			if c != nil && c.Status == metav1.ConditionFalse {
				ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
			}
			if ready.Message == "" {
				ready.Message = dep + " is not true yet"
			}
			break
		}
	}
	nc.SetCondition(ready)
}

// transitioned is when the condition last changed, or zero.
func transitioned(nc *karpv1.NodeClaim, conditionType string) metav1.Time {
	if c := meta.FindStatusCondition(nc.Status.Conditions, conditionType); c != nil {
		return c.LastTransitionTime
	}
	return metav1.Time{}
}
