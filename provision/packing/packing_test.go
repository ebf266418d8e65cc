package packing

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

func option(name, zone string, price float64, cpu, mem string) *Option {
	rl := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(cpu),
		v1.ResourceMemory: resource.MustParse(mem),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	return &Option{
		InstanceType: name, Zone: zone, CapacityType: "on-demand", Price: price,
		Labels: map[string]string{
			v1.LabelInstanceTypeStable: name,
			v1.LabelTopologyZone:       zone,
			v1.LabelArchStable:         "amd64",
		},
		Capacity: rl, Allocatable: rl,
	}
}

func names(opts []*PoolOption) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.InstanceType + "/" + o.Zone
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var catalogue = []*Option{
	option("m5.xlarge", "us-east-1a", 0.192, "4", "16Gi"),
	option("t3.large", "us-east-1a", 0.0832, "2", "8Gi"),
	option("t3.large", "us-east-1b", 0.0832, "2", "8Gi"),
	option("m5.large", "us-east-1a", 0.096, "2", "8Gi"),
}

func TestNewPoolOptions(t *testing.T) {
	for _, tc := range []struct {
		name         string
		requirements []v1.NodeSelectorRequirement
		want         []string
	}{
		{"no requirements: all, cheapest first", nil, []string{"t3.large/us-east-1a", "t3.large/us-east-1b", "m5.large/us-east-1a", "m5.xlarge/us-east-1a"}},
		{"instance type In", []v1.NodeSelectorRequirement{{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"m5.large", "m5.xlarge"}}},
			[]string{"m5.large/us-east-1a", "m5.xlarge/us-east-1a"}},
		{"zone NotIn", []v1.NodeSelectorRequirement{{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpNotIn, Values: []string{"us-east-1a"}}},
			[]string{"t3.large/us-east-1b"}},
		{"pool label requirement is met by the pool's own label", []v1.NodeSelectorRequirement{{Key: "team", Operator: v1.NodeSelectorOpIn, Values: []string{"scan"}}},
			[]string{"t3.large/us-east-1a", "t3.large/us-east-1b", "m5.large/us-east-1a", "m5.xlarge/us-east-1a"}},
		{"arch arm64 matches nothing", []v1.NodeSelectorRequirement{{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"arm64"}}}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sel *nodeaffinity.NodeSelector
			if tc.requirements != nil {
				var err error
				sel, err = nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: tc.requirements}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			got := names(NewPoolOptions(catalogue, map[string]string{"team": "scan"}, sel))
			if !equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func pod(cpu, mem string, selector map[string]string) *v1.Pod {
	return &v1.Pod{Spec: v1.PodSpec{NodeSelector: selector, Containers: []v1.Container{{
		Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}},
	}}}}
}

func TestPodFiltering(t *testing.T) {
	opts := NewPoolOptions(catalogue, nil, nil)
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want []string
	}{
		{"small pod fits all", pod("500m", "1Gi", nil), []string{"t3.large/us-east-1a", "t3.large/us-east-1b", "m5.large/us-east-1a", "m5.xlarge/us-east-1a"}},
		{"3 cpu fits only xlarge", pod("3", "1Gi", nil), []string{"m5.xlarge/us-east-1a"}},
		{"memory too big for all", pod("1", "32Gi", nil), []string{}},
		{"node selector on zone", pod("1", "1Gi", map[string]string{v1.LabelTopologyZone: "us-east-1b"}), []string{"t3.large/us-east-1b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := names(WithRoomFor(AdmittingPod(opts, tc.pod), PodRequests(tc.pod)))
			if !equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAllocatableBounds(t *testing.T) {
	opts := NewPoolOptions(catalogue, nil, nil)
	min, max := MinAllocatable(opts), MaxAllocatable(opts)
	if min.MilliCPU != 2000 || max.MilliCPU != 4000 {
		t.Errorf("cpu bounds = %d..%d, want 2000..4000", min.MilliCPU, max.MilliCPU)
	}
	if min.Memory != 8<<30 || max.Memory != 16<<30 {
		t.Errorf("memory bounds = %d..%d", min.Memory, max.Memory)
	}
	need := Sum(PodRequests(pod("1500m", "1Gi", nil)), PodRequests(pod("1500m", "1Gi", nil)))
	if need.AllowedPodNumber != 2 || need.MilliCPU != 3000 {
		t.Fatalf("sum = %+v", need)
	}
	if Fits(need, min) || !Fits(need, max) {
		t.Errorf("3 cpu should fit the max (4) and not the min (2)")
	}
	list := ResourceList(min)
	if q := list[v1.ResourceCPU]; q.MilliValue() != 2000 {
		t.Errorf("ResourceList cpu = %s", q.String())
	}
}

func TestLimitsAndPinning(t *testing.T) {
	opts := NewPoolOptions(catalogue, nil, nil)
	got := names(WithinLimits(opts, v1.ResourceList{v1.ResourceCPU: resource.MustParse("3")}))
	if !equal(got, []string{"t3.large/us-east-1a", "t3.large/us-east-1b", "m5.large/us-east-1a"}) {
		t.Errorf("within 3 cpu: %v", got)
	}
	if got := WithinLimits(opts, nil); len(got) != len(opts) {
		t.Errorf("nil limits should keep all")
	}
	got = names(PinnedTo(opts, v1.LabelTopologyZone, "us-east-1b"))
	if !equal(got, []string{"t3.large/us-east-1b"}) {
		t.Errorf("pinned: %v", got)
	}
	capMin := MinCapacity(opts)
	if q := capMin[v1.ResourceCPU]; q.Value() != 2 {
		t.Errorf("min capacity cpu = %s", q.String())
	}
	if q := capMin[ResourceNodes]; q.Value() != 1 {
		t.Errorf("min capacity nodes = %s, want one node", q.String())
	}
	// A nodes limit: every option is one node.
	if got := WithinLimits(opts, v1.ResourceList{ResourceNodes: resource.MustParse("0")}); len(got) != 0 {
		t.Errorf("within 0 nodes: %v", names(got))
	}
	if got := WithinLimits(opts, v1.ResourceList{ResourceNodes: resource.MustParse("1"), v1.ResourceCPU: resource.MustParse("100")}); len(got) != len(opts) {
		t.Errorf("within 1 node: %v", names(got))
	}
}

// TestHolding: options narrow to those that admit every pod and hold the
// base (daemons, pods already on the claim) plus all of them.
func TestHolding(t *testing.T) {
	opts := NewPoolOptions(catalogue, nil, nil)
	daemons := PodRequests(pod("500m", "512Mi", nil))
	for _, tc := range []struct {
		name    string
		pods    []*v1.Pod
		want    []string
		wantCPU int64
	}{
		{"the daemons alone", nil, []string{"t3.large/us-east-1a", "t3.large/us-east-1b", "m5.large/us-east-1a", "m5.xlarge/us-east-1a"}, 500},
		{"two pods with the daemons need more than a large", []*v1.Pod{pod("1", "1Gi", nil), pod("1", "1Gi", nil)}, []string{"m5.xlarge/us-east-1a"}, 2500},
		{"one pod pins a zone for all", []*v1.Pod{pod("500m", "1Gi", nil), pod("500m", "1Gi", map[string]string{v1.LabelTopologyZone: "us-east-1b"})}, []string{"t3.large/us-east-1b"}, 1500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, need := Holding(opts, daemons, tc.pods...)
			if !equal(names(got), tc.want) {
				t.Errorf("got %v, want %v", names(got), tc.want)
			}
			if need.MilliCPU != tc.wantCPU {
				t.Errorf("need %dm cpu, want %dm", need.MilliCPU, tc.wantCPU)
			}
		})
	}
}
