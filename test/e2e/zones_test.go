package e2e

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
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

	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: tier},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{
				ObjectMeta: karpv1.ObjectMeta{Labels: map[string]string{"tier": tier}},
				Spec: karpv1.NodeClaimTemplateSpec{
					Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
						{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"t3.medium"}},
						{Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{karpv1.CapacityTypeOnDemand}},
					},
					NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
				},
			},
			Disruption: karpv1.Disruption{ConsolidateAfter: karpv1.NewNillableDuration(30 * time.Second), ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized},
		},
	}
	if _, err := karp.KarpenterV1().NodePools().Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = karp.KarpenterV1().NodePools().Delete(context.Background(), tier, metav1.DeleteOptions{}) })

	labels := map[string]string{"app": app}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](6),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{"tier": tier},
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{Name: "work", Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
					}}},
				},
			},
		},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.AppsV1().Deployments(ns).Delete(context.Background(), app, metav1.DeleteOptions{}) })
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
