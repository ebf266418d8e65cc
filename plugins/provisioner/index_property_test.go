package provisioner

import (
	"fmt"
	"math/rand"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// TestIndexKeepsOutNoClaimTheFiltersAccept is the index's contract: over
// random pods and the claims random pods built, every claim on which the
// scheduler's Filter plugins alone accept a pod is among the claims the
// index yields for it. (The index may yield more; the exact checks and the
// plugins turn those down.)
//
// The pods carry what the index prunes on: requests of every size, taints
// and tolerations, node selectors, host ports, hostname anti-affinity and
// hostname topology spread. Rules on zones are provisioning's intent beyond
// the plugins (the plugins see no zone that has no node yet) and are tested
// on their own. The control-plane node holds a pod with a hostname
// anti-affinity term, so the plugins always weigh anti-affinity, as they do
// in any cluster that runs such a pod. One rule of the index goes beyond
// what the plugins see on a claim, and is left out of the comparison: see
// selectedByAntiAffinityOn.
func TestIndexKeepsOutNoClaimTheFiltersAccept(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { checkIndexAgainstFilters(t, seed) })
	}
}

func checkIndexAgainstFilters(t *testing.T, seed int64) {
	r := rand.New(rand.NewSource(seed))
	gen := &randomPods{r: r}
	seeds := make([]*v1.Pod, 300)
	for i := range seeds {
		seeds[i] = gen.pod()
	}
	plain := karpenterMixPoolOf("plain", 24, nil)
	tainted := karpenterMixPoolOf("tainted", 24, []v1.Taint{{Key: "dedicated", Value: "x", Effect: v1.TaintEffectNoSchedule}})
	cp := controlPlane()
	guard := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "guard", Namespace: metav1.NamespaceDefault, UID: "guard", Labels: map[string]string{"guard": "x"}},
		Spec: v1.PodSpec{NodeName: cp.Name, Affinity: &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"guard": "x"}}, TopologyKey: v1.LabelHostname,
		}}}}},
	}
	run := newCluster(t, []*packing.Pool{plain, tainted}, seeds, []*v1.Node{cp}, []*v1.Pod{guard})
	defer run.close()
	run.decideAll()

	p := run.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.claims) < 10 {
		t.Fatalf("only %d claims from %d pods: too few to test the index on", len(p.claims), len(seeds))
	}
	accepted, yielded := 0, 0
	for i := 0; i < 300; i++ {
		probe := gen.pod()
		state := framework.NewCycleState()
		if _, s, _ := run.fw.RunPreFilterPlugins(run.ctx, state, probe); !s.IsSuccess() && !s.IsRejected() {
			t.Fatalf("prefilter: %v", s)
		}
		d, err := p.newDecision(run.ctx, state, probe, []*packing.Pool{plain, tainted})
		if err != nil {
			t.Fatal(err)
		}
		d.prepare()
		found := map[*claim]bool{}
		if d.query.Pools != 0 {
			p.index.Search(d.query, func(c *claim) bool {
				found[c] = true
				return false
			})
		}
		yielded += len(found)
		for _, c := range p.claims {
			if !filtersAlone(d, c).IsSuccess() || selectedByAntiAffinityOn(c, probe) {
				continue
			}
			accepted++
			if !found[c] {
				e := p.entry(c)
				t.Logf("query %+v; entry %+v; exclude %d include %d; rules %d", d.query, e, len(d.exclude), len(d.include), len(d.rules))

				t.Fatalf("probe %d (%s) is accepted by the Filter plugins on claim %s (%d pods, pool %s), but the index kept the claim out",
					i, describeProbe(probe), c.name, len(c.pods), c.pool.Name)
			}
		}
	}
	t.Logf("%d claims; the plugins accepted %d probe-claim pairs, the index yielded %d", len(p.claims), accepted, yielded)
	if accepted == 0 {
		t.Fatal("the plugins accepted no probe anywhere: the test proves nothing")
	}
}

// selectedByAntiAffinityOn reports whether a pod on c has a required
// hostname anti-affinity term that selects pod. The plugins see such a term
// only once its pod is bound (InterPodAffinity skips a pod without terms of
// its own unless a bound pod's term selects it), so on a claim they let the
// pod in; the index keeps it out, because once the claim's pods bind the
// scheduler would turn the pod away from the node it was nominated to.
func selectedByAntiAffinityOn(c *claim, pod *v1.Pod) bool {
	for _, m := range c.pods {
		for _, t := range m.info.RequiredAntiAffinityTerms {
			if t.TopologyKey == v1.LabelHostname && t.Matches(pod, nil) {
				return true
			}
		}
	}
	return false
}

// filtersAlone judges the pod on the claim by the Filter plugins only, on
// the node the claim would be for it: narrowed to the options that hold
// its pods and the probe when it is planned and some do.
func filtersAlone(d *decision, c *claim) interface{ IsSuccess() bool } {
	opts := c.options
	if c.planned {
		if fit := packing.WithRoomFor(packing.AdmittingPod(c.options, d.pod), packing.Sum(c.used, d.need)); len(fit) > 0 {
			opts = fit
		}
	}
	return d.filterOn(c, opts)
}

// karpenterMixPoolOf is a smaller pool of the mix's instance types.
func karpenterMixPoolOf(name string, types int, taints []v1.Taint) *packing.Pool {
	full := karpenterMixPool()
	var options []*packing.Option
	for _, o := range full.Options {
		var i int
		if _, err := fmt.Sscanf(o.InstanceType, "fake-it-%d", &i); err == nil && i < types {
			options = append(options, o.Option)
		}
	}
	labels := map[string]string{"karpenter.sh/nodepool": name}
	return &packing.Pool{Name: name, Labels: labels, Taints: taints, Options: packing.NewPoolOptions(options, labels, nil), DaemonRequests: packing.Sum()}
}

type randomPods struct {
	r *rand.Rand
	n int
}

func (g *randomPods) pick(vals ...string) string { return vals[g.r.Intn(len(vals))] }

func (g *randomPods) pod() *v1.Pod {
	g.n++
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rand-%d", g.n), Namespace: metav1.NamespaceDefault, UID: types.UID(fmt.Sprintf("rand-%d", g.n)),
			Labels: map[string]string{"app": g.pick("a", "b", "c"), "tier": g.pick("x", "y")}},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "pause", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
			v1.ResourceCPU:    resource.MustParse(g.pick("100m", "250m", "500m", "1", "2", "4")),
			v1.ResourceMemory: resource.MustParse(g.pick("128Mi", "512Mi", "1Gi", "2Gi", "8Gi")),
		}}}}},
	}
	spread := g.r.Intn(6) == 0
	if g.r.Intn(5) == 0 {
		pod.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": g.pick("a", "b", "c")}}, TopologyKey: v1.LabelHostname,
		}}}}
	}
	if spread {
		pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: int32(1 + g.r.Intn(2)), TopologyKey: v1.LabelHostname, WhenUnsatisfiable: v1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": g.pick("x", "y")}},
		}}
	} else if g.r.Intn(6) == 0 {
		// A node selector keeps the control plane out of the spread's domains; only without a spread.
		pod.Spec.NodeSelector = map[string]string{v1.LabelTopologyZone: g.pick("test-zone-1", "test-zone-2", "test-zone-3")}
	}
	if g.r.Intn(6) == 0 {
		pod.Spec.Tolerations = []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "x", Effect: v1.TaintEffectNoSchedule}}
	}
	if g.r.Intn(10) == 0 {
		pod.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: v1.ProtocolTCP}}
	}
	return pod
}

func describeProbe(pod *v1.Pod) string {
	return fmt.Sprintf("labels %v, requests %v, affinity %v, spread %v, selector %v, tolerations %d",
		pod.Labels, pod.Spec.Containers[0].Resources.Requests, pod.Spec.Affinity != nil, len(pod.Spec.TopologySpreadConstraints),
		pod.Spec.NodeSelector, len(pod.Spec.Tolerations))
}
