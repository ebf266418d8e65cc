package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
)

// TestDaemonSetOverheadOnNewNode: a real DaemonSet (the controller
// manager's daemonset controller makes its pods) whose node selector and
// toleration admit a NodePool's nodes. A 1.5 cpu pod alone fits a
// c5.large (1.93 cpu allocatable); with the daemon's 1 cpu it does not, so
// the claim must be a c5.xlarge - and once the node joins, the daemon's
// pod runs on it beside the workload.
func TestDaemonSetOverheadOnNewNode(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	c := sandbox.Client
	karp := versioned.NewForConfigOrDie(sandbox.Admin)
	const ns, pool = "overhead-e2e", "daemons"
	selector := map[string]string{"e2e": "daemons"}
	taint := corev1.Taint{Key: "e2e/daemons", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	toleration := corev1.Toleration{Key: taint.Key, Operator: corev1.TolerationOpExists}

	np := nodePool(pool, selector, []string{"c5.large", "c5.xlarge"}, taint)
	if _, err := karp.KarpenterV1().NodePools().Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removePool(t, karp, pool) })
	// Deleted before the pool: cleanups run last first.
	createNamespace(ctx, t, ns)

	ds := daemonSet(ns, "agent", corev1.PodSpec{
		NodeSelector: selector, Tolerations: []corev1.Toleration{toleration}, TerminationGracePeriodSeconds: ptr.To[int64](1),
		Containers: []corev1.Container{pauseContainer("agent", "1", "64Mi")},
	})
	if _, err := c.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The DaemonSet counts once fleet-scheduler's informer has it (within
	// milliseconds); the controller manager's having handled it is the
	// sign to wait for, with a margin for a loaded machine.
	waitFor(ctx, t, "the DaemonSet seen by the controller manager", 30*time.Second, func() bool {
		got, err := c.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && got.Status.ObservedGeneration >= 1
	})
	time.Sleep(time.Second)
	dep := deployment(ns, "work", 1, corev1.PodSpec{
		NodeSelector: selector, Tolerations: []corev1.Toleration{toleration},
		Containers: []corev1.Container{pauseContainer("work", "1500m", "64Mi")},
	})
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var node string
	waitFor(ctx, t, "the workload and the DaemonSet's pod running on one new node", 2*time.Minute, func() bool {
		w, a := runningOn(ctx, ns, "app=work"), runningOn(ctx, ns, "app=agent")
		for n := range w {
			if a[n] && len(w) == 1 {
				node = n
				return true
			}
		}
		return false
	})
	nc, err := karp.KarpenterV1().NodeClaims().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("node %s has no NodeClaim: %v", node, err)
	}
	if nc.Labels[karpv1.NodePoolLabelKey] != pool {
		t.Errorf("claim %s of nodepool %q, want %q", nc.Name, nc.Labels[karpv1.NodePoolLabelKey], pool)
	}
	if got := nc.Labels[corev1.LabelInstanceTypeStable]; got != "c5.xlarge" {
		t.Errorf("launched as %s: 1.5 cpu + the daemon's 1 cpu need a c5.xlarge", got)
	}
	for _, r := range nc.Spec.Requirements {
		if r.Key == corev1.LabelInstanceTypeStable {
			for _, v := range r.Values {
				if v == "c5.large" {
					t.Errorf("claim instance types %v: c5.large cannot hold the pod and the daemon", r.Values)
				}
			}
		}
	}
	if cpu := nc.Spec.Resources.Requests[corev1.ResourceCPU]; cpu.MilliValue() != 2500 {
		t.Errorf("claim requests %s cpu, want 2500m (pod and daemon)", cpu.String())
	}
	cpu := nc.Spec.Resources.Requests[corev1.ResourceCPU]
	t.Logf("workload and daemon on %s (%s, claim requests %s cpu)", node, nc.Labels[corev1.LabelInstanceTypeStable], cpu.String())
}

// removePool deletes the NodePool and waits until its claims (deleted with
// it, through their owner reference) and their instances are gone.
func removePool(t *testing.T, karp versioned.Interface, pool string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := karp.KarpenterV1().NodePools().Delete(ctx, pool, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting nodepool %s: %v", pool, err)
		return
	}
	waitFor(ctx, t, "nodepool "+pool+"'s claims and instances gone", 3*time.Minute, func() bool {
		claims, err := karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{LabelSelector: karpv1.NodePoolLabelKey + "=" + pool})
		if err != nil || len(claims.Items) > 0 {
			return false
		}
		for claim := range runningInstancesByClaim(ctx, t) {
			if len(claim) > len(pool) && claim[:len(pool)+1] == pool+"-" {
				return false
			}
		}
		return true
	})
}
