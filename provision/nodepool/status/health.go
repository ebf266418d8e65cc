package status

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
)

// Condition types and reasons of this controller beyond Karpenter's.
const (
	// ConditionTypeLaunchable says whether the pool's launches succeed.
	ConditionTypeLaunchable = "Launchable"
)

// healthConditions sets the conditions the pool's launches earn it:
//
//   - Launchable: False with the failure's reason (VcpuLimitExceeded,
//     InsufficientCapacity, Unauthorized...) from a failed launch until a
//     launch succeeds, saying until when launches are held back; True once
//     one succeeds. A claim is short-lived (a capacity failure deletes it):
//     this condition, and its event, are where the failure stays visible.
//   - NodeRegistrationHealthy (Karpenter's): False once PauseAfter
//     launched nodes in a row did not register, which pauses the pool's
//     launches until the NodePool or its EC2NodeClass changes; True once a
//     node registers; back to Unknown when either changes.
//
// Without news from this process (after a restart) the conditions stay
// as written, so a pause outlives the process that decided it.
func (c *Controller) healthConditions(current, pool *karpv1.NodePool) {
	if c.Health == nil {
		return
	}
	st := c.Health.Status(pool.Name)
	switch {
	case st.Failure != nil:
		pool.SetCondition(metav1.Condition{Type: ConditionTypeLaunchable, Status: metav1.ConditionFalse,
			Reason: st.Failure.Reason, Message: st.Failure.String()})
	case st.Launched:
		pool.SetCondition(metav1.Condition{Type: ConditionTypeLaunchable, Status: metav1.ConditionTrue, Reason: "Launched"})
	case pool.GetCondition(ConditionTypeLaunchable) == nil:
		pool.SetCondition(metav1.Condition{Type: ConditionTypeLaunchable, Status: metav1.ConditionUnknown, Reason: "AwaitingLaunch",
			Message: "no launch of this NodePool has been tried since fleet-scheduler started"})
	}

	reg := pool.GetCondition(karpv1.ConditionTypeNodeRegistrationHealthy)
	changed := reg != nil && (reg.ObservedGeneration != pool.Generation ||
		current.Status.NodeClassObservedGeneration != pool.Status.NodeClassObservedGeneration)
	switch {
	case changed:
		// What kept nodes from joining may be fixed: count afresh.
		c.Health.ResetRegistrations(pool.Name)
		pool.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeNodeRegistrationHealthy, Status: metav1.ConditionUnknown,
			Reason: "AwaitingRegistration", Message: "the NodePool or its EC2NodeClass changed; no node registered since"})
	case st.Paused:
		pool.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeNodeRegistrationHealthy, Status: metav1.ConditionFalse,
			Reason: launchhealth.ReasonNodesDidNotRegister, Message: fmt.Sprintf(
				"%d nodes in a row were launched and did not register (the last: NodeClaim %s); launches of this NodePool are paused "+
					"until it or its EC2NodeClass changes. Check the instances' console output, their route and security groups "+
					"to the API server, and the bootstrap token (kubeadm token list)", st.Unregistered, st.LastUnregistered)})
	case st.Registered:
		pool.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeNodeRegistrationHealthy, Status: metav1.ConditionTrue,
			Reason: karpv1.ConditionTypeNodeRegistrationHealthy})
	case reg == nil:
		pool.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeNodeRegistrationHealthy, Status: metav1.ConditionUnknown,
			Reason: "AwaitingRegistration", Message: "no node of this NodePool has registered since fleet-scheduler started"})
	}
}

// announce sends an event when a condition an operator acts on turns bad
// or changes why it is bad, and when launches succeed again; not on every
// status write.
func (c *Controller) announce(before, after *karpv1.NodePool) {
	for _, t := range []string{ConditionTypeLaunchable, karpv1.ConditionTypeNodeRegistrationHealthy, karpv1.ConditionTypeReady} {
		now, prev := after.GetCondition(t), before.GetCondition(t)
		if now == nil || (prev != nil && prev.Status == now.Status && prev.Reason == now.Reason && prev.Message == now.Message) {
			continue
		}
		switch {
		case now.Status == metav1.ConditionFalse:
			c.Recorder.Eventf(after, nil, v1.EventTypeWarning, now.Reason, t, "%s", now.Message)
		case now.Status == metav1.ConditionTrue && prev != nil && prev.Status == metav1.ConditionFalse:
			c.Recorder.Eventf(after, nil, v1.EventTypeNormal, t, t, "%s is True again (was %s: %s)", t, prev.Reason, prev.Message)
		}
	}
}
