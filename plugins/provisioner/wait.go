package provisioner

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

// Filter keeps a pod nominated to a claim off every other node while the
// claim is in flight.
//
// The scheduler tries a nominated pod against every node, not only the one
// it is nominated to. While a claim's node is on its way, another claim's
// node that is ready first could take the pod, and what was decided - a
// spread over zones that have no node yet, the pods each launch was sized
// for - would come undone by whichever node is quicker. Registration is not
// enough to let go: a node is not schedulable until it is Ready and its
// startup taints are gone, and in between another claim's node could still
// win. So the hold ends when the claim is dropped: its node initialized,
// its launch failed or its NodeClaim deleted. nominatedToANodeThatTakesIt
// still clears a nomination that keeps pods apart on their own node.
func (p *Provisioner) Filter(_ context.Context, cs fwk.CycleState, pod *v1.Pod, ni fwk.NodeInfo) *fwk.Status {
	want := pod.Status.NominatedNodeName
	node := ni.Node()
	if want == "" || node == nil || node.Name == want || !p.holds(want) {
		return nil
	}
	if _, err := cs.Read(judgingKey); err == nil {
		// The Provisioner's own decision, trying the pod on claims.
		return nil
	}
	return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "waiting for node "+want+", which is being launched for this pod")
}

// EventsToRegister: a pod Filter held back may bind once its own node is
// added. Without hints the scheduler would retry it on every cluster event
// while it waits. A dropped claim's pods are retried by the requeue loop.
func (p *Provisioner) EventsToRegister(context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add}, QueueingHintFn: ownNodeAdded},
	}, nil
}

func ownNodeAdded(_ klog.Logger, pod *v1.Pod, _, newObj interface{}) (fwk.QueueingHint, error) {
	if node, ok := newObj.(*v1.Node); ok && pod.Status.NominatedNodeName != "" && node.Name != pod.Status.NominatedNodeName {
		return fwk.QueueSkip, nil
	}
	return fwk.Queue, nil
}

// judgingKey is in the cycle state while PostFilter runs the Filter
// plugins itself: a pod being decided again is tried on claims other than
// the one it is nominated to.
const judgingKey fwk.StateKey = Name + "/judging"

type judging struct{}

func (judging) Clone() fwk.StateData { return judging{} }

// holds reports whether name is a claim of this process. Filter runs while
// PostFilter holds mu (PostFilter runs the Filter plugins), so the names
// are kept apart from it.
func (p *state) holds(name string) bool {
	_, ok := p.names.Load(name)
	return ok
}
