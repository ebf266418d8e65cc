package drain_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/test/disruptiontest"
)

type harness struct {
	*disruptiontest.Cluster
	drainer *drain.Drainer
}

// TestDrain runs the drain against a real apiserver: the Eviction API and
// PodDisruptionBudgets are the real ones, kept by the real PDB controller.
func TestDrain(t *testing.T) {
	c := disruptiontest.Start(t)
	c.RunControllers(t)
	pods := c.KubeInformers.Core().V1().Pods().Informer()
	if err := drain.AddPodIndexers(pods); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	h := &harness{Cluster: c, drainer: &drain.Drainer{Kube: c.Kube, Pods: pods.GetIndexer(), Recorder: c.Recorder, Interval: 200 * time.Millisecond}}
	c.Pool(t, "drain", karpv1.Disruption{ConsolidateAfter: karpv1.NillableDuration{}})

	t.Run("LeavesDaemonSetMirrorAndToleratingPods", h.leavesSomePods)
	t.Run("PDBBlocksUntilRelaxed", h.pdbBlocks)
	t.Run("DoNotDisruptWaitsForGracePeriod", h.doNotDisrupt)
	t.Run("MissingNodeIsDrained", h.missingNode)
}

// drainUntil calls Drain as the termination controller would until done
// or timeout, and returns every status seen.
func (h *harness) drainUntil(t *testing.T, node string, nc *karpv1.NodeClaim, timeout time.Duration) []drain.Status {
	t.Helper()
	var seen []drain.Status
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if nc != nil {
			fresh, err := h.Karp.KarpenterV1().NodeClaims().Get(h.Ctx, nc.Name, metav1.GetOptions{})
			if err == nil {
				nc = fresh
			}
		}
		st, err := h.drainer.Drain(h.Ctx, node, nc)
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
		seen = append(seen, st)
		if st.Done {
			return seen
		}
		time.Sleep(st.RequeueAfter)
	}
	return seen
}

func (h *harness) leavesSomePods(t *testing.T) {
	node, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "drain-a", Pool: "drain"})
	ds := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds-uid", Controller: ptr.To(true)}
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "daemon", Owner: ds}), node.Name)
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "static", Annotations: map[string]string{"kubernetes.io/config.mirror": "x"}}), node.Name)
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "tolerant", Tolerations: []v1.Toleration{{Key: karpv1.DisruptedTaintKey, Operator: v1.TolerationOpExists}}}), node.Name)
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "web", Annotations: map[string]string{disruptiontest.ExitAfterAnnotation: "1s"}}), node.Name)
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "dns", Priority: "system-cluster-critical"}), node.Name)
	waitCached(t, h, node.Name, 5)

	start := time.Now()
	statuses := h.drainUntil(t, node.Name, nc, 30*time.Second)
	last := statuses[len(statuses)-1]
	if !last.Done {
		t.Fatalf("not drained: %+v", last)
	}
	// The critical pod is evicted only once the others have left.
	if statuses[0].Evicted != 1 {
		t.Errorf("first call evicted %d pods, want 1 (web; dns waits for it)", statuses[0].Evicted)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("drained in %s, before web's 1s shutdown was over", took)
	}
	got, err := h.Kube.CoreV1().Nodes().Get(h.Ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !drain.HasDisruptedTaint(got) {
		t.Errorf("node taints = %v, want %s:NoSchedule", got.Spec.Taints, karpv1.DisruptedTaintKey)
	}
	for _, name := range []string{"daemon", "static", "tolerant"} {
		if _, err := h.Kube.CoreV1().Pods("default").Get(h.Ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s should stay on the node: %v", name, err)
		}
	}
	for _, name := range []string{"web", "dns"} {
		if _, err := h.Kube.CoreV1().Pods("default").Get(h.Ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod %s should be evicted: %v", name, err)
		}
	}
	h.WaitEvent(t, "Node", node.Name, "Drained")
	h.WaitEvent(t, "NodeClaim", nc.Name, "Draining")
	h.WaitEvent(t, "Pod", "web", "Evicted")
}

func (h *harness) pdbBlocks(t *testing.T) {
	ctx := h.Ctx
	node, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "drain-b", Pool: "drain"})
	labels := map[string]string{"app": "guarded"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       disruptiontest.Pod(disruptiontest.PodSpec{Name: "x"}).Spec,
			},
		},
	}
	if _, err := h.Kube.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var podName string
	h.Eventually(t, 20*time.Second, "the ReplicaSet's pod", func() (bool, error) {
		list, err := h.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=guarded"})
		if err != nil || len(list.Items) == 0 {
			return false, err
		}
		podName = list.Items[0].Name
		return true, nil
	})
	if err := h.Kube.CoreV1().Pods("default").Bind(ctx, &v1.Binding{ObjectMeta: metav1.ObjectMeta{Name: podName, Namespace: "default"},
		Target: v1.ObjectReference{Kind: "Node", Name: node.Name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "guarded", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(0)), Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	if _, err := h.Kube.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDB(t, h, "guarded", 0, 1)
	waitCached(t, h, node.Name, 1)

	// kubectl delete nodeclaim: the claim waits on its finalizer.
	if err := h.Karp.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	statuses := h.drainUntil(t, node.Name, nc, 3*time.Second)
	last := statuses[len(statuses)-1]
	if last.Done || last.Waiting != 1 || len(last.Blocked) != 1 || !strings.Contains(last.Blocked[0], "PodDisruptionBudget default/guarded") {
		t.Fatalf("with maxUnavailable 0: %+v, want blocked by PodDisruptionBudget default/guarded", last)
	}
	if _, err := h.Kube.CoreV1().Pods("default").Get(ctx, podName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the guarded pod is gone: %v", err)
	}
	ev := h.WaitEvent(t, "Node", node.Name, "DrainBlocked")
	if !strings.Contains(ev, "PodDisruptionBudget default/guarded") {
		t.Errorf("DrainBlocked event %q does not name the budget", ev)
	}
	if n := h.CountEvents(t, "Node", node.Name, "DrainBlocked"); n != 1 {
		t.Errorf("%d DrainBlocked events for %d drain calls, want 1 (only on change)", n, len(statuses))
	}

	patch := []byte(`{"spec":{"maxUnavailable":1}}`)
	if _, err := h.Kube.PolicyV1().PodDisruptionBudgets("default").Patch(ctx, "guarded", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDB(t, h, "guarded", 1, 2)
	statuses = h.drainUntil(t, node.Name, nc, 20*time.Second)
	if last := statuses[len(statuses)-1]; !last.Done {
		t.Fatalf("relaxed budget: not drained: %+v", last)
	}
	if _, err := h.Kube.CoreV1().Pods("default").Get(ctx, podName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the guarded pod was not evicted: %v", err)
	}
	_ = h.Kube.AppsV1().ReplicaSets("default").Delete(ctx, "guarded", metav1.DeleteOptions{})
}

func (h *harness) doNotDisrupt(t *testing.T) {
	ctx := h.Ctx
	node, nc := h.CreateNode(t, disruptiontest.NodeSpec{Name: "drain-c", Pool: "drain", TerminationGracePeriod: 4 * time.Second})
	h.BindPod(t, disruptiontest.Pod(disruptiontest.PodSpec{Name: "batch", TerminationGracePeriodSeconds: ptr.To[int64](1),
		Annotations: map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"}}), node.Name)
	waitCached(t, h, node.Name, 1)
	if err := h.Karp.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	nc, err := h.Karp.KarpenterV1().NodeClaims().Get(ctx, nc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := drain.Deadline(nc)
	if deadline == nil || deadline.Sub(nc.DeletionTimestamp.Time) != 4*time.Second {
		t.Fatalf("deadline = %v for deletion at %v and a 4s grace period", deadline, nc.DeletionTimestamp)
	}
	statuses := h.drainUntil(t, node.Name, nc, 20*time.Second)
	last := statuses[len(statuses)-1]
	if !last.Done {
		t.Fatalf("not drained after the grace period: %+v", last)
	}
	evicted, deletedAt := 0, -1
	for i, st := range statuses {
		evicted += st.Evicted
		if st.Deleted > 0 && deletedAt < 0 {
			deletedAt = i
		}
	}
	if evicted != 0 {
		t.Errorf("evicted %d pods; a do-not-disrupt pod is never evicted", evicted)
	}
	if deletedAt < 0 {
		t.Fatal("the pod was never deleted")
	}
	if !strings.Contains(strings.Join(statuses[0].Blocked, ";"), karpv1.DoNotDisruptAnnotationKey) {
		t.Errorf("blocked = %v, want the do-not-disrupt pod named", statuses[0].Blocked)
	}
	// Deleted 1s (its own grace) before the node's 4s ran out, not before.
	if now := time.Now(); now.Before(deadline.Add(-2 * time.Second)) {
		t.Errorf("drained at %s, well before the deadline %s", now, deadline)
	}
	h.WaitEvent(t, "Pod", "batch", "Deleted")
	if ev := h.WaitEvent(t, "NodeClaim", nc.Name, "DrainBlocked"); !strings.Contains(ev, "do-not-disrupt") {
		t.Errorf("DrainBlocked = %q, want do-not-disrupt named", ev)
	}
}

func (h *harness) missingNode(t *testing.T) {
	st, err := h.drainer.Drain(h.Ctx, "no-such-node", nil)
	if err != nil || !st.Done {
		t.Errorf("Drain of a missing node = %+v, %v; want done", st, err)
	}
}

// waitCached waits until the drain's pod cache has n pods on the node.
func waitCached(t *testing.T, h *harness, node string, n int) {
	t.Helper()
	h.Eventually(t, 10*time.Second, "pods in the cache", func() (bool, error) {
		pods, err := drain.PodsOnNode(h.drainer.Pods, node)
		return len(pods) == n, err
	})
}

// waitPDB waits until the PDB controller has judged the budget.
func waitPDB(t *testing.T, h *harness, name string, allowed int32, generation int64) {
	t.Helper()
	h.Eventually(t, 30*time.Second, "PDB status", func() (bool, error) {
		pdb, err := h.Kube.PolicyV1().PodDisruptionBudgets("default").Get(h.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return pdb.Status.ObservedGeneration >= generation && pdb.Status.DisruptionsAllowed == allowed && pdb.Status.ExpectedPods > 0, nil
	})
}
