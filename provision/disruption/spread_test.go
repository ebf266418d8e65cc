package disruption

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
)

// TestSpreadDomains: consolidation keeps a pod in the domains its
// DoNotSchedule spreads on keys other than hostname hold it in, and nowhere
// else.
func TestSpreadDomains(t *testing.T) {
	node := map[string]string{v1.LabelTopologyZone: "us-east-1b", v1.LabelHostname: "n1", "karpenter.sh/capacity-type": "spot"}
	spread := func(key string, when v1.UnsatisfiableConstraintAction) v1.TopologySpreadConstraint {
		return v1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: when}
	}
	pod := &v1.Pod{Spec: v1.PodSpec{TopologySpreadConstraints: []v1.TopologySpreadConstraint{
		spread(v1.LabelTopologyZone, v1.DoNotSchedule),
		spread(v1.LabelHostname, v1.DoNotSchedule),
		spread("karpenter.sh/capacity-type", v1.ScheduleAnyway),
	}}}
	got := spreadDomains(pod, node)
	if len(got) != 1 || got[v1.LabelTopologyZone] != "us-east-1b" {
		t.Fatalf("spreadDomains = %v, want only the zone us-east-1b (hostname is the node itself; ScheduleAnyway does not hold)", got)
	}
	if !hasLabels(&v1.Node{}, nil) {
		t.Error("a pod with no spread must fit any node")
	}
	if hasLabels(&v1.Node{}, got) {
		t.Error("a node in no zone must not take a pod held in us-east-1b")
	}
	other := map[string]string{v1.LabelTopologyZone: "us-east-1a"}
	if hasLabels(nodeWith(other), got) || !hasLabels(nodeWith(node), got) {
		t.Error("only a node in us-east-1b may take the pod")
	}
}

func nodeWith(labels map[string]string) *v1.Node {
	n := &v1.Node{}
	n.Labels = labels
	return n
}

// TestVanishingDomains: a pod is held in its zone only when the node going
// is the zone's last; while another node is in the zone, the scheduler still
// counts it and its plugins judge a move out as the Provisioner would.
func TestVanishingDomains(t *testing.T) {
	zoned := func(name, zone string) *v1.Node {
		n := nodeWith(map[string]string{v1.LabelTopologyZone: zone, v1.LabelHostname: name})
		n.Name = name
		return n
	}
	snap := internalcache.NewSnapshot(nil, []*v1.Node{zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b")})
	ss := &session{snap: snap, lister: &simLister{Snapshot: snap, excluded: map[string]bool{}}}
	inA, inB := map[string]string{v1.LabelTopologyZone: "a"}, map[string]string{v1.LabelTopologyZone: "b"}

	ss.exclude("a1")
	if got := ss.vanishing(inA, map[string]bool{}); len(got) != 0 {
		t.Errorf("a1 going, a2 still in zone a: held in %v, want nowhere", got)
	}
	ss.exclude("a2")
	if got := ss.vanishing(inA, map[string]bool{}); got[v1.LabelTopologyZone] != "a" {
		t.Errorf("zone a's last node going: held in %v, want zone a", got)
	}
	ss.exclude("b1")
	held := map[string]bool{v1.LabelTopologyZone + "=b": true}
	if got := ss.vanishing(inB, held); len(got) != 0 {
		t.Errorf("an answer remembered for this relocation was not used: %v", got)
	}
}
