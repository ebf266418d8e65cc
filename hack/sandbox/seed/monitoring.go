package seed

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The monitoring processes' users (their client certificates' common names).
const (
	KubeStateMetricsUser = "kube-state-metrics"
	PrometheusUser       = "prometheus"
	// MetricsReaderRole is the deployment manifests' ClusterRole for
	// Prometheus (manifests/base/roles/metrics-reader.yaml); the caller
	// applies it.
	MetricsReaderRole = "fleet-scheduler:metrics-reader"
)

// MonitoringAccess lets kube-state-metrics list and watch the nodes and
// pods it exports (nothing else: it runs with --resources=nodes,pods), and
// binds MetricsReaderRole to Prometheus's user, as manifests/overlays/
// components/monitoring does for a cluster's Prometheus.
func MonitoringAccess(ctx context.Context, client kubernetes.Interface) error {
	user := func(name string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	}
	objects := []func() error{
		func() error {
			_, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
				ObjectMeta: metav1.ObjectMeta{Name: "sandbox:kube-state-metrics"},
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{""}, Resources: []string{"nodes", "pods"}, Verbs: []string{"list", "watch"},
				}},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "sandbox:kube-state-metrics"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "sandbox:kube-state-metrics"},
				Subjects:   user(KubeStateMetricsUser),
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: MetricsReaderRole},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: MetricsReaderRole},
				Subjects:   user(PrometheusUser),
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range objects {
		if err := retry(ctx, create); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}
