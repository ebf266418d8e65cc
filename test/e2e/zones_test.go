package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
)

// TestZoneSpreadOverZonesWithNoNode: six pods with a zone topology spread
// (maxSkew 1, DoNotSchedule) on a NodePool of their own, which offers the
// sandbox's three zones and has no node yet in any: the Provisioner counts
// the zones it can launch in, pins claims two pods a zone, the instances
// launch in those zones' subnets, join through kubeadm, and the pods run
// 2/2/2 - the scheduler agreeing as the nodes come.
func TestZoneSpreadOverZonesWithNoNode(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	c := sandbox.Client
	karp := versioned.NewForConfigOrDie(sandbox.Admin)
	const ns, app, tier = "scan", "spread6", "spread6"

	np := nodePool(tier, map[string]string{"tier": tier}, []string{"t3.medium"})
	if _, err := karp.KarpenterV1().NodePools().Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = karp.KarpenterV1().NodePools().Delete(context.Background(), tier, metav1.DeleteOptions{}) })

	createDeployment(ctx, t, deployment(ns, app, 6, corev1.PodSpec{
		NodeSelector: map[string]string{"tier": tier},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		}},
		Containers: []corev1.Container{pauseContainer("work", "500m", "256Mi")},
	}))
	start := time.Now()

	perZone := map[string]int{}
	waitFor(ctx, t, "six spread pods running", 180*time.Second, func() bool {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false
		}
		counts, running := map[string]int{}, 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				continue
			}
			node, err := c.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
			if err != nil {
				return false
			}
			counts[node.Labels[corev1.LabelTopologyZone]]++
			running++
		}
		perZone = counts
		return running == 6
	})
	t.Logf("6/6 running %s after the deployment, per zone %v", time.Since(start).Round(100*time.Millisecond), perZone)
	for _, z := range seed.Zones {
		if perZone[z.Zone] != 2 {
			t.Errorf("pods per zone %v, want 2 in each of %d zones", perZone, len(seed.Zones))
			break
		}
	}
	if len(perZone) != len(seed.Zones) {
		t.Errorf("pods ran in %d zones (%v), want %d", len(perZone), perZone, len(seed.Zones))
	}
}
