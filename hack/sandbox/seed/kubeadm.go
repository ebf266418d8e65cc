// Package seed fills a fresh sandbox with the seed's cluster: what `kubeadm
// init` leaves behind for joining nodes, a bootstrap token as `kubeadm
// token create` makes it with its value and CA hash in SSM (the runbook's
// step 3), the VPC, subnets, security group and AMI the EC2NodeClass
// selects, the Karpenter CRDs with the example NodePool and EC2NodeClass,
// and the scan-worker Deployment.
package seed

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	bootstraptokenv1 "k8s.io/kubernetes/cmd/kubeadm/app/apis/bootstraptoken/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	kubeadmconstants "k8s.io/kubernetes/cmd/kubeadm/app/constants"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

// nodesKubeadmConfigRole is kubeadm's uploadconfig.NodesKubeadmConfigClusterRoleName.
const nodesKubeadmConfigRole = "kubeadm:nodes-kubeadm-config"

// KubeadmCluster describes the cluster for the objects kubeadm writes.
type KubeadmCluster struct {
	ClusterName string
	// Server is the API server URL, https://host:port.
	Server string
	CAData []byte
	// KubernetesVersion, PodSubnet and ServiceSubnet go into kubeadm-config.
	KubernetesVersion string
	PodSubnet         string
	ServiceSubnet     string
	// NodeLeaseDurationSeconds goes into kubelet-config (kubelet: 40).
	NodeLeaseDurationSeconds int32
}

// Kubeadm creates what `kubeadm init` leaves for joining nodes: the
// kube-public/cluster-info ConfigMap and its anonymous RBAC, and the RBAC
// that lets bootstrap tokens post CSRs which are then auto-approved and lets
// nodes renew theirs (phase bootstrap-token: bootstrap.KubeadmJoinObjects,
// which bootstraptest creates too); the kubeadm-config and kubelet-config
// ConfigMaps with the Roles that let joining nodes read them (phases
// upload-config), and the kubeadm:cluster-admins binding.
func Kubeadm(ctx context.Context, client kubernetes.Interface, c KubeadmCluster) error {
	if err := waitForNamespace(ctx, client, metav1.NamespacePublic); err != nil {
		return err
	}
	if err := waitForNamespace(ctx, client, metav1.NamespaceSystem); err != nil {
		return err
	}
	endpoint := strings.TrimPrefix(c.Server, "https://")
	clusterConfig, err := yaml.Marshal(&kubeadmv1beta4.ClusterConfiguration{
		TypeMeta:             metav1.TypeMeta{APIVersion: kubeadmv1beta4.SchemeGroupVersion.String(), Kind: "ClusterConfiguration"},
		ClusterName:          c.ClusterName,
		KubernetesVersion:    c.KubernetesVersion,
		ControlPlaneEndpoint: endpoint,
		CertificatesDir:      "/etc/kubernetes/pki",
		ImageRepository:      "registry.k8s.io",
		Networking:           kubeadmv1beta4.Networking{DNSDomain: "cluster.local", PodSubnet: c.PodSubnet, ServiceSubnet: c.ServiceSubnet},
	})
	if err != nil {
		return err
	}
	kubeletConfig, err := yaml.Marshal(&kubeletv1beta1.KubeletConfiguration{
		TypeMeta:                 metav1.TypeMeta{APIVersion: kubeletv1beta1.SchemeGroupVersion.String(), Kind: "KubeletConfiguration"},
		CgroupDriver:             "systemd",
		ClusterDNS:               []string{"10.96.0.10"},
		ClusterDomain:            "cluster.local",
		RotateCertificates:       true,
		StaticPodPath:            "/etc/kubernetes/manifests",
		MaxPods:                  110,
		NodeLeaseDurationSeconds: c.NodeLeaseDurationSeconds,
		EvictionHard:             map[string]string{"memory.available": "100Mi", "nodefs.available": "10%", "imagefs.available": "15%", "nodefs.inodesFree": "5%"},
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true)},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: "/etc/kubernetes/pki/ca.crt"},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
	})
	if err != nil {
		return err
	}

	objs, err := bootstrap.KubeadmJoinObjects(c.Server, c.CAData)
	if err != nil {
		return err
	}
	group := func(names ...string) []rbacv1.Subject {
		out := make([]rbacv1.Subject, 0, len(names))
		for _, n := range names {
			out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n})
		}
		return out
	}
	role := func(name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
	}
	readConfigMap := func(name string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{name}}}
	}
	bootstrappers, nodes := kubeadmconstants.NodeBootstrapTokenAuthGroup, kubeadmconstants.NodesGroup
	inKubeSystem := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem}
	}
	objs.ConfigMaps = append(objs.ConfigMaps,
		&corev1.ConfigMap{ObjectMeta: inKubeSystem(kubeadmconstants.KubeadmConfigConfigMap),
			Data: map[string]string{kubeadmconstants.ClusterConfigurationConfigMapKey: string(clusterConfig)}},
		&corev1.ConfigMap{ObjectMeta: inKubeSystem(kubeadmconstants.KubeletBaseConfigurationConfigMap),
			Data: map[string]string{kubeadmconstants.KubeletBaseConfigurationConfigMapKey: string(kubeletConfig)}},
	)
	objs.Roles = append(objs.Roles,
		&rbacv1.Role{ObjectMeta: inKubeSystem(nodesKubeadmConfigRole), Rules: readConfigMap(kubeadmconstants.KubeadmConfigConfigMap)},
		&rbacv1.Role{ObjectMeta: inKubeSystem(kubeadmconstants.KubeletBaseConfigMapRole), Rules: readConfigMap(kubeadmconstants.KubeletBaseConfigurationConfigMap)},
	)
	objs.RoleBindings = append(objs.RoleBindings,
		&rbacv1.RoleBinding{ObjectMeta: inKubeSystem(nodesKubeadmConfigRole),
			RoleRef: role(nodesKubeadmConfigRole), Subjects: group(bootstrappers, nodes)},
		&rbacv1.RoleBinding{ObjectMeta: inKubeSystem(kubeadmconstants.KubeletBaseConfigMapRole),
			RoleRef: role(kubeadmconstants.KubeletBaseConfigMapRole), Subjects: group(nodes, bootstrappers)},
	)
	objs.ClusterRoleBindings = append(objs.ClusterRoleBindings, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: kubeadmconstants.ClusterAdminsGroupAndClusterRoleBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   group(kubeadmconstants.ClusterAdminsGroupAndClusterRoleBinding),
	})
	return retry(ctx, func() error { return objs.Create(ctx, client) })
}

// Token is a bootstrap token and where it can be joined with.
type Token struct {
	// Token is "<id>.<secret>".
	Token   string
	Expires time.Time
}

// ID is the token's public half.
func (t Token) ID() string { id, _, _ := strings.Cut(t.Token, "."); return id }

// CreateToken does what `kubeadm token create` does: generates a token
// and stores it as the bootstrap token Secret kube-system/bootstrap-token-<id>
// with kubeadm's defaults (24h TTL, usable for authentication and for
// signing cluster-info, in group system:bootstrappers:kubeadm:default-node-token),
// written by kubeadm's own BootstrapTokenToSecret.
func CreateToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration) (Token, error) {
	return createToken(ctx, client, func(bt *bootstraptokenv1.BootstrapToken) {
		if ttl > 0 {
			bt.TTL = &metav1.Duration{Duration: ttl}
		}
	})
}

// CreateExpiredToken writes the Secret of a bootstrap token that expired a
// minute ago, as the runbook's `kubeadm token create` of yesterday leaves
// it (kube-controller-manager's token cleaner deletes it soon after).
func CreateExpiredToken(ctx context.Context, client kubernetes.Interface) (Token, error) {
	return createToken(ctx, client, func(bt *bootstraptokenv1.BootstrapToken) {
		expires := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
		bt.TTL, bt.Expires = nil, &expires
	})
}

// createToken generates a token, gives it kubeadm's defaults as lifetime
// changes them, and stores its Secret; the expiry returned is the Secret's.
func createToken(ctx context.Context, client kubernetes.Interface, lifetime func(*bootstraptokenv1.BootstrapToken)) (Token, error) {
	tokenString, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return Token{}, err
	}
	bts, err := bootstraptokenv1.NewBootstrapTokenString(tokenString)
	if err != nil {
		return Token{}, err
	}
	bt := &bootstraptokenv1.BootstrapToken{Token: bts}
	bootstraptokenv1.SetDefaults_BootstrapToken(bt)
	lifetime(bt)
	secret := bootstraptokenv1.BootstrapTokenToSecret(bt)
	if err := retry(ctx, func() error {
		_, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, secret, metav1.CreateOptions{})
		return err
	}); err != nil {
		return Token{}, fmt.Errorf("creating bootstrap token secret %s: %w", secret.Name, err)
	}
	expires, _ := time.Parse(time.RFC3339, string(secret.Data[bootstrapapi.BootstrapTokenExpirationKey]))
	return Token{Token: tokenString, Expires: expires}, nil
}

// WaitForSignature waits until the bootstrap signer (kube-controller-manager)
// has signed cluster-info for the token: until then kubeadm's discovery
// with it waits.
func WaitForSignature(ctx context.Context, client kubernetes.Interface, tokenID string, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		_, ok := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+tokenID]
		return ok, nil
	})
}

// JoinCommand is what `kubeadm token create --print-join-command` prints.
func JoinCommand(endpoint string, t Token, caCertHash string) string {
	return fmt.Sprintf("kubeadm join %s --token %s --discovery-token-ca-cert-hash %s", endpoint, t.Token, caCertHash)
}

func waitForNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return err == nil, nil
	})
}

// retry retries transient errors (the API server settling its RBAC and
// admission right after start) for a few seconds.
func retry(ctx context.Context, f func() error) error {
	var err error
	for i := 0; i < 50; i++ {
		err = f()
		if err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}
