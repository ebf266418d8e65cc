package launchhealth

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// ReasonNodesDidNotRegister is the reason of a NodePool's
// NodeRegistrationHealthy=False when its launches are paused because
// launched nodes did not register.
const ReasonNodesDidNotRegister = "NodesDidNotRegister"

// Paused reports whether the pool's launches are paused because its nodes
// did not register (NodeRegistrationHealthy=False, NodesDidNotRegister,
// for the pool's current generation), and why. The condition persists, so
// a pause outlives the process that decided it.
func Paused(np *karpv1.NodePool) (bool, string) {
	c := np.GetCondition(karpv1.ConditionTypeNodeRegistrationHealthy)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonNodesDidNotRegister || c.ObservedGeneration != np.Generation {
		return false, ""
	}
	return true, c.Message
}

// Held says why the NodePool launches nothing now, whatever its claims
// ask: it is invalid (ValidationSucceeded=False) or Paused; "" when it may
// launch. Its pool offers nothing, and the cloud provider launches none of
// its claims.
func Held(np *karpv1.NodePool) string {
	if c := np.GetCondition(karpv1.ConditionTypeValidationSucceeded); c != nil && c.Status == metav1.ConditionFalse {
		return "it is invalid: " + c.Message
	}
	if paused, why := Paused(np); paused {
		return "its launches are paused: " + why
	}
	return ""
}
