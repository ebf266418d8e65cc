package bootstrap

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	kubeadmconstants "k8s.io/kubernetes/cmd/kubeadm/app/constants"
)

// ClusterInfoRole is kubeadm's Role (and RoleBinding) letting anonymous
// users read kube-public/cluster-info.
const ClusterInfoRole = "kubeadm:bootstrap-signer-clusterinfo"

// ClusterInfoConfigMap is kube-public/cluster-info as `kubeadm init`
// publishes it for token discovery: a kubeconfig with the API server URL
// and CA (PEM) in an unnamed cluster. It is what DiscoverClusterInfo reads.
func ClusterInfoConfigMap(server string, caPEM []byte) (*corev1.ConfigMap, error) {
	kubeconfig, err := clientcmd.Write(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"": {Server: server, CertificateAuthorityData: caPEM}},
	})
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: metav1.NamespacePublic},
		Data:       map[string]string{bootstrapapi.KubeConfigKey: string(kubeconfig)},
	}, nil
}

// KubeadmObjects are objects `kubeadm init` leaves in a cluster, by kind.
type KubeadmObjects struct {
	ConfigMaps          []*corev1.ConfigMap
	Roles               []*rbacv1.Role
	RoleBindings        []*rbacv1.RoleBinding
	ClusterRoles        []*rbacv1.ClusterRole
	ClusterRoleBindings []*rbacv1.ClusterRoleBinding
}

// KubeadmJoinObjects are what `kubeadm init`'s bootstrap-token phase
// creates for nodes joining with a bootstrap token (kubeadm's
// phases/bootstraptoken/clusterinfo and node; their code needs a module
// this repository does not carry, so the objects are built here with
// kubeadm's names): kube-public/cluster-info (ClusterInfoConfigMap) and the
// Role and RoleBinding letting system:anonymous read it, and the bindings
// letting the kubeadm bootstrap token group post node CSRs, have them
// auto-approved and read nodes, and nodes have the renewals of their own
// client certificates auto-approved.
//
// The scheduler and operator only read these; the sandbox seed and
// bootstraptest create them, so that both set up the same cluster.
func KubeadmJoinObjects(server string, caPEM []byte) (*KubeadmObjects, error) {
	clusterInfo, err := ClusterInfoConfigMap(server, caPEM)
	if err != nil {
		return nil, err
	}
	bootstrappers, nodes := group(kubeadmconstants.NodeBootstrapTokenAuthGroup), group(kubeadmconstants.NodesGroup)
	clusterRole := func(name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
	}
	return &KubeadmObjects{
		ConfigMaps: []*corev1.ConfigMap{clusterInfo},
		Roles: []*rbacv1.Role{{
			ObjectMeta: metav1.ObjectMeta{Name: ClusterInfoRole, Namespace: metav1.NamespacePublic},
			Rules:      readConfigMap(bootstrapapi.ConfigMapClusterInfo),
		}},
		RoleBindings: []*rbacv1.RoleBinding{{
			ObjectMeta: metav1.ObjectMeta{Name: ClusterInfoRole, Namespace: metav1.NamespacePublic},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ClusterInfoRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user.Anonymous}},
		}},
		ClusterRoles: []*rbacv1.ClusterRole{{
			ObjectMeta: metav1.ObjectMeta{Name: kubeadmconstants.GetNodesClusterRoleName},
			Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"nodes"}}},
		}},
		ClusterRoleBindings: []*rbacv1.ClusterRoleBinding{
			// bootstrap tokens may post CSRs
			{ObjectMeta: metav1.ObjectMeta{Name: kubeadmconstants.NodeKubeletBootstrap},
				RoleRef: clusterRole(kubeadmconstants.NodeBootstrapperClusterRoleName), Subjects: bootstrappers},
			// and read the node they are about to register under
			{ObjectMeta: metav1.ObjectMeta{Name: kubeadmconstants.GetNodesClusterRoleName},
				RoleRef: clusterRole(kubeadmconstants.GetNodesClusterRoleName), Subjects: bootstrappers},
			// their node client CSRs are auto-approved
			{ObjectMeta: metav1.ObjectMeta{Name: kubeadmconstants.NodeAutoApproveBootstrapClusterRoleBinding},
				RoleRef: clusterRole(kubeadmconstants.CSRAutoApprovalClusterRoleName), Subjects: bootstrappers},
			// nodes' renewals of their own client certificates are auto-approved
			{ObjectMeta: metav1.ObjectMeta{Name: kubeadmconstants.NodeAutoApproveCertificateRotationClusterRoleBinding},
				RoleRef: clusterRole(kubeadmconstants.NodeSelfCSRAutoApprovalClusterRoleName), Subjects: nodes},
		},
	}, nil
}

// group is the RBAC subjects for groups, as kubeadm writes them.
func group(names ...string) []rbacv1.Subject {
	out := make([]rbacv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n})
	}
	return out
}

// readConfigMap lets the subject get the named ConfigMap.
func readConfigMap(name string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{name}}}
}

// Create creates the objects; those that exist already are left as they
// are, so Create may be called again after an error.
func (o *KubeadmObjects) Create(ctx context.Context, client kubernetes.Interface) error {
	core, rbac := client.CoreV1(), client.RbacV1()
	var steps []func() (string, error)
	for _, x := range o.ConfigMaps {
		steps = append(steps, func() (string, error) {
			_, err := core.ConfigMaps(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
			return "ConfigMap " + x.Namespace + "/" + x.Name, err
		})
	}
	for _, x := range o.Roles {
		steps = append(steps, func() (string, error) {
			_, err := rbac.Roles(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
			return "Role " + x.Namespace + "/" + x.Name, err
		})
	}
	for _, x := range o.RoleBindings {
		steps = append(steps, func() (string, error) {
			_, err := rbac.RoleBindings(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
			return "RoleBinding " + x.Namespace + "/" + x.Name, err
		})
	}
	for _, x := range o.ClusterRoles {
		steps = append(steps, func() (string, error) {
			_, err := rbac.ClusterRoles().Create(ctx, x, metav1.CreateOptions{})
			return "ClusterRole " + x.Name, err
		})
	}
	for _, x := range o.ClusterRoleBindings {
		steps = append(steps, func() (string, error) {
			_, err := rbac.ClusterRoleBindings().Create(ctx, x, metav1.CreateOptions{})
			return "ClusterRoleBinding " + x.Name, err
		})
	}
	for _, step := range steps {
		if what, err := step(); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s: %w", what, err)
		}
	}
	return nil
}
