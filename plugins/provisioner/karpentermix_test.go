package provisioner

import (
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// The Karpenter mix is the workload of Karpenter's public scheduling
// benchmark (BenchmarkScheduling1000/5000/20000), rebuilt from its
// description so the two can be run side by side: 400 instance types and
// five kinds of pods in equal shares.

func BenchmarkKarpenterMix1000(b *testing.B)  { benchmarkKarpenterMix(b, 1000) }
func BenchmarkKarpenterMix5000(b *testing.B)  { benchmarkKarpenterMix(b, 5000) }
func BenchmarkKarpenterMix20000(b *testing.B) { benchmarkKarpenterMix(b, 20000) }

func benchmarkKarpenterMix(b *testing.B, n int) {
	pool := karpenterMixPool()
	pods := karpenterMixPods(n)
	benchmarkDecisions(b, pool, pods, func(run *decisionRun) {
		b.Logf("%d pods: zone-spread pods per zone %s; zone-affinity pods per zone %s", n,
			run.perZone(v1.LabelTopologyZone, false), run.perZone(v1.LabelTopologyZone, true))
	})
}

// perZone counts, per zone of their claims, the pods with a topology
// spread on key (or, with affinity, a pod affinity on key).
func (r *decisionRun) perZone(key string, affinity bool) string {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	counts := map[string]int{}
	for _, pod := range r.pods {
		has := false
		if affinity {
			has = pod.Spec.Affinity != nil && pod.Spec.Affinity.PodAffinity != nil &&
				pod.Spec.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey == key
		} else {
			has = len(pod.Spec.TopologySpreadConstraints) > 0 && pod.Spec.TopologySpreadConstraints[0].TopologyKey == key
		}
		c := r.p.podOn[pod.UID]
		if !has || c == nil {
			continue
		}
		zone, ok := pinnedValue(c.options, key)
		if !ok {
			zone = "unpinned"
		}
		counts[zone]++
	}
	parts := make([]string, 0, len(counts))
	for _, z := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", z, counts[z]))
	}
	return strings.Join(parts, " ")
}

// Zones and capacity types of the mix's offerings: spot in two zones,
// on-demand in three.
var karpenterMixOfferings = []struct{ zone, capacityType string }{
	{"test-zone-1", karpv1.CapacityTypeSpot}, {"test-zone-2", karpv1.CapacityTypeSpot},
	{"test-zone-1", karpv1.CapacityTypeOnDemand}, {"test-zone-2", karpv1.CapacityTypeOnDemand}, {"test-zone-3", karpv1.CapacityTypeOnDemand},
}

// karpenterMixPool is one NodePool over 400 instance types: type i has
// i+1 vCPU, 2(i+1) GiB and room for 10(i+1) pods, less the kube-reserved
// 100m CPU and 10Mi memory, priced 0.1/vCPU + 0.1/GB as the fake cloud
// provider prices them.
func karpenterMixPool() *packing.Pool {
	var options []*packing.Option
	for i := 0; i < 400; i++ {
		cpu := int64(i + 1)
		mem := resource.MustParse(fmt.Sprintf("%dGi", 2*(i+1)))
		capacity := v1.ResourceList{
			v1.ResourceCPU:    *resource.NewQuantity(cpu, resource.DecimalSI),
			v1.ResourceMemory: mem,
			v1.ResourcePods:   *resource.NewQuantity(10*cpu, resource.DecimalSI),
		}
		allocatable := capacity.DeepCopy()
		allocCPU := allocatable[v1.ResourceCPU]
		allocCPU.Sub(resource.MustParse("100m"))
		allocatable[v1.ResourceCPU] = allocCPU
		allocMem := allocatable[v1.ResourceMemory]
		allocMem.Sub(resource.MustParse("10Mi"))
		allocatable[v1.ResourceMemory] = allocMem
		price := 0.1*float64(cpu) + 0.1*mem.AsApproximateFloat64()/1e9
		name := fmt.Sprintf("fake-it-%d", i)
		for _, off := range karpenterMixOfferings {
			options = append(options, &packing.Option{
				InstanceType: name, Zone: off.zone, CapacityType: off.capacityType, Price: price,
				Labels: map[string]string{
					v1.LabelInstanceTypeStable: name, v1.LabelArchStable: "amd64", v1.LabelOSStable: "linux",
					v1.LabelTopologyZone: off.zone, karpv1.CapacityTypeLabelKey: off.capacityType,
				},
				Capacity: capacity, Allocatable: allocatable,
			})
		}
	}
	labels := map[string]string{karpv1.NodePoolLabelKey: "default"}
	return &packing.Pool{Name: "default", Labels: labels, Options: packing.NewPoolOptions(options, labels, nil), DaemonRequests: packing.Sum()}
}

// karpenterMixPods makes n pods, one fifth each of: generic; zone
// topology spread; hostname topology spread; zone pod self-affinity;
// hostname anti-affinity (all anti-affine to each other). The rest of n
// is generic. Labels and requests are drawn from math/rand seeded with
// 42, in the order the public benchmark draws them.
func karpenterMixPods(n int) []*v1.Pod {
	r := rand.New(rand.NewSource(42))
	g := &mixGen{r: r}
	fifth := n / 5
	var pods []*v1.Pod
	pods = append(pods, g.generic(fifth)...)
	pods = append(pods, g.spread(fifth, v1.LabelTopologyZone)...)
	pods = append(pods, g.spread(fifth, v1.LabelHostname)...)
	pods = append(pods, g.affinity(fifth, v1.LabelTopologyZone)...)
	pods = append(pods, g.antiAffinity(fifth, v1.LabelHostname)...)
	pods = append(pods, g.generic(n-len(pods))...)
	return pods
}

type mixGen struct {
	r *rand.Rand
	i int
}

func (g *mixGen) value() string { return []string{"a", "b", "c", "d", "e", "f", "g"}[g.r.Intn(7)] }

func (g *mixGen) requests() v1.ResourceRequirements {
	cpu := []int{100, 250, 500, 1000, 1500}[g.r.Intn(5)]
	mem := []int{100, 256, 512, 1024, 2048, 4096}[g.r.Intn(6)]
	return v1.ResourceRequirements{Requests: v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse(fmt.Sprintf("%dm", cpu)),
		v1.ResourceMemory: resource.MustParse(fmt.Sprintf("%dMi", mem)),
	}}
}

func (g *mixGen) pod(labels map[string]string) *v1.Pod {
	g.i++
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("mix-%d", g.i), Namespace: metav1.NamespaceDefault, UID: types.UID(fmt.Sprintf("mix-uid-%d", g.i)), Labels: labels,
	}}
}

func (g *mixGen) withRequests(pod *v1.Pod) *v1.Pod {
	pod.Spec.Containers = []v1.Container{{Name: "c", Image: "pause", Resources: g.requests()}}
	return pod
}

func (g *mixGen) generic(n int) []*v1.Pod {
	out := make([]*v1.Pod, n)
	for i := range out {
		out[i] = g.withRequests(g.pod(map[string]string{"my-label": g.value()}))
	}
	return out
}

func (g *mixGen) spread(n int, key string) []*v1.Pod {
	out := make([]*v1.Pod, n)
	for i := range out {
		pod := g.pod(map[string]string{"my-label": g.value()})
		pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: v1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"my-label": g.value()}},
		}}
		out[i] = g.withRequests(pod)
	}
	return out
}

func (g *mixGen) affinity(n int, key string) []*v1.Pod {
	out := make([]*v1.Pod, n)
	for i := range out {
		labels := map[string]string{"my-affininity": g.value()}
		pod := g.pod(labels)
		pod.Spec.Affinity = &v1.Affinity{PodAffinity: &v1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: key,
		}}}}
		out[i] = g.withRequests(pod)
	}
	return out
}

func (g *mixGen) antiAffinity(n int, key string) []*v1.Pod {
	out := make([]*v1.Pod, n)
	labels := map[string]string{"app": "nginx"}
	for i := range out {
		pod := g.pod(labels)
		pod.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: key,
		}}}}
		out[i] = g.withRequests(pod)
	}
	return out
}
