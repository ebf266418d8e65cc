package nodeoverlay

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

func option(name, zone string, price float64) *packing.Option {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("110")}
	family, _, _ := strings.Cut(name, ".")
	return &packing.Option{InstanceType: name, Zone: zone, CapacityType: "on-demand", Price: price,
		Labels: map[string]string{v1.LabelInstanceTypeStable: name, v1.LabelTopologyZone: zone,
			"karpenter.sh/capacity-type": "on-demand", "karpenter.k8s.aws/instance-family": family},
		Capacity: rl, Allocatable: rl}
}

// catalogue: m5.large is the cheapest, then c5.large, in two zones.
var catalogue = []*packing.Option{
	option("m5.large", "us-east-1a", 0.096), option("m5.large", "us-east-1b", 0.096),
	option("c5.large", "us-east-1a", 0.085), option("c5.large", "us-east-1b", 0.085),
	option("r5.large", "us-east-1a", 0.126),
}

func pools() map[string][]*packing.PoolOption {
	return map[string][]*packing.PoolOption{
		"general": packing.NewPoolOptions(catalogue, map[string]string{"karpenter.sh/nodepool": "general", "team": "scan"}, nil),
		"batch":   packing.NewPoolOptions(catalogue, map[string]string{"karpenter.sh/nodepool": "batch"}, nil),
	}
}

type spec struct {
	name          string
	weight        int32
	reqs          []v1alpha1.NodeSelectorRequirement
	price, adjust string
	capacity      v1.ResourceList
}

func overlay(s spec) *v1alpha1.NodeOverlay {
	o := &v1alpha1.NodeOverlay{ObjectMeta: metav1.ObjectMeta{Name: s.name}, Spec: v1alpha1.NodeOverlaySpec{Requirements: s.reqs, Capacity: s.capacity}}
	if s.weight != 0 {
		o.Spec.Weight = ptr.To(s.weight)
	}
	if s.price != "" {
		o.Spec.Price = ptr.To(s.price)
	}
	if s.adjust != "" {
		o.Spec.PriceAdjustment = ptr.To(s.adjust)
	}
	return o
}

func in(key string, values ...string) v1alpha1.NodeSelectorRequirement {
	return v1alpha1.NodeSelectorRequirement{Key: key, Operator: v1.NodeSelectorOpIn, Values: values}
}

func find(opts []*packing.PoolOption, instanceType, zone string) *packing.PoolOption {
	for _, o := range opts {
		if o.InstanceType == instanceType && o.Zone == zone {
			return o
		}
	}
	return nil
}

func TestAdjustedPrice(t *testing.T) {
	for _, tc := range []struct {
		change string
		want   float64
	}{
		{"", 0.1}, {"0.5", 0.5}, {"+0.05", 0.15}, {"-0.04", 0.06}, {"-1", 0}, {"+10%", 0.11}, {"-15%", 0.085}, {"-100%", 0},
	} {
		got, err := AdjustedPrice(0.1, tc.change)
		if err != nil || got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("AdjustedPrice(0.1, %q) = %v, %v; want %v", tc.change, got, err, tc.want)
		}
	}
	if _, err := AdjustedPrice(0.1, "+x%"); err == nil {
		t.Error("+x% must not parse")
	}
}

func TestEvaluate(t *testing.T) {
	t.Run("a price override reorders the options", func(t *testing.T) {
		res := Evaluate([]*v1alpha1.NodeOverlay{overlay(spec{name: "cheap-m5", reqs: []v1alpha1.NodeSelectorRequirement{in("karpenter.k8s.aws/instance-family", "m5")}, price: "0.01"})}, pools())
		for _, pool := range []string{"general", "batch"} {
			opts := res.Options[pool]
			if opts == nil || opts[0].InstanceType != "m5.large" || opts[0].Price != 0.01 || opts[0].PriceOverlay != "cheap-m5" {
				t.Fatalf("%s: cheapest is %+v, want m5.large at 0.01 from cheap-m5", pool, opts[0].Option)
			}
			if c := find(opts, "c5.large", "us-east-1a"); c.Price != 0.085 || c.PriceOverlay != "" {
				t.Errorf("%s: c5.large changed: %+v", pool, c.Option)
			}
		}
		if catalogue[0].Price != 0.096 {
			t.Error("the catalogue's option was changed")
		}
		if res.Selected["cheap-m5"] != 4 || len(res.Problems) != 0 {
			t.Errorf("selected %v problems %v, want 4 options (two zones, two pools) and none", res.Selected, res.Problems)
		}
	})

	t.Run("requirements see the pool's labels and the offering's zone", func(t *testing.T) {
		res := Evaluate([]*v1alpha1.NodeOverlay{overlay(spec{name: "scan-1b", adjust: "+50%",
			reqs: []v1alpha1.NodeSelectorRequirement{in("team", "scan"), in(v1.LabelTopologyZone, "us-east-1b")}})}, pools())
		if res.Options["batch"] != nil {
			t.Error("batch has no team=scan label; it must be untouched")
		}
		g := res.Options["general"]
		if o := find(g, "c5.large", "us-east-1b"); o.Price < 0.1275-1e-9 || o.Price > 0.1275+1e-9 {
			t.Errorf("c5.large in 1b = %v, want 0.085 +50%%", o.Price)
		}
		if o := find(g, "c5.large", "us-east-1a"); o.Price != 0.085 {
			t.Errorf("c5.large in 1a = %v, want untouched", o.Price)
		}
	})

	t.Run("the highest weight sets the price; lower weights add capacity", func(t *testing.T) {
		res := Evaluate([]*v1alpha1.NodeOverlay{
			overlay(spec{name: "low", weight: 5, reqs: []v1alpha1.NodeSelectorRequirement{in(v1.LabelInstanceTypeStable, "r5.large")}, adjust: "-10%",
				capacity: v1.ResourceList{"hugepages-2Mi": resource.MustParse("50Mi"), "example.com/gpu-slice": resource.MustParse("2")}}),
			overlay(spec{name: "high", weight: 10, reqs: []v1alpha1.NodeSelectorRequirement{in(v1.LabelInstanceTypeStable, "r5.large")}, adjust: "-20%",
				capacity: v1.ResourceList{"example.com/gpu-slice": resource.MustParse("4")}}),
		}, pools())
		o := find(res.Options["general"], "r5.large", "us-east-1a")
		if o.Price < 0.1008-1e-9 || o.Price > 0.1008+1e-9 || o.PriceOverlay != "high" {
			t.Errorf("r5.large price %v from %q, want 0.126 -20%% from high", o.Price, o.PriceOverlay)
		}
		slices := o.Capacity["example.com/gpu-slice"]
		pages := o.Allocatable["hugepages-2Mi"]
		if slices.Value() != 4 || pages.String() != "50Mi" || strings.Join(o.CapacityOverlays, ",") != "high,low" {
			t.Errorf("r5.large capacity %v allocatable %v from %v, want 4 slices (high) and 50Mi hugepages (low)", o.Capacity, o.Allocatable, o.CapacityOverlays)
		}
		if got := o.AllocatableResource().ScalarResources["example.com/gpu-slice"]; got != 4 {
			t.Errorf("room for pods has %d slices, want 4", got)
		}
		if len(res.Problems) != 0 {
			t.Errorf("problems %v", res.Problems)
		}
	})

	t.Run("capacity goes to every offering of a selected instance type", func(t *testing.T) {
		res := Evaluate([]*v1alpha1.NodeOverlay{overlay(spec{name: "fuse", reqs: []v1alpha1.NodeSelectorRequirement{
			in(v1.LabelInstanceTypeStable, "m5.large"), in(v1.LabelTopologyZone, "us-east-1a")}, capacity: v1.ResourceList{"smarter-devices/fuse": resource.MustParse("1")}})}, pools())
		if o := find(res.Options["batch"], "m5.large", "us-east-1b"); o.Capacity.Name("smarter-devices/fuse", resource.DecimalSI).Value() != 1 {
			t.Errorf("m5.large in 1b capacity %v, want the fuse device too", o.Capacity)
		}
	})

	t.Run("equal weights on the same price conflict; the later name loses", func(t *testing.T) {
		res := Evaluate([]*v1alpha1.NodeOverlay{
			overlay(spec{name: "a", weight: 7, reqs: []v1alpha1.NodeSelectorRequirement{in("karpenter.k8s.aws/instance-family", "c5")}, price: "1"}),
			overlay(spec{name: "b", weight: 7, reqs: []v1alpha1.NodeSelectorRequirement{in(v1.LabelInstanceTypeStable, "c5.large")}, price: "2"}),
		}, pools())
		p, ok := res.Problems["a"]
		if !ok || p.Reason != v1alpha1.ReasonConflict || !strings.Contains(p.Message, `"b"`) {
			t.Fatalf("problems %v, want a in conflict with b (b goes first: reverse name order)", res.Problems)
		}
		if _, ok := res.Problems["b"]; ok {
			t.Error("b must apply")
		}
		if o := find(res.Options["general"], "c5.large", "us-east-1a"); o.Price != 2 {
			t.Errorf("c5.large price %v, want b's 2 (a is not applied)", o.Price)
		}
	})

	t.Run("runtime validation", func(t *testing.T) {
		res := Evaluate([]*v1alpha1.NodeOverlay{
			overlay(spec{name: "cpu", capacity: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}}),
			overlay(spec{name: "restricted", reqs: []v1alpha1.NodeSelectorRequirement{in("kubernetes.io/custom", "x")}, price: "1"}),
			overlay(spec{name: "notin", reqs: []v1alpha1.NodeSelectorRequirement{{Key: "team", Operator: v1.NodeSelectorOpNotIn}}, price: "1"}),
		}, pools())
		for name, field := range map[string]string{"cpu": "spec.capacity[cpu]", "restricted": "spec.requirements[0].key", "notin": "spec.requirements[0].values"} {
			p := res.Problems[name]
			if p.Reason != v1alpha1.ReasonRuntimeValidation || !strings.Contains(p.Message, field) {
				t.Errorf("%s: problem %+v, want RuntimeValidation naming %s", name, p, field)
			}
		}
		if len(res.Options) != 0 {
			t.Errorf("invalid overlays changed options: %v", res.Options)
		}
	})
}
