package nodepool

import (
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

const familyKey = "karpenter.k8s.aws/instance-family"

// TestNewNodeClaimKeepsMinValues: the claim carries at most
// MaxInstanceTypes types, cheapest first, unless a minValues key needs more
// to keep its values; the narrowed requirement keeps the template's
// minValues.
func TestNewNodeClaimKeepsMinValues(t *testing.T) {
	// 70 types of family "a" cheaper than 5 of family "b".
	var options []*packing.Option
	for i := 0; i < 75; i++ {
		family, price := "a", 0.01+float64(i)*0.001
		if i >= 70 {
			family = "b"
		}
		name := fmt.Sprintf("%s%d.large", family, i)
		options = append(options, &packing.Option{InstanceType: name, Zone: "us-east-1a", CapacityType: "on-demand", Price: price,
			Labels: map[string]string{v1.LabelInstanceTypeStable: name, familyKey: family}})
	}
	opts := packing.NewPoolOptions(options, nil, nil)
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "diverse"}}
	np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
		{Key: familyKey, Operator: v1.NodeSelectorOpExists, MinValues: ptr.To(2)},
		{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpExists, MinValues: ptr.To(3)},
	}

	types := func(nc *karpv1.NodeClaim) karpv1.NodeSelectorRequirementWithMinValues {
		for _, r := range nc.Spec.Requirements {
			if r.Key == v1.LabelInstanceTypeStable {
				return r
			}
		}
		t.Fatal("no instance-type requirement")
		return karpv1.NodeSelectorRequirementWithMinValues{}
	}
	plain := types(NewNodeClaim(&karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, packing.ClaimSpec{Name: "x", NodePool: "plain", Options: opts}))
	if len(plain.Values) != MaxInstanceTypes || plain.Values[0] != "a0.large" || plain.MinValues != nil {
		t.Errorf("without minValues: %d types from %s, minValues %v; want the %d cheapest", len(plain.Values), plain.Values[0], plain.MinValues, MaxInstanceTypes)
	}
	r := types(NewNodeClaim(np, packing.ClaimSpec{Name: "y", NodePool: "diverse", Options: opts}))
	if len(r.Values) != MaxInstanceTypes+1 || r.Values[MaxInstanceTypes] != "b70.large" {
		t.Errorf("with minValues 2 on the family: %d types, last %s; want the %d cheapest and b70.large", len(r.Values), r.Values[len(r.Values)-1], MaxInstanceTypes)
	}
	if r.MinValues == nil || *r.MinValues != 3 {
		t.Errorf("instance-type requirement minValues = %v, want the template's 3", r.MinValues)
	}
}

// TestNewNodeClaimOverlayAnnotations: a claim whose instance types carry a
// NodeOverlay's price or capacity says so, as Karpenter's claims do.
func TestNewNodeClaimOverlayAnnotations(t *testing.T) {
	plain := &packing.Option{InstanceType: "c5.large", Zone: "us-east-1a", CapacityType: "on-demand", Price: 0.085,
		Labels: map[string]string{v1.LabelInstanceTypeStable: "c5.large"}}
	priced := *plain
	priced.InstanceType, priced.Labels, priced.Price, priced.PriceOverlay = "m5.large", map[string]string{v1.LabelInstanceTypeStable: "m5.large"}, 0.01, "savings-plan"
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "general"}}
	for _, tc := range []struct {
		name    string
		options []*packing.Option
		price   bool
	}{
		{"catalogue prices only", []*packing.Option{plain}, false},
		{"an overlaid price among the types", []*packing.Option{plain, &priced}, true},
	} {
		nc := NewNodeClaim(np, packing.ClaimSpec{Name: "general-x", NodePool: "general", Options: packing.NewPoolOptions(tc.options, nil, nil)})
		_, got := nc.Annotations[v1alpha1.PriceOverlayAppliedAnnotationKey]
		if got != tc.price {
			t.Errorf("%s: price-overlay-applied %v, want %v (annotations %v)", tc.name, got, tc.price, nc.Annotations)
		}
		if _, ok := nc.Annotations[v1alpha1.CapacityOverlayAppliedAnnotationKey]; ok {
			t.Errorf("%s: capacity-overlay-applied set with no capacity overlay", tc.name)
		}
	}
}
