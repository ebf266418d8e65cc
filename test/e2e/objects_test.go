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

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// The objects the tests create: namespaces, pause containers, Deployments and
// DaemonSets of them, and NodePools of their own.

// pauseContainer runs pause, requesting cpu and memory.
func pauseContainer(name, cpu, memory string) corev1.Container {
	return corev1.Container{Name: name, Image: "registry.k8s.io/pause:3.10", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}}}
}

// deployment is the Deployment app in ns: replicas pods labelled app=<app>
// with pod's spec, stopped within a second (a rollout or a drain does not
// wait).
func deployment(ns, app string, replicas int32, pod corev1.PodSpec) *appsv1.Deployment {
	labels := map[string]string{"app": app}
	pod.TerminationGracePeriodSeconds = ptr.To[int64](1)
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
	}}
}

// daemonSet is the DaemonSet app in ns, its pods labelled app=<app> with
// pod's spec.
func daemonSet(ns, app string, pod corev1.PodSpec) *appsv1.DaemonSet {
	labels := map[string]string{"app": app}
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
	}}
}

// createNamespace creates ns and, when the test ends, deletes it and waits
// until it is gone.
func createNamespace(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	if _, err := sandbox.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNamespace(t, ns) })
}

// deleteNamespace deletes ns and waits until the namespace controller has
// emptied and removed it.
func deleteNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := sandbox.Client
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Errorf("deleting namespace %s: %v", ns, err)
		return
	}
	waitFor(ctx, t, "namespace "+ns+" gone", 2*time.Minute, func() bool {
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err != nil
	})
}

// createDeployment creates dep and deletes it when the test ends.
func createDeployment(ctx context.Context, t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	deployments := sandbox.Client.AppsV1().Deployments(dep.Namespace)
	if _, err := deployments.Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deployments.Delete(context.Background(), dep.Name, metav1.DeleteOptions{}) })
}

// nodePool is a NodePool of on-demand instances of the given types on the
// default EC2NodeClass, its nodes labelled labels and tainted with taints,
// consolidated 30s after they are empty or underused.
func nodePool(name string, labels map[string]string, instanceTypes []string, taints ...corev1.Taint) *karpv1.NodePool {
	return &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: karpv1.NodePoolSpec{
		Template: karpv1.NodeClaimTemplate{
			ObjectMeta: karpv1.ObjectMeta{Labels: labels},
			Spec: karpv1.NodeClaimTemplateSpec{
				Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
					{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: instanceTypes},
					{Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{karpv1.CapacityTypeOnDemand}},
				},
				Taints:       taints,
				NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
			},
		},
		Disruption: karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: karpv1.NewNillableDuration(30 * time.Second)},
	}}
}
