package disruption_test

import (
	"fmt"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	"github.com/fleet-scheduler/fleet-scheduler/test/disruptiontest"
)

// spotPools: "spotty" offers 17 spot instance types cheaper than the spot
// m5.4xlarge its node runs as, and a cheaper on-demand one; "spotfew"
// offers 3 cheaper spot types.
func spotPools() []*packing.Pool {
	opt := func(it, capacityType string, price float64) *packing.Option {
		rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
		return &packing.Option{InstanceType: it, Zone: "us-east-1a", CapacityType: capacityType, Price: price,
			Labels: map[string]string{v1.LabelInstanceTypeStable: it, v1.LabelTopologyZone: "us-east-1a", karpv1.CapacityTypeLabelKey: capacityType,
				v1.LabelArchStable: "amd64", v1.LabelOSStable: "linux"},
			Capacity: rl, Allocatable: rl}
	}
	pool := func(name string, spotTypes int) *packing.Pool {
		options := []*packing.Option{
			opt("m5.4xlarge", karpv1.CapacityTypeSpot, 0.30),
			opt("t3.small", karpv1.CapacityTypeOnDemand, 0.0208),
		}
		for i := range spotTypes {
			options = append(options, opt(fmt.Sprintf("c%d.large", i+1), karpv1.CapacityTypeSpot, 0.01*float64(i+1)))
		}
		labels := map[string]string{karpv1.NodePoolLabelKey: name}
		return &packing.Pool{Name: name, Labels: labels, Options: packing.NewPoolOptions(options, labels, nil), DaemonRequests: &framework.Resource{}}
	}
	return []*packing.Pool{pool("spotty", 17), pool("spotfew", 3)}
}

var spotNodeLabels = map[string]string{v1.LabelInstanceTypeStable: "m5.4xlarge", v1.LabelTopologyZone: "us-east-1a",
	karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeSpot}

// spotToSpot: an underused spot node is replaced by a spot node, not by
// the cheaper on-demand one, chosen from the 15 cheapest of the 17 cheaper
// spot types.
func (h *harness) spotToSpot(t *testing.T) {
	h.Pool(t, "spotty", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: after("2s")})
	_, big := h.CreateNode(t, disruptiontest.NodeSpec{Name: "spotty-big", Pool: "spotty", CPU: "16", Memory: "64Gi", Labels: spotNodeLabels})
	h.onePod(t, "spotter", "spotty", "spotty-big")
	repl := h.waitReplacement(t, big.Name)
	if ct := requirement(repl, karpv1.CapacityTypeLabelKey); !slices.Equal(ct, []string{karpv1.CapacityTypeSpot}) {
		t.Errorf("replacement capacity types %v, want [spot]", ct)
	}
	var want []string
	for i := range disruption.MinSpotToSpotInstanceTypes {
		want = append(want, fmt.Sprintf("c%d.large", i+1))
	}
	if types := requirement(repl, v1.LabelInstanceTypeStable); !slices.Equal(types, want) {
		t.Errorf("replacement instance types %v, want the %d cheapest %v", types, disruption.MinSpotToSpotInstanceTypes, want)
	}
	// Leave nothing launching behind: the claim goes, the node stays.
	if err := h.Karp.KarpenterV1().NodeClaims().Delete(h.Ctx, repl.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.WaitEvent(t, "NodeClaim", big.Name, "DisruptionCancelled")
	h.never(t, "spotty")
}

// spotFromFewTypes: with 3 cheaper spot types the spot node stays, and says why.
func (h *harness) spotFromFewTypes(t *testing.T) {
	h.Pool(t, "spotfew", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: after("2s")})
	_, big := h.CreateNode(t, disruptiontest.NodeSpec{Name: "spotfew-big", Pool: "spotfew", CPU: "16", Memory: "64Gi", Labels: spotNodeLabels})
	h.onePod(t, "fewspot", "spotfew", "spotfew-big")
	if n := h.notReplaced(t, big.Name, "a spot node is replaced by a spot node only when at least 15 cheaper instance types are offered, 3 are (c1.large, c2.large, c3.large)"); n != 0 {
		t.Errorf("replaced from %d spot types (%d Replacing events)", 3, n)
	}
	h.never(t, "spotfew")
}

// never stops the pool's consolidation, for the tests after.
func (h *harness) never(t *testing.T, pool string) {
	t.Helper()
	if _, err := h.Karp.KarpenterV1().NodePools().Patch(h.Ctx, pool, "application/merge-patch+json",
		[]byte(`{"spec":{"disruption":{"consolidateAfter":"Never"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}
