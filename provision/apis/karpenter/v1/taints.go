package v1

import corev1 "k8s.io/api/core/v1"

// Taint keys fleet-scheduler manages.
const (
	// UnregisteredTaintKey is put on a node at join (NoExecute) and removed
	// when the Node is linked to its NodeClaim.
	UnregisteredTaintKey = GroupName + "/unregistered"
	// DisruptedTaintKey is put on a node (NoSchedule) when it is chosen for
	// disruption, so nothing new lands on it while it drains.
	DisruptedTaintKey = GroupName + "/disrupted"
)

// UnregisteredNoExecuteTaint returns the taint a joining node carries until
// registration.
func UnregisteredNoExecuteTaint() corev1.Taint {
	return corev1.Taint{Key: UnregisteredTaintKey, Effect: corev1.TaintEffectNoExecute}
}

// DisruptedNoScheduleTaint returns the taint a node carries while it is being
// disrupted.
func DisruptedNoScheduleTaint() corev1.Taint {
	return corev1.Taint{Key: DisruptedTaintKey, Effect: corev1.TaintEffectNoSchedule}
}
