package disruption_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	"github.com/fleet-scheduler/fleet-scheduler/test/disruptiontest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// testPools are the launch options of the pools replacement tests use, as
// nodepool.Source would build them from the catalogue; other pools have
// none, so their nodes are never replaced.
type testPools struct{}

var replacePools = []string{"replace", "cancel", "redrift"}

func (testPools) Pools() []*packing.Pool {
	opt := func(it, zone string, price float64, cpu, mem string) *packing.Option {
		rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem), v1.ResourcePods: resource.MustParse("110")}
		return &packing.Option{InstanceType: it, Zone: zone, CapacityType: karpv1.CapacityTypeOnDemand, Price: price,
			Labels: map[string]string{v1.LabelInstanceTypeStable: it, v1.LabelTopologyZone: zone, karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand,
				v1.LabelArchStable: "amd64", v1.LabelOSStable: "linux"},
			Capacity: rl, Allocatable: rl}
	}
	options := []*packing.Option{
		opt("m5.2xlarge", "us-east-1a", 0.384, "8", "32Gi"),
		opt("m5.2xlarge", "us-east-1b", 0.384, "8", "32Gi"),
		opt("t3.medium", "us-east-1a", 0.0416, "2", "4Gi"),
		opt("t3.medium", "us-east-1b", 0.0416, "2", "4Gi"),
		opt("t3.small", "us-east-1b", 0.0208, "2", "2Gi"), // cheapest, but in the other zone
	}
	var out []*packing.Pool
	for _, name := range replacePools {
		labels := map[string]string{karpv1.NodePoolLabelKey: name}
		out = append(out, &packing.Pool{Name: name, Labels: labels, Options: packing.NewPoolOptions(options, labels, nil),
			DaemonRequests: &framework.Resource{}})
	}
	// Round prices, so that the Balanced scores are exact: a t3.small saves
	// 75% of a t3.medium.
	labels := map[string]string{karpv1.NodePoolLabelKey: "balanced"}
	out = append(out, &packing.Pool{Name: "balanced", Labels: labels, DaemonRequests: &framework.Resource{}, Options: packing.NewPoolOptions([]*packing.Option{
		opt("t3.medium", "us-east-1b", 0.04, "2", "4Gi"),
		opt("t3.small", "us-east-1b", 0.01, "2", "2Gi"),
	}, labels, nil)})
	return append(out, spotPools()...)
}

// bigNodeLabels are what a launched m5.2xlarge in us-east-1a carries.
var bigNodeLabels = map[string]string{v1.LabelInstanceTypeStable: "m5.2xlarge", v1.LabelTopologyZone: "us-east-1a",
	karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand}

// onePod runs a one-pod ReplicaSet (500m) on the pool's nodes and waits
// until it runs on node.
func (h *harness) onePod(t *testing.T, name, pool, node string) {
	t.Helper()
	labels := map[string]string{"app": name}
	spec := disruptiontest.Pod(disruptiontest.PodSpec{Name: "x", CPU: "500m"}).Spec
	spec.SchedulerName = env.SchedulerName
	spec.NodeSelector = map[string]string{karpv1.NodePoolLabelKey: pool}
	spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}
	if _, err := h.Kube.AppsV1().ReplicaSets("default").Create(h.Ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Kube.AppsV1().ReplicaSets("default").Delete(h.Ctx, name, metav1.DeleteOptions{}) })
	h.waitRunningOn(t, name, node)
}

// waitRunningOn waits until the ReplicaSet's one live pod runs on node.
func (h *harness) waitRunningOn(t *testing.T, app, node string) {
	t.Helper()
	h.Eventually(t, 30*time.Second, app+" running on "+node, func() (bool, error) {
		list, err := h.Kube.CoreV1().Pods("default").List(h.Ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err
		}
		running := 0
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Spec.NodeName == node && p.Status.Phase == v1.PodRunning {
				running++
			}
		}
		return running == 1, nil
	})
}

// waitReplacement waits for the NodeClaim created to replace old.
func (h *harness) waitReplacement(t *testing.T, old string) *karpv1.NodeClaim {
	t.Helper()
	var found *karpv1.NodeClaim
	h.Eventually(t, 30*time.Second, "a replacement for "+old, func() (bool, error) {
		list, err := h.Karp.KarpenterV1().NodeClaims().List(h.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i := range list.Items {
			if list.Items[i].Annotations[disruption.ReplacesAnnotationKey] == old {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

func requirement(nc *karpv1.NodeClaim, key string) []string {
	for _, r := range nc.Spec.Requirements {
		if r.Key == key {
			return r.Values
		}
	}
	return nil
}

// replaceCheaper: a node whose pod fits on no other node is replaced by a
// cheaper one in its zone, launched first; the old node goes only once the
// new one is initialized, and the pod moves to it.
func (h *harness) replaceCheaper(t *testing.T) {
	h.Pool(t, "replace", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: after("2s")})
	_, big := h.CreateNode(t, disruptiontest.NodeSpec{Name: "replace-big", Pool: "replace", CPU: "8", Memory: "32Gi", Labels: bigNodeLabels})
	h.onePod(t, "lonely", "replace", "replace-big")

	repl := h.waitReplacement(t, big.Name)
	types := requirement(repl, v1.LabelInstanceTypeStable)
	if len(types) == 0 || types[0] != "t3.medium" || strings.Contains(strings.Join(types, ","), "m5.2xlarge") {
		t.Errorf("replacement instance types = %v, want t3.medium first (the cheapest in us-east-1a that holds the pod) and no m5.2xlarge", types)
	}
	if zones := requirement(repl, v1.LabelTopologyZone); fmt.Sprint(zones) != "[us-east-1a]" {
		t.Errorf("replacement zones = %v, want the old node's [us-east-1a]", zones)
	}
	if repl.Annotations[karpv1.NodePoolHashAnnotationKey] == "" || !ptr.Deref(repl.OwnerReferences[0].BlockOwnerDeletion, false) {
		t.Errorf("replacement not made like the pool's claims: %v %v", repl.Annotations, repl.OwnerReferences)
	}
	ev := h.WaitEvent(t, "NodeClaim", big.Name, "Replacing")
	if !strings.Contains(ev, "Underutilized") || !strings.Contains(ev, repl.Name) {
		t.Errorf("Replacing event = %q", ev)
	}
	t.Logf("%s", ev)
	// Until the replacement is up, the old node stays, tainted, with its pod.
	h.Eventually(t, 10*time.Second, "the old node tainted", func() (bool, error) {
		n, err := h.Kube.CoreV1().Nodes().Get(h.Ctx, "replace-big", metav1.GetOptions{})
		return err == nil && drain.HasDisruptedTaint(n), err
	})
	time.Sleep(2 * time.Second)
	if gone, _ := h.Gone(big.Name); gone {
		t.Fatal("the old node went before its replacement was up")
	}
	h.waitRunningOn(t, "lonely", "replace-big")

	h.Register(t, repl, disruptiontest.NodeSpec{CPU: "2", Memory: "4Gi",
		Labels: map[string]string{v1.LabelInstanceTypeStable: "t3.medium", v1.LabelTopologyZone: "us-east-1a", karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand}})
	h.Eventually(t, 30*time.Second, "the old claim gone", func() (bool, error) { return h.Gone(big.Name) })
	h.waitRunningOn(t, "lonely", repl.Name)
	h.Eventually(t, 10*time.Second, "the replacement's annotation dropped", func() (bool, error) {
		nc, err := h.Karp.KarpenterV1().NodeClaims().Get(h.Ctx, repl.Name, metav1.GetOptions{})
		return err == nil && nc.Annotations[disruption.ReplacesAnnotationKey] == "", err
	})
	// The replacement holds the pod on the cheapest node that fits it: it
	// is not replaced again, and not removed.
	time.Sleep(3 * time.Second)
	if gone, _ := h.Gone(repl.Name); gone {
		t.Fatal("the replacement was removed")
	}
	if ev := h.WaitEvent(t, "NodeClaim", repl.Name, "Unconsolidatable"); !strings.Contains(ev, "no cheaper instance type") {
		t.Errorf("Unconsolidatable on the replacement = %q", ev)
	}
}

// replacementGone: when the replacement goes away before it is up (its
// launch failed), the disruption is given up and the old node keeps its pod
// and loses the taint.
func (h *harness) replacementGone(t *testing.T) {
	h.Pool(t, "cancel", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: after("2s"),
		Budgets: []karpv1.Budget{{Nodes: "100%"}}})
	_, big := h.CreateNode(t, disruptiontest.NodeSpec{Name: "cancel-big", Pool: "cancel", CPU: "8", Memory: "32Gi", Labels: bigNodeLabels})
	h.onePod(t, "kept", "cancel", "cancel-big")
	repl := h.waitReplacement(t, big.Name)
	if err := h.Karp.KarpenterV1().NodeClaims().Delete(h.Ctx, repl.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := h.WaitEvent(t, "NodeClaim", big.Name, "DisruptionCancelled")
	t.Logf("%s", ev)
	h.Eventually(t, 10*time.Second, "the taint off the old node", func() (bool, error) {
		n, err := h.Kube.CoreV1().Nodes().Get(h.Ctx, "cancel-big", metav1.GetOptions{})
		return err == nil && !drain.HasDisruptedTaint(n), err
	})
	if gone, _ := h.Gone(big.Name); gone {
		t.Fatal("the old node went without a replacement")
	}
	h.waitRunningOn(t, "kept", "cancel-big")
	// The pool is left with a node nothing cheaper holds: stop judging it.
	if _, err := h.Karp.KarpenterV1().NodePools().Patch(h.Ctx, "cancel", "application/merge-patch+json",
		[]byte(`{"spec":{"disruption":{"consolidateAfter":"Never"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// driftReplacedFirst: a drifted node whose pod fits on no other node gets
// its replacement from the current template first, even though it costs
// the same; then it goes.
func (h *harness) driftReplacedFirst(t *testing.T) {
	np := h.Pool(t, "redrift", karpv1.Disruption{ConsolidateAfter: after("Never")})
	_, old := h.CreateNode(t, disruptiontest.NodeSpec{Name: "redrift-1", Pool: "redrift", CPU: "2", Memory: "4Gi",
		Labels:           map[string]string{v1.LabelInstanceTypeStable: "t3.medium", v1.LabelTopologyZone: "us-east-1b", karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand},
		ClaimAnnotations: map[string]string{karpv1.NodePoolHashAnnotationKey: "stale", karpv1.NodePoolHashVersionAnnotationKey: nodepool.NodePoolHashVersion}})
	h.onePod(t, "drifter", "redrift", "redrift-1")
	repl := h.waitReplacement(t, old.Name)
	if got, want := repl.Annotations[karpv1.NodePoolHashAnnotationKey], nodepool.TemplateHash(np); got != want {
		t.Errorf("replacement hash = %q, want the pool's current %q", got, want)
	}
	if zones := requirement(repl, v1.LabelTopologyZone); fmt.Sprint(zones) != "[us-east-1b]" {
		t.Errorf("replacement zones = %v, want [us-east-1b]", zones)
	}
	if ev := h.WaitEvent(t, "NodeClaim", old.Name, "Replacing"); !strings.Contains(ev, "Drifted") {
		t.Errorf("Replacing event = %q", ev)
	}
	h.Register(t, repl, disruptiontest.NodeSpec{CPU: "2", Memory: "2Gi",
		Labels: map[string]string{v1.LabelInstanceTypeStable: "t3.small", v1.LabelTopologyZone: "us-east-1b", karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand}})
	h.Eventually(t, 30*time.Second, "the drifted claim gone", func() (bool, error) { return h.Gone(old.Name) })
	h.waitRunningOn(t, "drifter", repl.Name)
}

// balancedWeighsTheMove: under Balanced with consolidationThreshold 1 a
// replacement saving 75% of the pool's cost for all of its disruption
// (score 0.75) is not made; with the default threshold 2 (0.75 >= 0.5) it is.
func (h *harness) balancedWeighsTheMove(t *testing.T) {
	h.Pool(t, "balanced", karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyBalanced, ConsolidationThreshold: ptr.To[int32](1),
		ConsolidateAfter: after("2s")})
	_, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "balanced-1", Pool: "balanced", CPU: "2", Memory: "4Gi",
		Labels: map[string]string{v1.LabelInstanceTypeStable: "t3.medium", v1.LabelTopologyZone: "us-east-1b", karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand}})
	h.onePod(t, "weighed", "balanced", "balanced-1")
	if n := h.notReplaced(t, nc.Name, "a replacement is not worth it: Balanced: the move saves 75.0% of the pool's cost for 100.0% of its disruption cost (score 0.75, below 1.00)"); n != 0 {
		t.Fatalf("replaced under threshold 1 (%d Replacing events)", n)
	}
	if _, err := h.Karp.KarpenterV1().NodePools().Patch(h.Ctx, "balanced", "application/merge-patch+json",
		[]byte(`{"spec":{"disruption":{"consolidationThreshold":null}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	repl := h.waitReplacement(t, nc.Name)
	if types := requirement(repl, v1.LabelInstanceTypeStable); fmt.Sprint(types) != "[t3.small]" {
		t.Errorf("replacement types = %v, want [t3.small]", types)
	}
	// Leave nothing launching behind: the claim goes, the node stays.
	if err := h.Karp.KarpenterV1().NodeClaims().Delete(h.Ctx, repl.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.WaitEvent(t, "NodeClaim", nc.Name, "DisruptionCancelled")
	if _, err := h.Karp.KarpenterV1().NodePools().Patch(h.Ctx, "balanced", "application/merge-patch+json",
		[]byte(`{"spec":{"disruption":{"consolidateAfter":"Never"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// notReplaced waits for the claim's Unconsolidatable event, which must say
// why, then gives the loop a second and returns how many Replacing events
// the claim has had.
func (h *harness) notReplaced(t *testing.T, claim, why string) int {
	t.Helper()
	ev := h.WaitEvent(t, "NodeClaim", claim, "Unconsolidatable")
	if !strings.Contains(ev, why) {
		t.Errorf("Unconsolidatable = %q", ev)
	}
	time.Sleep(time.Second)
	return h.CountEvents(t, "NodeClaim", claim, "Replacing")
}
