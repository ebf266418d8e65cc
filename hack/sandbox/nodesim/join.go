package nodesim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletbootstrap "k8s.io/kubernetes/pkg/kubelet/certificate/bootstrap"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
)

// kubeadm's names for what `kubeadm join` reads from the cluster.
const (
	KubeadmConfigConfigMap = "kubeadm-config"
	KubeletConfigConfigMap = "kubelet-config"
	// ClusterConfigurationKey and KubeletBaseConfigurationKey are the keys
	// in those ConfigMaps.
	ClusterConfigurationKey     = "ClusterConfiguration"
	KubeletBaseConfigurationKey = "kubelet"
)

// JoinOptions are the parts of a join that do not come from the user data.
type JoinOptions struct {
	// Dir holds the node's files: bootstrap-kubelet.conf, kubelet.conf and
	// pki/ (kubelet-client-current.pem), as /etc/kubernetes and
	// /var/lib/kubelet would.
	Dir string
	// DiscoveryTimeout bounds kubeadm's token discovery (kubeadm: 5m).
	DiscoveryTimeout time.Duration
	// CSRTimeout bounds the wait for the client certificate.
	CSRTimeout time.Duration
}

// Joined is a node that completed `kubeadm join`: its name, the
// kubelet's credentials and configuration, and what the user data asked
// the kubelet for.
type Joined struct {
	NodeName   string
	Config     *rest.Config
	Join       join.JoinScript
	Settings   KubeletSettings
	ProviderID string
}

// Join does what `kubeadm join` and the kubelet's TLS bootstrap do with a
// node's user data: parse it, run kubeadm's token discovery against the
// API server (checking the CA pin), read kubeadm-config and kubelet-config
// with the bootstrap token, and request the kubelet's client certificate.
// hostname is the node name when the join has no --node-name. An error
// means the node never joins; it says why and never carries the token.
func Join(ctx context.Context, userData, hostname string, base KubeletSettings, o JoinOptions) (*Joined, error) {
	j, err := join.ParseJoin(userData)
	if err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("kubeadm join: %w", err)
	}
	nodeName := j.NodeName
	if nodeName == "" {
		nodeName = strings.ToLower(hostname)
	}
	if nodeName == "" {
		return nil, errors.New("no --node-name and no hostname")
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "pki"), 0o700); err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithValues("node", nodeName)
	ctx = klog.NewContext(ctx, logger)

	// [discovery] kubeadm's token discovery, CA pinned.
	bootstrapKubeconfig, err := join.Discover(ctx, j, o.DiscoveryTimeout)
	if err != nil {
		return nil, err
	}
	bootstrapPath := filepath.Join(o.Dir, "bootstrap-kubelet.conf")
	if err := clientcmd.WriteToFile(*bootstrapKubeconfig, bootstrapPath); err != nil {
		return nil, err
	}
	bootstrapConfig, err := clientcmd.NewDefaultClientConfig(*bootstrapKubeconfig, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	bootstrapClient, err := kubernetes.NewForConfig(bootstrapConfig)
	if err != nil {
		return nil, err
	}

	// [preflight] Reading configuration from the cluster...
	settings := base
	if _, err := bootstrapClient.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, KubeadmConfigConfigMap, metav1.GetOptions{}); err != nil {
		return nil, fmt.Errorf("reading the kubeadm ClusterConfiguration (kube-system/%s) with the bootstrap token: %w", KubeadmConfigConfigMap, err)
	}
	kubeletCM, err := bootstrapClient.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, KubeletConfigConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the kubelet configuration (kube-system/%s) with the bootstrap token: %w", KubeletConfigConfigMap, err)
	}
	if err := applyKubeletConfig(&settings, kubeletCM.Data[KubeletBaseConfigurationKey]); err != nil {
		return nil, fmt.Errorf("kube-system/%s: %w", KubeletConfigConfigMap, err)
	}
	if j.MaxPods != nil {
		settings.MaxPods = *j.MaxPods
	}

	// [kubelet-start] the kubelet's TLS bootstrap.
	csrCtx, cancel := context.WithTimeout(ctx, o.CSRTimeout)
	defer cancel()
	kubeconfigPath := filepath.Join(o.Dir, "kubelet.conf")
	if err := kubeletbootstrap.LoadClientCert(csrCtx, kubeconfigPath, bootstrapPath, filepath.Join(o.Dir, "pki"), types.NodeName(nodeName)); err != nil {
		return nil, fmt.Errorf("TLS bootstrap: %w", err)
	}
	nodeConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfigPath, err)
	}
	return &Joined{NodeName: nodeName, Config: nodeConfig, Join: j, Settings: settings, ProviderID: kubeletFlag(j.KubeletArgs, "provider-id")}, nil
}

// applyKubeletConfig reads the fields of a KubeletConfiguration the
// simulator acts on.
func applyKubeletConfig(s *KubeletSettings, data string) error {
	if strings.TrimSpace(data) == "" {
		return nil
	}
	var kc kubeletv1beta1.KubeletConfiguration
	if err := yaml.Unmarshal([]byte(data), &kc); err != nil {
		return fmt.Errorf("parsing the KubeletConfiguration: %w", err)
	}
	if kc.MaxPods > 0 {
		s.MaxPods = kc.MaxPods
	}
	if v, ok := kc.EvictionHard["memory.available"]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return fmt.Errorf("evictionHard memory.available: %w", err)
		}
		s.EvictionHardMemory = q
	}
	if v, ok := kc.EvictionHard["nodefs.available"]; ok && strings.HasSuffix(v, "%") {
		var pct int64
		if _, err := fmt.Sscanf(v, "%d%%", &pct); err == nil {
			s.EvictionHardNodefsPercent = pct
		}
	}
	parse := func(m map[string]string) (corev1.ResourceList, error) {
		out := corev1.ResourceList{}
		for k, v := range m {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return nil, fmt.Errorf("%s=%s: %w", k, v, err)
			}
			out[corev1.ResourceName(k)] = q
		}
		return out, nil
	}
	var err error
	if s.SystemReserved, err = parse(kc.SystemReserved); err != nil {
		return err
	}
	if s.KubeReserved, err = parse(kc.KubeReserved); err != nil {
		return err
	}
	if kc.NodeLeaseDurationSeconds > 0 {
		s.LeaseDuration = time.Duration(kc.NodeLeaseDurationSeconds) * time.Second
	}
	if kc.NodeStatusUpdateFrequency.Duration > 0 {
		s.StatusUpdateFrequency = kc.NodeStatusUpdateFrequency.Duration
	}
	if kc.NodeStatusReportFrequency.Duration > 0 {
		s.StatusReportFrequency = kc.NodeStatusReportFrequency.Duration
	}
	return nil
}

// kubeletFlag returns the value of --name in the kubelet's arguments.
func kubeletFlag(args []string, name string) string {
	for i, a := range args {
		n, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n != name || !strings.HasPrefix(a, "-") {
			continue
		}
		if hasValue {
			return v
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
