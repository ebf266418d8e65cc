package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// This file's name sorts after seed_test.go: Go runs it after the seed's
// tests, on the world they leave.

// TestShrunkWorkloadMovesToACheaperNode: a pod that needed a t3a.xlarge
// shrinks to 100m. No other node may take it (it only runs on managed
// nodes), so after consolidateAfter fleet-scheduler launches one cheaper
// node, waits for it to join through kubeadm, then drains the old node
// and terminates its instance; the pod runs on the new node.
func TestShrunkWorkloadMovesToACheaperNode(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	c := sandbox.Client
	karp := versioned.NewForConfigOrDie(sandbox.Admin)
	const ns, app = "scan", "shrinking"
	createDeployment(ctx, t, deployment(ns, app, 1, corev1.PodSpec{
		// On-demand: moto prices every spot offering alike, so a spot node
		// would have nothing cheaper to move to.
		NodeSelector: map[string]string{"managed-by": "karpenter", karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand},
		Containers:   []corev1.Container{pauseContainer("work", "2500m", "256Mi")},
	}))

	runningOn := func() string {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return ""
		}
		node := ""
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			if p.Status.Phase != corev1.PodRunning || node != "" {
				return "" // not settled: pending, or two pods during a rollout
			}
			if p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue() == 100 {
				node = p.Spec.NodeName
			} else {
				node = "big:" + p.Spec.NodeName
			}
		}
		return node
	}
	var first string
	waitFor(ctx, t, "the 2500m pod running on a launched node", 90*time.Second, func() bool {
		first = runningOn()
		return len(first) > len("big:")
	})
	first = first[len("big:"):]
	old, err := karp.KarpenterV1().NodeClaims().Get(ctx, first, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the pod's node %s has no NodeClaim of that name: %v", first, err)
	}
	oldType := old.Labels[corev1.LabelInstanceTypeStable]
	t.Logf("2500m pod on %s (%s)", first, oldType)

	// Shrink it: the rollout's new pod fits beside the old one on the same
	// node, the only managed one.
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"work","resources":{"requests":{"cpu":"100m"}}}]}}}}`)
	if _, err := c.AppsV1().Deployments(ns).Patch(ctx, app, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	shrunk := time.Now()
	waitFor(ctx, t, "the 100m pod running", 60*time.Second, func() bool {
		// One reading: the pods may change between two.
		on := runningOn()
		return on != "" && !strings.HasPrefix(on, "big:")
	})

	var repl *karpv1.NodeClaim
	waitFor(ctx, t, "a replacement NodeClaim for "+first, 120*time.Second, func() bool {
		claims, err := karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for i := range claims.Items {
			if claims.Items[i].Annotations[disruption.ReplacesAnnotationKey] == first {
				repl = &claims.Items[i]
				return true
			}
		}
		return false
	})
	t.Logf("replacement %s created %s after the shrink", repl.Name, time.Since(shrunk).Round(100*time.Millisecond))
	waitFor(ctx, t, "the old claim, node and instance gone and the pod on the replacement", 120*time.Second, func() bool {
		if _, err := karp.KarpenterV1().NodeClaims().Get(ctx, first, metav1.GetOptions{}); err == nil {
			return false
		}
		if _, err := c.CoreV1().Nodes().Get(ctx, first, metav1.GetOptions{}); err == nil {
			return false
		}
		return len(runningInstancesByClaim(ctx, t)[first]) == 0 && runningOn() == repl.Name
	})
	t.Logf("moved %s after the shrink", time.Since(shrunk).Round(100*time.Millisecond))

	now, err := karp.KarpenterV1().NodeClaims().Get(ctx, repl.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newType := now.Labels[corev1.LabelInstanceTypeStable]
	oldPrice, ok1 := pricing.OnDemand(oldType)
	newPrice, ok2 := pricing.OnDemand(newType)
	if !ok1 || !ok2 || newPrice >= oldPrice {
		t.Errorf("replaced %s ($%.4f/h) with %s ($%.4f/h), want a cheaper type", oldType, oldPrice, newType, newPrice)
	}
	if n := len(runningInstancesByClaim(ctx, t)[repl.Name]); n != 1 {
		t.Errorf("%d running instances tagged with the replacement, want 1", n)
	}
	t.Logf("%s ($%.4f/h) replaced by %s ($%.4f/h)", oldType, oldPrice, newType, newPrice)
}
