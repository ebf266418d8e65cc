package nodepool

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

func daemonSet(name string, cpu string, mutate func(*v1.PodSpec)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system", UID: types.UID("uid-" + name)}}
	ds.Spec.Template.Spec.Containers = []v1.Container{{Name: "agent", Resources: v1.ResourceRequirements{
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("100Mi")}}}}
	if mutate != nil {
		mutate(&ds.Spec.Template.Spec)
	}
	return ds
}

func sizedOption(name, zone, arch string, gpus int) *packing.Option {
	o := opt(name, zone, arch)
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("16Gi"), v1.ResourcePods: resource.MustParse("110")}
	if gpus > 0 {
		rl["nvidia.com/gpu"] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
		o.Labels["karpenter.k8s.aws/instance-gpu-count"] = "1"
	}
	o.Capacity, o.Allocatable = rl, rl
	return o
}

// TestPlaceDaemons judges DaemonSets against the pool the way the
// DaemonSet controller judges a node: taints against the template's
// tolerations plus the default daemon ones, node selector and required
// affinity against each option's node.
func TestPlaceDaemons(t *testing.T) {
	requireKey := func(key string, op v1.NodeSelectorOperator, values ...string) func(*v1.PodSpec) {
		return func(s *v1.PodSpec) {
			s.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
				NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: op, Values: values}}}}}}}
		}
	}
	for _, tc := range []struct {
		name   string
		taints []v1.Taint
		ds     *appsv1.DaemonSet
		// everywhere: in Pool.Daemons; held: options (type/zone) holding it back.
		everywhere bool
		held       []string
	}{
		{name: "no constraints: every option", ds: daemonSet("plain", "100m", nil), everywhere: true},
		{name: "untolerated pool taint: none", taints: []v1.Taint{{Key: "gpu", Effect: v1.TaintEffectNoSchedule}}, ds: daemonSet("plain", "100m", nil)},
		{name: "tolerated pool taint: every option", taints: []v1.Taint{{Key: "gpu", Effect: v1.TaintEffectNoSchedule}},
			ds: daemonSet("tolerant", "100m", func(s *v1.PodSpec) {
				s.Tolerations = []v1.Toleration{{Key: "gpu", Operator: v1.TolerationOpExists}}
			}), everywhere: true},
		{name: "PreferNoSchedule does not keep a daemon off", taints: []v1.Taint{{Key: "soft", Effect: v1.TaintEffectPreferNoSchedule}},
			ds: daemonSet("plain", "100m", nil), everywhere: true},
		{name: "a default daemon toleration covers node.kubernetes.io/unschedulable",
			taints: []v1.Taint{{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}}, ds: daemonSet("plain", "100m", nil), everywhere: true},
		{name: "node selector on a pool label: every option", ds: daemonSet("team", "100m", func(s *v1.PodSpec) {
			s.NodeSelector = map[string]string{"team": "scan"}
		}), everywhere: true},
		{name: "node selector on a label the pool lacks: none", ds: daemonSet("other", "100m", func(s *v1.PodSpec) {
			s.NodeSelector = map[string]string{"team": "web"}
		})},
		{name: "affinity to GPU types: held by the GPU options only",
			ds:   daemonSet("gpu-driver", "500m", requireKey("karpenter.k8s.aws/instance-gpu-count", v1.NodeSelectorOpExists)),
			held: []string{"g4dn.xlarge/us-east-1a"}},
		{name: "affinity to one zone: held by that zone's options",
			ds:   daemonSet("zonal", "250m", requireKey(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "us-east-1b")),
			held: []string{"m5.xlarge/us-east-1b"}},
		{name: "pinned to a node by name: none", ds: daemonSet("pinned", "100m", func(s *v1.PodSpec) { s.NodeName = "some-node" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := &packing.Pool{Taints: tc.taints, DaemonRequests: packing.Sum()}
			pool.Options = packing.NewPoolOptions([]*packing.Option{
				sizedOption("m5.xlarge", "us-east-1a", "amd64", 0),
				sizedOption("m5.xlarge", "us-east-1b", "amd64", 0),
				sizedOption("g4dn.xlarge", "us-east-1a", "amd64", 1),
			}, map[string]string{"team": "scan"}, nil)
			placeDaemons([]*appsv1.DaemonSet{tc.ds}, pool)

			if got := len(pool.Daemons) == 1; got != tc.everywhere {
				t.Fatalf("in Pool.Daemons: %v, want %v", got, tc.everywhere)
			}
			want := resource.MustParse(tc.ds.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String())
			if tc.everywhere {
				if pool.DaemonRequests.MilliCPU != want.MilliValue() || pool.DaemonRequests.AllowedPodNumber != 1 {
					t.Errorf("pool daemon requests %+v, want %dm cpu and one pod", pool.DaemonRequests, want.MilliValue())
				}
				d := pool.Daemons[0]
				if len(d.OwnerReferences) != 1 || d.OwnerReferences[0].Kind != "DaemonSet" {
					t.Errorf("daemon pod owners %v, want its DaemonSet", d.OwnerReferences)
				}
			} else if pool.DaemonRequests.MilliCPU != 0 {
				t.Errorf("pool daemon requests %+v, want none", pool.DaemonRequests)
			}
			held := map[string]bool{}
			for _, name := range tc.held {
				held[name] = true
			}
			for _, o := range pool.Options {
				key := o.InstanceType + "/" + o.Zone
				got := o.AllocatableResource()
				if held[key] {
					if r := o.DaemonRequests(); r == nil || r.MilliCPU != want.MilliValue() {
						t.Errorf("%s holds %+v, want %dm", key, r, want.MilliValue())
					}
					if got.MilliCPU != 4000-want.MilliValue() || got.AllowedPodNumber != 109 {
						t.Errorf("%s room for pods %dm cpu %d pods, want %dm and 109", key, got.MilliCPU, got.AllowedPodNumber, 4000-want.MilliValue())
					}
					continue
				}
				if o.DaemonRequests() != nil || got.MilliCPU != 4000 || got.AllowedPodNumber != 110 {
					t.Errorf("%s holds %+v (room %dm), want nothing held", key, o.DaemonRequests(), got.MilliCPU)
				}
			}
		})
	}
}

// TestDaemonHoldSurvivesOverlay: an option replaced by its overlaid copy
// keeps what its partial daemons hold back.
func TestDaemonHoldSurvivesOverlay(t *testing.T) {
	base := sizedOption("g4dn.xlarge", "us-east-1a", "amd64", 1)
	po := packing.NewPoolOptions([]*packing.Option{base}, nil, nil)[0]
	po.HoldForDaemons(packing.PodRequests(&v1.Pod{Spec: daemonSet("d", "1", nil).Spec.Template.Spec}))
	overlaid := *base
	overlaid.Price = 0.01
	overlaid.Allocatable = base.Allocatable.DeepCopy()
	overlaid.Allocatable["example.com/slice"] = resource.MustParse("4")
	got := po.WithOption(&overlaid).AllocatableResource()
	if got.MilliCPU != 3000 || got.ScalarResources["example.com/slice"] != 4 || got.ScalarResources["nvidia.com/gpu"] != 1 {
		t.Errorf("overlaid room %+v, want 3000m cpu, 4 slices, 1 gpu", got)
	}
	if po.AllocatableResource().ScalarResources["example.com/slice"] != 0 {
		t.Error("WithOption changed the original option")
	}
}
