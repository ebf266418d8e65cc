package provisioner

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// testWaitForOwnNode: two pods spread over two zones are nominated to a
// claim in each zone, and the second claim's node registers first. It has
// room for both pods, and while it is the only node of the pool the
// spread lets both there; the first pod waits for its own node all the
// same, and binds there once it registers.
func (s *stack) testWaitForOwnNode(t *testing.T) {
	np := nct.Pool{Name: "wait", Labels: map[string]string{"tier": "wait"}, Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large"),
		req(v1.LabelTopologyZone, v1.NodeSelectorOpIn, zoneA, zoneB),
	}}.NodePool()
	// No disruption: moto keeps no security groups on instances, so the
	// scale-down loop would find the claims drifted and replace them.
	np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "0"}}
	if _, err := s.karp.KarpenterV1().NodePools().Create(s.ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var claims [2]string
	for i, name := range []string{"wait-0", "wait-1"} {
		pod := s.pod(name, "500m", map[string]string{"tier": "wait"}, map[string]string{"app": "wait"})
		pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "wait"}},
		}}
		s.create(pod)
		claims[i] = s.nominated(name)
	}
	if claims[0] == claims[1] || s.claimZone(claims[0]) == s.claimZone(claims[1]) {
		t.Fatalf("pods nominated to %v, want two claims in two zones", claims)
	}

	s.claimNode(claims[1], "wait")
	s.eventually("wait-1 bound to "+claims[1], func() bool { return s.boundTo("wait-1") == claims[1] })
	s.never("wait-0 binds before its own node registers", 5*time.Second, func() bool { return s.boundTo("wait-0") != "" })
	if got := s.nominationOf("wait-0"); got != claims[0] {
		t.Errorf("wait-0 nominated to %q while it waits, want its claim %s", got, claims[0])
	}

	s.claimNode(claims[0], "wait")
	s.eventually("wait-0 bound to "+claims[0], func() bool { return s.boundTo("wait-0") == claims[0] })
}

// claimNode registers the claim's node, Ready, in the claim's zone with
// the pool's template label tier=tier.
func (s *stack) claimNode(claim, tier string) {
	s.t.Helper()
	s.readyNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: claim, Labels: map[string]string{
		v1.LabelHostname: claim, v1.LabelTopologyZone: s.claimZone(claim), v1.LabelInstanceTypeStable: "m5.large",
		karpv1.NodePoolLabelKey: tier, "tier": tier,
	}}})
}

// boundTo is the node the pod is bound to, or "".
func (s *stack) boundTo(name string) string {
	pod, err := s.kube.CoreV1().Pods(metav1.NamespaceDefault).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return pod.Spec.NodeName
}
