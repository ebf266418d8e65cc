package disruption_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/podevents"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/test/disruptiontest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestDisruption runs the loop against a real apiserver, with the real
// scheduler binding pods, the real ReplicaSet and PDB controllers, a
// kubelet stand-in, and a termination stand-in that calls the drain the way
// the NodeClaim termination controller is meant to (see terminator below).
func TestDisruption(t *testing.T) {
	c := disruptiontest.Start(t)
	c.RunControllers(t)
	d, err := disruption.New(c.Ctx, disruption.Options{
		Karpenter: c.Karp, Kube: c.Kube, KarpenterInformers: c.KarpInformers, KubeInformers: c.KubeInformers,
		Recorder: c.Recorder, Interval: 300 * time.Millisecond, Pools: testPools{},
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := c.KarpInformers.Karpenter().V1().NodeClaims()
	pods := c.KubeInformers.Core().V1().Pods().Informer()
	loop := controller.New(disruption.Name, d)
	podEvents := controller.New(podevents.Name, d.PodEvents())
	if err := disruption.Register(loop, claims.Informer()); err != nil {
		t.Fatal(err)
	}
	if err := podevents.Register(podEvents, pods); err != nil {
		t.Fatal(err)
	}
	term := controller.New("test.termination", &terminator{c: c, claims: claims.Lister(),
		drainer: &drain.Drainer{Kube: c.Kube, Pods: pods.GetIndexer(), Recorder: c.Recorder, Interval: 200 * time.Millisecond}})
	if err := term.Watch(claims.Informer()); err != nil {
		t.Fatal(err)
	}
	watcher := &deletions{}
	if _, err := claims.Informer().AddEventHandler(watcher); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	env.StartScheduler(t, c.Config, "NoProvisioning", func(context.Context, runtime.Object, fwk.Handle) (fwk.Plugin, error) {
		return noProvisioning{}, nil
	})
	go loop.Run(c.Ctx, 1)
	go podEvents.Run(c.Ctx, 1)
	go term.Run(c.Ctx, 4)
	h := &harness{Cluster: c, deletions: watcher, pods: pods.GetIndexer()}

	t.Run("EmptyNodeGoesAfterConsolidateAfter", h.empty)
	t.Run("NominatedPodsHoldTheNode", h.nominated)
	t.Run("DoNotDisruptBlocks", h.doNotDisrupt)
	t.Run("PDBBlocksVoluntaryDisruption", h.pdb)
	t.Run("BudgetOfOneDrainsOneAtATime", h.budgetOfOne)
	t.Run("ConsolidationMovesPodsOntoOneNode", h.consolidation)
	t.Run("ExpiredNodeGoesDespiteDoNotDisrupt", h.expiration)
	t.Run("ReplacedByACheaperNode", h.replaceCheaper)
	t.Run("ReplacementGoneKeepsTheNode", h.replacementGone)
	t.Run("DriftedNodeReplacedFirst", h.driftReplacedFirst)
	t.Run("BalancedWeighsTheMove", h.balancedWeighsTheMove)
	t.Run("SpotReplacedBySpotFromFifteenTypes", h.spotToSpot)
	t.Run("SpotNotReplacedFromFewTypes", h.spotFromFewTypes)
}

type harness struct {
	*disruptiontest.Cluster
	deletions *deletions
	pods      cache.Indexer
}

// terminator stands in for provision/nodeclaim/termination with the drain
// wired in: drain the node until done, then the Node goes and the
// finalizer is removed (no instance here).
type terminator struct {
	c       *disruptiontest.Cluster
	claims  karplisters.NodeClaimLister
	drainer *drain.Drainer
}

func (r *terminator) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	nc, err := r.claims.Get(key)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil || nc.DeletionTimestamp == nil || len(nc.Finalizers) == 0 {
		return controller.Result{}, err
	}
	node := nc.Status.NodeName
	if node == "" {
		node = nc.Name
	}
	st, err := r.drainer.Drain(ctx, node, nc)
	if err != nil {
		return controller.Result{}, err
	}
	if !st.Done {
		return controller.Result{RequeueAfter: st.RequeueAfter}, nil
	}
	if err := r.c.Kube.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return controller.Result{}, err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil, "resourceVersion": nc.ResourceVersion}})
	_, err = r.c.Karp.KarpenterV1().NodeClaims().Patch(ctx, nc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	return controller.Result{}, err
}

// noProvisioning is the scheduler's PostFilter here: nothing is launched.
type noProvisioning struct{}

func (noProvisioning) Name() string { return "NoProvisioning" }
func (noProvisioning) PostFilter(context.Context, fwk.CycleState, *v1.Pod, fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	return nil, fwk.NewStatus(fwk.Unschedulable)
}

// Filter: the test scheduler enables its plugin at Filter too, as the
// shipped configurations enable the Provisioner; this one rules out nothing.
func (noProvisioning) Filter(context.Context, fwk.CycleState, *v1.Pod, fwk.NodeInfo) *fwk.Status {
	return nil
}

// deletions records, from the NodeClaim watch, how many claims of each
// pool were being deleted at once at most, and when each claim's deletion
// began.
type deletions struct {
	mu       sync.Mutex
	deleting map[string]map[string]bool // pool -> claims being deleted
	max      map[string]int
	began    map[string]time.Time
}

func (d *deletions) OnAdd(obj any, _ bool) { d.OnUpdate(nil, obj) }
func (d *deletions) OnUpdate(_, obj any) {
	nc, ok := obj.(*karpv1.NodeClaim)
	if !ok || nc.DeletionTimestamp == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deleting == nil {
		d.deleting, d.max, d.began = map[string]map[string]bool{}, map[string]int{}, map[string]time.Time{}
	}
	pool := nc.Labels[karpv1.NodePoolLabelKey]
	if d.deleting[pool] == nil {
		d.deleting[pool] = map[string]bool{}
	}
	if !d.deleting[pool][nc.Name] {
		d.began[nc.Name] = time.Now()
	}
	d.deleting[pool][nc.Name] = true
	if n := len(d.deleting[pool]); n > d.max[pool] {
		d.max[pool] = n
	}
}
func (d *deletions) OnDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	nc, ok := obj.(*karpv1.NodeClaim)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.deleting[nc.Labels[karpv1.NodePoolLabelKey]], nc.Name)
}

func (d *deletions) maxAtOnce(pool string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.max[pool]
}

func (d *deletions) beganAt(claim string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.began[claim]
}

func after(s string) karpv1.NillableDuration { return karpv1.MustParseNillableDuration(s) }

func (h *harness) empty(t *testing.T) {
	h.Pool(t, "empty", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmpty, ConsolidateAfter: after("3s")})
	node, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "empty-1", Pool: "empty"})
	bound := time.Now()
	pod := h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "only"}), node.Name)
	h.Eventually(t, 10*time.Second, "lastPodEventTime from the bind", func() (bool, error) {
		got, err := h.Karp.KarpenterV1().NodeClaims().Get(h.Ctx, nc.Name, metav1.GetOptions{})
		return err == nil && !got.Status.LastPodEventTime.Before(&metav1.Time{Time: bound.Truncate(time.Second)}), err
	})
	time.Sleep(4 * time.Second) // past consolidateAfter: a busy node stays
	if gone, _ := h.Gone(nc.Name); gone {
		t.Fatal("a node with a pod was removed under WhenEmpty")
	}
	if err := h.Kube.CoreV1().Pods(pod.Namespace).Delete(h.Ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	emptied := time.Now()
	h.Eventually(t, 20*time.Second, "the empty node's claim gone", func() (bool, error) { return h.Gone(nc.Name) })
	waited := h.deletions.beganAt(nc.Name).Sub(emptied)
	if waited < 3*time.Second-100*time.Millisecond {
		t.Errorf("disrupted %s after the node emptied; consolidateAfter is 3s", waited)
	}
	t.Logf("disrupted %s after the node emptied (consolidateAfter 3s)", waited.Round(10*time.Millisecond))
	if ev := h.WaitEvent(t, "NodeClaim", nc.Name, "Disrupting"); !strings.Contains(ev, "Empty") {
		t.Errorf("Disrupting event %q does not say Empty", ev)
	}
	h.WaitEvent(t, "Node", node.Name, "Disrupting")
	if _, err := h.Kube.CoreV1().Nodes().Get(h.Ctx, node.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node still there: %v", err)
	}
}

func (h *harness) nominated(t *testing.T) {
	h.Pool(t, "nominated", karpv1.Disruption{ConsolidateAfter: after("0s")})
	pod, err := h.Kube.CoreV1().Pods("default").Create(h.Ctx, disruptiontest.Pod(disruptiontest.PodSpec{Name: "on-its-way"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.NominatedNodeName = "nominated-1"
	if _, err := h.Kube.CoreV1().Pods("default").UpdateStatus(h.Ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // into the loop's cache
	_, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "nominated-1", Pool: "nominated"})
	ev := h.WaitEvent(t, "NodeClaim", nc.Name, "DisruptionBlocked")
	if !strings.Contains(ev, "nominated") {
		t.Errorf("DisruptionBlocked = %q, want the nominated pod given as the reason", ev)
	}
	time.Sleep(2 * time.Second)
	if gone, _ := h.Gone(nc.Name); gone {
		t.Fatal("the node was removed while a pod was on its way to it")
	}
	if err := h.Kube.CoreV1().Pods("default").Delete(h.Ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(t, 20*time.Second, "the claim gone once nothing is on its way", func() (bool, error) { return h.Gone(nc.Name) })
}

func (h *harness) doNotDisrupt(t *testing.T) {
	h.Pool(t, "dnd", karpv1.Disruption{ConsolidateAfter: after("0s")})
	stale := map[string]string{karpv1.NodePoolHashAnnotationKey: "stale", karpv1.NodePoolHashVersionAnnotationKey: nodepool.NodePoolHashVersion}
	nodeAnnotated, ncA := h.CreateNode(t, disruptiontest.NodeSpec{Name: "dnd-node", Pool: "dnd",
		Annotations: map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"}})
	// The pod is bound before its node registers, so no run sees the
	// drifted node without it.
	pod := h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "precious", Annotations: map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"}}), "dnd-pod")
	h.waitCachedPods(t, "dnd-pod", 1)
	_, ncB := h.CreateNode(t, disruptiontest.NodeSpec{Name: "dnd-pod", Pool: "dnd", ClaimAnnotations: stale})

	if ev := h.WaitEvent(t, "NodeClaim", ncA.Name, "DisruptionBlocked"); !strings.Contains(ev, "the node has karpenter.sh/do-not-disrupt") {
		t.Errorf("annotated node: DisruptionBlocked = %q", ev)
	}
	if ev := h.WaitEvent(t, "NodeClaim", ncB.Name, "DisruptionBlocked"); !strings.Contains(ev, "pod default/precious has karpenter.sh/do-not-disrupt") ||
		!strings.Contains(ev, "Drifted") {
		t.Errorf("drifted node with a do-not-disrupt pod: DisruptionBlocked = %q", ev)
	}
	h.waitCondition(t, ncB.Name, karpv1.ConditionTypeDrifted, disruption.DriftReasonNodePool)
	time.Sleep(2 * time.Second) // several loops
	for _, name := range []string{ncA.Name, ncB.Name} {
		if gone, _ := h.Gone(name); gone {
			t.Fatalf("%s was disrupted despite do-not-disrupt", name)
		}
	}
	if n := h.CountEvents(t, "NodeClaim", ncA.Name, "DisruptionBlocked"); n != 1 {
		t.Errorf("%d DisruptionBlocked events over many loops, want 1 (only on change)", n)
	}

	patch := []byte(`{"metadata":{"annotations":{"` + karpv1.DoNotDisruptAnnotationKey + `":null}}}`)
	if _, err := h.Kube.CoreV1().Nodes().Patch(h.Ctx, nodeAnnotated.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(t, 20*time.Second, "the node's claim gone once not annotated", func() (bool, error) { return h.Gone(ncA.Name) })
	if err := h.Kube.CoreV1().Pods("default").Delete(h.Ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(t, 20*time.Second, "the drifted claim gone once the pod finished", func() (bool, error) { return h.Gone(ncB.Name) })
}

func (h *harness) pdb(t *testing.T) {
	ctx := h.Ctx
	h.Pool(t, "guarded", karpv1.Disruption{ConsolidateAfter: karpv1.NillableDuration{}})
	stale := map[string]string{karpv1.NodePoolHashAnnotationKey: "stale", karpv1.NodePoolHashVersionAnnotationKey: nodepool.NodePoolHashVersion}
	// Pod and budget first: no run sees the drifted node unguarded.
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "guarded", Labels: map[string]string{"app": "guarded"}}), "guarded-1")
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "guarded"}}},
	}
	if _, err := h.Kube.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(t, 30*time.Second, "the PDB judged", func() (bool, error) {
		got, err := h.Kube.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "guarded", metav1.GetOptions{})
		return err == nil && got.Status.ObservedGeneration == got.Generation && got.Status.ExpectedPods == 1, err
	})
	h.waitCachedPods(t, "guarded-1", 1)
	time.Sleep(200 * time.Millisecond) // the PDB into the loop's cache
	_, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "guarded-1", Pool: "guarded", ClaimAnnotations: stale})
	ev := h.WaitEvent(t, "NodeClaim", nc.Name, "DisruptionBlocked")
	if !strings.Contains(ev, "PodDisruptionBudget default/guarded allows no disruption") {
		t.Errorf("DisruptionBlocked = %q, want the PDB named", ev)
	}
	if gone, _ := h.Gone(nc.Name); gone {
		t.Fatal("disrupted despite the PDB")
	}
	patch := []byte(`{"spec":{"minAvailable":0}}`)
	if _, err := h.Kube.PolicyV1().PodDisruptionBudgets("default").Patch(ctx, "guarded", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	h.Eventually(t, 30*time.Second, "the drifted claim gone once the PDB allows it", func() (bool, error) { return h.Gone(nc.Name) })
	if ev := h.WaitEvent(t, "NodeClaim", nc.Name, "Disrupting"); !strings.Contains(ev, "Drifted") {
		t.Errorf("Disrupting = %q, want Drifted", ev)
	}
	_ = h.Kube.PolicyV1().PodDisruptionBudgets("default").Delete(ctx, "guarded", metav1.DeleteOptions{})
}

func (h *harness) budgetOfOne(t *testing.T) {
	h.Pool(t, "budget", karpv1.Disruption{ConsolidateAfter: karpv1.NillableDuration{}, Budgets: []karpv1.Budget{{Nodes: "1"}}})
	stale := map[string]string{karpv1.NodePoolHashAnnotationKey: "stale", karpv1.NodePoolHashVersionAnnotationKey: nodepool.NodePoolHashVersion}
	var names []string
	for i := 1; i <= 3; i++ {
		node, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: fmt.Sprintf("budget-%d", i), Pool: "budget", ClaimAnnotations: stale})
		// Each drain takes a while: the pod shuts down slowly.
		h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: fmt.Sprintf("slow-%d", i),
			Annotations: map[string]string{disruptiontest.ExitAfterAnnotation: "2s"}}), node.Name)
		names = append(names, nc.Name)
	}
	start := time.Now()
	h.Eventually(t, 60*time.Second, "all three drifted claims gone", func() (bool, error) {
		for _, n := range names {
			if gone, err := h.Gone(n); !gone || err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if got := h.deletions.maxAtOnce("budget"); got != 1 {
		t.Errorf("%d claims of the pool were deleting at once; the budget allows 1", got)
	}
	t.Logf("3 drifted nodes replaced one at a time in %s", time.Since(start).Round(100*time.Millisecond))
	blocked := false
	for _, n := range names {
		for _, e := range h.Events(t, "NodeClaim", n) {
			if strings.HasPrefix(e, "DisruptionBlocked: ") && strings.Contains(e, "disruption budget allows no more") {
				blocked = true
			}
		}
	}
	if !blocked {
		t.Error("no DisruptionBlocked event names the budget")
	}
}

func (h *harness) consolidation(t *testing.T) {
	ctx := h.Ctx
	h.Pool(t, "consol", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: after("3s")})
	labels := map[string]string{"app": "spread"}
	spec := disruptiontest.Pod(disruptiontest.PodSpec{Name: "x", CPU: "500m"}).Spec
	spec.SchedulerName = env.SchedulerName
	spec.NodeSelector = map[string]string{karpv1.NodePoolLabelKey: "consol"}
	spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	// Two per node: hostname spread with skew 1 over two nodes.
	spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: v1.LabelHostname,
		WhenUnsatisfiable: v1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "spread", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}
	if _, err := h.Kube.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The pods wait for the nodes, and bind the moment they register.
	h.Eventually(t, 30*time.Second, "the ReplicaSet's 4 pods", func() (bool, error) {
		list, err := h.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread"})
		return err == nil && len(list.Items) == 4, err
	})
	_, nc1 := h.CreateNode(t, disruptiontest.NodeSpec{Name: "consol-1", Pool: "consol"})
	_, nc2 := h.CreateNode(t, disruptiontest.NodeSpec{Name: "consol-2", Pool: "consol"})
	perNode := func() (map[string]int, int, error) {
		list, err := h.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread"})
		if err != nil {
			return nil, 0, err
		}
		out, pending := map[string]int{}, 0
		for _, p := range list.Items {
			switch {
			case p.DeletionTimestamp != nil:
			case p.Spec.NodeName == "" || p.Status.Phase != v1.PodRunning:
				pending++
			default:
				out[p.Spec.NodeName]++
			}
		}
		return out, pending, nil
	}
	var start map[string]int
	defer func() {
		if t.Failed() {
			list, _ := h.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread"})
			for _, p := range list.Items {
				t.Logf("pod %s node=%q phase=%s nominated=%q conds=%+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.NominatedNodeName, p.Status.Conditions)
			}
			nodes, _ := h.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			for _, n := range nodes.Items {
				t.Logf("node %s labels=%v taints=%v", n.Name, n.Labels, n.Spec.Taints)
			}
		}
	}()
	h.Eventually(t, 30*time.Second, "4 pods running", func() (bool, error) {
		m, pending, err := perNode()
		start = m
		return err == nil && pending == 0 && m["consol-1"]+m["consol-2"] == 4, err
	})
	t.Logf("pods per node before: %v", start)

	var removed, kept string
	h.Eventually(t, 30*time.Second, "one of the two claims gone", func() (bool, error) {
		g1, err1 := h.Gone(nc1.Name)
		g2, err2 := h.Gone(nc2.Name)
		if err1 != nil || err2 != nil {
			return false, fmt.Errorf("%v %v", err1, err2)
		}
		switch {
		case g1 && g2:
			return false, fmt.Errorf("both nodes were removed")
		case g1:
			removed, kept = nc1.Name, nc2.Name
		case g2:
			removed, kept = nc2.Name, nc1.Name
		}
		return g1 || g2, nil
	})
	h.Eventually(t, 30*time.Second, "every pod running on the node kept", func() (bool, error) {
		m, pending, err := perNode()
		return err == nil && pending == 0 && m[kept] == 4, err
	})
	if ev := h.WaitEvent(t, "NodeClaim", removed, "Disrupting"); !strings.Contains(ev, "Underutilized") && !strings.Contains(ev, "Empty") {
		t.Errorf("Disrupting = %q, want Underutilized", ev)
	} else {
		t.Logf("%s: %s", removed, ev)
	}
	// The node kept has nowhere to send its pods.
	if ev := h.WaitEvent(t, "NodeClaim", kept, "Unconsolidatable"); !strings.Contains(ev, "fits on no other node") {
		t.Errorf("Unconsolidatable = %q", ev)
	}
	h.waitCondition(t, kept, karpv1.ConditionTypeConsolidatable, "Consolidatable")
	time.Sleep(2 * time.Second)
	if gone, _ := h.Gone(kept); gone {
		t.Fatal("the last node was removed with pods that fit nowhere else")
	}
	if _, pending, _ := perNode(); pending != 0 {
		t.Errorf("%d pods pending", pending)
	}
	_ = h.Kube.AppsV1().ReplicaSets("default").Delete(ctx, "spread", metav1.DeleteOptions{})
}

func (h *harness) expiration(t *testing.T) {
	h.Pool(t, "expiring", karpv1.Disruption{ConsolidateAfter: karpv1.NillableDuration{}, Budgets: []karpv1.Budget{{Nodes: "0"}}})
	_, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "expiring-1", Pool: "expiring", ExpireAfter: "3s",
		Annotations: map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"}})
	h.Eventually(t, 20*time.Second, "the expired claim gone", func() (bool, error) { return h.Gone(nc.Name) })
	if age := h.deletions.beganAt(nc.Name).Sub(nc.CreationTimestamp.Time); age < 3*time.Second {
		t.Errorf("deleted at age %s; expireAfter is 3s", age)
	}
	if ev := h.WaitEvent(t, "NodeClaim", nc.Name, "Disrupting"); !strings.Contains(ev, disruption.ReasonExpired) {
		t.Errorf("Disrupting = %q, want Expired", ev)
	}
}

// waitCachedPods waits until the loop's pod cache has n pods bound to node.
func (h *harness) waitCachedPods(t *testing.T, node string, n int) {
	t.Helper()
	h.Eventually(t, 10*time.Second, "pods in the cache", func() (bool, error) {
		pods, err := drain.PodsOnNode(h.pods, node)
		return len(pods) == n, err
	})
}

func (h *harness) waitCondition(t *testing.T, claim, conditionType, reason string) {
	t.Helper()
	h.Eventually(t, 20*time.Second, claim+" condition "+conditionType, func() (bool, error) {
		nc, err := h.Karp.KarpenterV1().NodeClaims().Get(h.Ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := nc.GetCondition(conditionType)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason, nil
	})
}
