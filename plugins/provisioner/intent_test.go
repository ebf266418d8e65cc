package provisioner

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// Intent the scheduler cannot see on its own: domains with no node yet,
// preferences, volumes, and pools that run out. Each scenario uses pools
// of its own, told apart by a template label its pods select.
func TestIntent(t *testing.T) {
	s := startStack(t)
	s.run(t, "zone spread over three zones with no node in two of them", s.testZoneSpread)
	s.run(t, "minDomains holds pods back when the pools offer fewer zones", s.testMinDomains)
	s.run(t, "zone pod affinity keeps a group in one zone", s.testZoneAffinity)
	s.run(t, "preferred node affinity is met, and relaxed when the pool cannot", s.testPreferredNodeAffinity)
	s.run(t, "volumes: a bound zonal PV, WaitForFirstConsumer topologies, an unbound Immediate claim", s.testVolumes)
	s.run(t, "the next pool by weight takes pods when the heaviest reaches its limits", s.testPoolFallback)
	s.run(t, "a pod nominated to a claim waits for its own node while another claim's node registers", s.testWaitForOwnNode)
}

const zoneA, zoneB, zoneC = "us-east-1a", "us-east-1b", "us-east-1c"

func (s *stack) testZoneSpread(t *testing.T) {
	s.createPool(poolSpec{name: "spread", labels: map[string]string{"tier": "spread"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large"),
	}})
	for i := range 6 {
		pod := s.pod(fmt.Sprintf("spread-%d", i), "500m", map[string]string{"tier": "spread"}, map[string]string{"app": "spread"})
		pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread"}},
		}}
		s.create(pod)
		// One at a time, as a Deployment's pods reach the scheduler in order.
		s.nominated(pod.Name)
	}
	perZone := map[string]int{}
	for i := range 6 {
		perZone[s.claimZone(s.nominated(fmt.Sprintf("spread-%d", i)))]++
	}
	if perZone[zoneA] != 2 || perZone[zoneB] != 2 || perZone[zoneC] != 2 {
		t.Errorf("pods per zone %v, want 2/2/2 over the pool's three zones", perZone)
	}
}

func (s *stack) testMinDomains(t *testing.T) {
	s.createPool(poolSpec{name: "twozones", labels: map[string]string{"tier": "twozones"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large"),
		req(v1.LabelTopologyZone, v1.NodeSelectorOpIn, zoneA, zoneB),
	}})
	spread := func(name string) *v1.Pod {
		pod := s.pod(name, "250m", map[string]string{"tier": "twozones"}, map[string]string{"app": "mindomains"})
		pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule, MinDomains: ptr.To[int32](3),
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "mindomains"}},
		}}
		return s.create(pod)
	}
	spread("min-0")
	spread("min-1")
	zones := sets.New(s.claimZone(s.nominated("min-0")), s.claimZone(s.nominated("min-1")))
	if !zones.Equal(sets.New(zoneA, zoneB)) {
		t.Errorf("the first two pods went to zones %v, want one in each of the pool's two", sets.List(zones))
	}
	// Two domains are fewer than minDomains 3: the smallest count is taken
	// as 0, so each zone holds at most maxSkew = 1 of them.
	spread("min-2")
	if msg := s.podEvent("min-2", "FailedProvisioning"); !strings.Contains(msg, "topology") {
		t.Errorf("event %q does not blame the topology spread", msg)
	}
	s.never("min-2 nominated", 2*time.Second, func() bool { return s.nominationOf("min-2") != "" })
}

func (s *stack) testZoneAffinity(t *testing.T) {
	s.createPool(poolSpec{name: "affine", labels: map[string]string{"tier": "affine"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large"),
	}})
	zones := sets.New[string]()
	claims := sets.New[string]()
	for i := range 4 {
		// 1500m each: every pod needs a node of its own.
		pod := s.pod(fmt.Sprintf("affine-%d", i), "1500m", map[string]string{"tier": "affine"}, map[string]string{"group": "affine"})
		pod.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"group": "affine"}}, TopologyKey: v1.LabelTopologyZone,
		}}}}
		s.create(pod)
		claim := s.nominated(pod.Name)
		claims.Insert(claim)
		zones.Insert(s.claimZone(claim))
	}
	if claims.Len() != 4 || zones.Len() != 1 {
		t.Errorf("4 pods on %d claims in zones %v, want 4 claims in one zone", claims.Len(), sets.List(zones))
	}
}

func (s *stack) testPreferredNodeAffinity(t *testing.T) {
	category := "karpenter.k8s.aws/instance-category"
	s.createPool(poolSpec{name: "prefer", labels: map[string]string{"tier": "prefer"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(category, v1.NodeSelectorOpIn, "m", "r"),
		req("karpenter.k8s.aws/instance-size", v1.NodeSelectorOpIn, "large", "xlarge"),
	}})
	prefers := func(name, value string) *v1.Pod {
		pod := s.pod(name, "500m", map[string]string{"tier": "prefer"}, nil)
		pod.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []v1.PreferredSchedulingTerm{{
			Weight: 50, Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: category, Operator: v1.NodeSelectorOpIn, Values: []string{value}}}},
		}}}}
		return s.create(pod)
	}
	prefers("prefers-r", "r")
	nc := s.nodeClaim(s.nominated("prefers-r"), nil)
	for _, it := range sets.List(requirementValues(nc, v1.LabelInstanceTypeStable)) {
		if !strings.HasPrefix(it, "r") {
			t.Errorf("the pod prefers category r, and the pool offers it, but its claim may launch as %s", it)
		}
	}
	// The pool offers no category x: the preference is relaxed and the pod
	// still gets a node.
	prefers("prefers-x", "x")
	if got := s.nominated("prefers-x"); !strings.HasPrefix(got, "prefer-") {
		t.Errorf("prefers-x nominated to %q, want a claim of nodepool prefer once its preference is relaxed", got)
	}
}

func (s *stack) testVolumes(t *testing.T) {
	s.createPool(poolSpec{name: "volumes", labels: map[string]string{"tier": "volumes"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large"),
	}})
	wffc, immediate := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	s.createObject(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "zonal-c"}, Provisioner: "ebs.csi.aws.com", VolumeBindingMode: &wffc,
		AllowedTopologies: []v1.TopologySelectorTerm{{MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: v1.LabelTopologyZone, Values: []string{zoneC}}}}}})
	s.createObject(&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "immediate"}, Provisioner: "ebs.csi.aws.com", VolumeBindingMode: &immediate})

	// A claim bound to a volume in zone b.
	s.boundVolume("data-b", zoneB)
	s.create(s.withClaim(s.pod("bound-pv", "250m", map[string]string{"tier": "volumes"}, nil), "data-b"))
	if zone := s.claimZone(s.nominated("bound-pv")); zone != zoneB {
		t.Errorf("the pod's volume is in %s, its claim in %s", zoneB, zone)
	}
	// An unbound claim whose class waits for the first consumer, allowed in zone c only.
	s.unboundClaim("data-wffc", "zonal-c")
	s.create(s.withClaim(s.pod("wffc", "250m", map[string]string{"tier": "volumes"}, nil), "data-wffc"))
	if zone := s.claimZone(s.nominated("wffc")); zone != zoneC {
		t.Errorf("the class allows only %s, the claim is in %s", zoneC, zone)
	}
	// An unbound claim whose class binds at once: no node is provisioned
	// until it is bound, and the pod is told why.
	s.unboundClaim("data-now", "immediate")
	s.create(s.withClaim(s.pod("immediate", "250m", map[string]string{"tier": "volumes"}, nil), "data-now"))
	if msg := s.podEvent("immediate", "FailedProvisioning"); !strings.Contains(msg, `persistentvolumeclaim "data-now" is not bound`) || !strings.Contains(msg, "immediately") {
		t.Errorf("event %q does not say the claim is unbound and binds immediately", msg)
	}
	s.never("the immediate pod nominated", 2*time.Second, func() bool { return s.nominationOf("immediate") != "" })
}

func (s *stack) testPoolFallback(t *testing.T) {
	m5large := req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large")
	s.createPool(poolSpec{name: "first", weight: 90, labels: map[string]string{"tier": "fallback"},
		requirements: []karpv1.NodeSelectorRequirementWithMinValues{m5large}, limits: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}})
	s.createPool(poolSpec{name: "second", weight: 10, labels: map[string]string{"tier": "fallback"},
		requirements: []karpv1.NodeSelectorRequirementWithMinValues{m5large}})
	s.create(s.pod("fallback-1", "1500m", map[string]string{"tier": "fallback"}, nil))
	if got := s.nominated("fallback-1"); !strings.HasPrefix(got, "first-") {
		t.Fatalf("fallback-1 nominated to %q, want the heavier pool", got)
	}
	s.create(s.pod("fallback-2", "1500m", map[string]string{"tier": "fallback"}, nil))
	if got := s.nominated("fallback-2"); !strings.HasPrefix(got, "second-") {
		t.Errorf("fallback-2 nominated to %q: the heavier pool's limit is used up, the next pool by weight should take it", got)
	}
}
