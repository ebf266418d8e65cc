package seed

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// The seed's workload.
const (
	ScanNamespace  = "scan"
	ScanDeployment = "scan-worker"
	ScanReplicas   = 3
)

// ScanRequests are each scan-worker's requests: four fit a t3.large (2
// vCPU, 8 GiB), so the two workers hold the 3 replicas and 8 at most, and
// 20 replicas need new nodes.
var ScanRequests = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("500m"),
	corev1.ResourceMemory: resource.MustParse("512Mi"),
}

// ScanWorker creates namespace scan and Deployment scan-worker (label
// app=scan-worker, 3 replicas) scheduled by schedulerName.
func ScanWorker(ctx context.Context, client kubernetes.Interface, schedulerName string) error {
	if err := retry(ctx, func() error {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ScanNamespace}}, metav1.CreateOptions{})
		return err
	}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ScanNamespace, err)
	}
	labels := map[string]string{"app": ScanDeployment}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: ScanDeployment, Namespace: ScanNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](ScanReplicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SchedulerName:                 schedulerName,
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					Containers: []corev1.Container{{
						Name:      "worker",
						Image:     "ghcr.io/sesacthon/scan-worker:dev",
						Resources: corev1.ResourceRequirements{Requests: ScanRequests},
					}},
				},
			},
		},
	}
	if err := retry(ctx, func() error {
		_, err := client.AppsV1().Deployments(ScanNamespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating deployment %s/%s: %w", ScanNamespace, ScanDeployment, err)
	}
	return nil
}

// ControlPlaneTaint is the taint kubeadm puts on control-plane nodes.
var ControlPlaneTaint = corev1.Taint{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}

// MarkControlPlane does kubeadm init's mark-control-plane phase with the
// admin's credentials: the node-role label (which a kubelet may not set on
// itself) and the load-balancer exclusion label. The taint the node
// registered with.
func MarkControlPlane(ctx context.Context, client kubernetes.Interface, node string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{
		"node-role.kubernetes.io/control-plane":                   "",
		"node.kubernetes.io/exclude-from-external-load-balancers": "",
	}}})
	return retry(ctx, func() error {
		_, err := client.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}
