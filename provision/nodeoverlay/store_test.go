package nodeoverlay

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// TestStoreAppliesToOtherOptions: the cloud provider builds a claim's
// options itself, from the same offerings but as other objects; the
// published evaluation prices and sizes them as it did the pool's, by
// offering and instance type, cheapest first.
func TestStoreAppliesToOtherOptions(t *testing.T) {
	gpu := v1.ResourceName("example.com/gpu")
	res := Evaluate([]*v1alpha1.NodeOverlay{
		overlay(spec{name: "cheap-m5", reqs: []v1alpha1.NodeSelectorRequirement{in("karpenter.k8s.aws/instance-family", "m5")}, price: "0.01"}),
		overlay(spec{name: "gpu", reqs: []v1alpha1.NodeSelectorRequirement{in(v1.LabelTopologyZone, "us-east-1a")},
			capacity: v1.ResourceList{gpu: resource.MustParse("1")}}),
	}, pools())
	s := &Store{}
	s.Set(res)

	var claim []*packing.Option
	for _, o := range catalogue {
		if o.Zone == "us-east-1b" && (o.InstanceType == "m5.large" || o.InstanceType == "c5.large") {
			copied := *o
			claim = append(claim, &copied)
		}
	}
	got := s.Apply("general", packing.NewPoolOptions(claim, map[string]string{"karpenter.sh/nodepool": "general"}, nil))
	if len(got) != 2 || got[0].InstanceType != "m5.large" || got[0].Price != 0.01 || got[0].PriceOverlay != "cheap-m5" {
		t.Fatalf("claim options %v, want m5.large first at the overlaid 0.01", got)
	}
	// The gpu overlay selected us-east-1a offerings only, but capacity is
	// the instance type's: its 1b offerings carry it too.
	for _, o := range got {
		if q := o.Capacity[gpu]; q.Cmp(resource.MustParse("1")) != 0 {
			t.Errorf("%s in %s: %s capacity %v, want 1", o.InstanceType, o.Zone, gpu, o.Capacity[gpu])
		}
	}
	if c5 := got[1]; c5.Price != 0.085 || c5.PriceOverlay != "" {
		t.Errorf("c5.large at %v (overlay %q), want the catalogue's 0.085", c5.Price, c5.PriceOverlay)
	}
	if other := s.Apply("absent", packing.NewPoolOptions(claim, nil, nil)); other[0].Price != 0.085 {
		t.Errorf("a pool the evaluation did not see: %v, want the catalogue's prices", other)
	}
	var none *Store
	if opts := none.Apply("general", packing.NewPoolOptions(claim, nil, nil)); len(opts) != 2 || opts[0].PriceOverlay != "" {
		t.Errorf("a nil store applied an overlay: %v", opts)
	}
}
