package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
)

// ClusterInfo is what a joining node needs to find and trust the API server.
type ClusterInfo struct {
	// Endpoint is the API server as `kubeadm join` takes it: host:port.
	Endpoint string
	// CAData is the cluster CA bundle, PEM.
	CAData []byte
	// CACertHashes are the public key pins of every CA certificate in
	// CAData, "sha256:<hex>", as `kubeadm token create --print-join-command` prints them.
	CACertHashes []string
}

// ClusterInfoOverrides are explicit settings from the plugin args that win
// over what kube-public/cluster-info says.
type ClusterInfoOverrides struct {
	// Endpoint is host:port or an https:// URL.
	Endpoint string
	// CAData is a PEM CA bundle.
	CAData []byte
}

// DiscoverClusterInfo reads kube-public/cluster-info, the ConfigMap `kubeadm
// init` publishes for token discovery, and applies the overrides. When both
// overrides are set the ConfigMap is not read.
func DiscoverClusterInfo(ctx context.Context, client kubernetes.Interface, o ClusterInfoOverrides) (*ClusterInfo, error) {
	logger := klog.FromContext(ctx)
	ci := &ClusterInfo{}
	if o.Endpoint == "" || len(o.CAData) == 0 {
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no ConfigMap %s/%s: this cluster was not set up by kubeadm init for token discovery; set the API endpoint and CA in the plugin args",
				metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo)
		}
		if err != nil {
			return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, err)
		}
		if ci, err = ParseClusterInfo(cm); err != nil {
			return nil, err
		}
	}
	if o.Endpoint != "" {
		ep, err := NormalizeEndpoint(o.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("explicit API endpoint: %w", err)
		}
		if ci.Endpoint != "" && ci.Endpoint != ep {
			logger.V(2).Info("Explicit API endpoint overrides cluster-info", "explicit", ep, "clusterInfo", ci.Endpoint)
		}
		ci.Endpoint = ep
	}
	if len(o.CAData) > 0 {
		hashes, err := CACertHashes(o.CAData)
		if err != nil {
			return nil, fmt.Errorf("explicit CA: %w", err)
		}
		ci.CAData, ci.CACertHashes = o.CAData, hashes
	}
	return ci, nil
}

// ParseClusterInfo reads the endpoint and CA out of a cluster-info ConfigMap.
// Like kubeadm it takes the unnamed cluster, else the current context's one;
// a kubeconfig with exactly one cluster is accepted too.
func ParseClusterInfo(cm *corev1.ConfigMap) (*ClusterInfo, error) {
	where := fmt.Sprintf("ConfigMap %s/%s", cm.Namespace, cm.Name)
	raw, ok := cm.Data[bootstrapapi.KubeConfigKey]
	if !ok || strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%s has no %q key", where, bootstrapapi.KubeConfigKey)
	}
	kc, err := clientcmd.Load([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: key %q is not a kubeconfig: %w", where, bootstrapapi.KubeConfigKey, err)
	}
	cluster := pickCluster(kc)
	if cluster == nil {
		return nil, fmt.Errorf("%s: the kubeconfig in key %q has no cluster", where, bootstrapapi.KubeConfigKey)
	}
	if cluster.Server == "" {
		return nil, fmt.Errorf("%s: the cluster in key %q has no server URL", where, bootstrapapi.KubeConfigKey)
	}
	endpoint, err := NormalizeEndpoint(cluster.Server)
	if err != nil {
		return nil, fmt.Errorf("%s: server URL: %w", where, err)
	}
	if len(cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("%s: the cluster in key %q has no CA (certificate-authority-data)", where, bootstrapapi.KubeConfigKey)
	}
	hashes, err := CACertHashes(cluster.CertificateAuthorityData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &ClusterInfo{Endpoint: endpoint, CAData: cluster.CertificateAuthorityData, CACertHashes: hashes}, nil
}

func pickCluster(kc *clientcmdapi.Config) *clientcmdapi.Cluster {
	if c := kc.Clusters[""]; c != nil {
		return c
	}
	if ctx := kc.Contexts[kc.CurrentContext]; ctx != nil {
		return kc.Clusters[ctx.Cluster]
	}
	if len(kc.Clusters) == 1 {
		for _, c := range kc.Clusters {
			return c
		}
	}
	return nil
}

// CACertHashes returns the kubeadm discovery hash ("sha256:<hex>" of the
// certificate's SubjectPublicKeyInfo, computed by kubeadm's pubkeypin) of
// every certificate in a PEM bundle.
func CACertHashes(caPEM []byte) ([]string, error) {
	certs, err := certutil.ParseCertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificates: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CA certificate in the PEM data")
	}
	hashes := make([]string, 0, len(certs))
	for _, c := range certs {
		hashes = append(hashes, pubkeypin.Hash(c))
	}
	return hashes, nil
}

// NormalizeEndpoint turns an API server URL or address into host:port, the
// form `kubeadm join` takes. Port 443 is assumed when none is given.
func NormalizeEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty API server endpoint")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("API server endpoint %q: %w", s, err)
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("API server endpoint %q: scheme must be https", s)
		}
		if u.Path != "" && u.Path != "/" {
			return "", fmt.Errorf("API server endpoint %q: kubeadm join cannot use a path", s)
		}
		s = u.Host
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare host name or IP (IPv6 possibly in brackets).
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "443"
	}
	if host == "" || strings.ContainsAny(host, "/ \t\n") {
		return "", fmt.Errorf("API server endpoint %q: no valid host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("API server endpoint %q: invalid port", s)
	}
	return net.JoinHostPort(host, port), nil
}
