// Package bootstraptest starts a kube-apiserver set up the way `kubeadm
// init` leaves a cluster for joining nodes: a kubeadm (pkiutil) cluster CA
// that signs the serving certificate, bootstrap token
// authentication, RBAC, kube-public/cluster-info and its anonymous RBAC, and
// the bootstrap token bindings for CSRs. SignClusterInfo stands in for
// kube-controller-manager's bootstrap signer.
package bootstraptest

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	bootstrapsecretutil "k8s.io/cluster-bootstrap/util/secrets"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pkiutil"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// Cluster is a kube-apiserver ready for `kubeadm join`.
type Cluster struct {
	*env.APIServer
	// Server is the API server URL as cluster-info publishes it.
	Server string
	// Endpoint is Server as host:port.
	Endpoint string
	// CAData is the cluster CA, PEM.
	CAData []byte
	// CACertHashes are the CA's kubeadm discovery hashes.
	CACertHashes []string
}

// StartCluster starts the apiserver with bootstrap token auth and RBAC (plus
// any extra flags), serving with a certificate from a fresh kubeadm cluster
// CA, and publishes cluster-info with the RBAC kubeadm init creates.
func StartCluster(t testing.TB, flags ...string) *Cluster {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, err := pkiutil.NewCertificateAuthority(&pkiutil.CertConfig{
		Config:              certutil.Config{CommonName: "kubernetes"},
		EncryptionAlgorithm: kubeadmapi.EncryptionAlgorithmECDSAP256,
	})
	if err != nil {
		t.Fatalf("cluster CA: %v", err)
	}
	serving, servingKey, err := pkiutil.NewCertAndKey(ca, caKey, &pkiutil.CertConfig{
		Config: certutil.Config{
			CommonName: "kube-apiserver",
			AltNames:   certutil.AltNames{IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost", "kubernetes", "kubernetes.default"}},
			Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		},
		EncryptionAlgorithm: kubeadmapi.EncryptionAlgorithmECDSAP256,
	})
	if err != nil {
		t.Fatalf("apiserver serving certificate: %v", err)
	}
	if err := pkiutil.WriteCertAndKey(dir, "apiserver", serving, servingKey); err != nil {
		t.Fatal(err)
	}
	// --cert-dir rather than --tls-cert-file: the test server points its peer
	// proxy CA at <cert-dir>/apiserver.crt and fails if that is missing.
	args := append([]string{
		"--enable-bootstrap-token-auth",
		"--authorization-mode=Node,RBAC",
		"--cert-dir=" + dir,
	}, flags...)
	api := env.StartAPIServer(t, args...)

	c := &Cluster{APIServer: api, Server: api.Config.Host, CAData: pkiutil.EncodeCertPEM(ca)}
	if c.Endpoint, err = bootstrap.NormalizeEndpoint(c.Server); err != nil {
		t.Fatal(err)
	}
	if c.CACertHashes, err = bootstrap.CACertHashes(c.CAData); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := PublishClusterInfo(ctx, api.Client, c.Server, c.CAData); err != nil {
		t.Fatal(err)
	}
	return c
}

// SignClusterInfo signs cluster-info for every signing token, like the
// bootstrap signer.
func (c *Cluster) SignClusterInfo(ctx context.Context) error {
	return SignClusterInfo(ctx, c.Client, time.Now())
}

// CreateToken writes a bootstrap token Secret of the node token group, valid
// until expires, as `kubeadm token create` does; it is not signed yet.
func (c *Cluster) CreateToken(t testing.TB, ctx context.Context, id, secret string, expires time.Time) {
	t.Helper()
	_, err := c.Client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.BootstrapTokenSecretPrefix + id, Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenExpirationKey:       expires.UTC().Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      bootstrap.DefaultNodeTokenGroup,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// PublishClusterInfo does what `kubeadm init`'s bootstrap-token phase does:
// creates bootstrap.KubeadmJoinObjects, kube-public/cluster-info holding the
// server URL and CA in an unnamed cluster, readable by system:anonymous,
// and the bindings of the kubeadm bootstrap token group to creating and
// auto-approving node CSRs and reading nodes.
func PublishClusterInfo(ctx context.Context, client kubernetes.Interface, server string, caPEM []byte) error {
	if err := waitForNamespace(ctx, client, metav1.NamespacePublic); err != nil {
		return err
	}
	objs, err := bootstrap.KubeadmJoinObjects(server, caPEM)
	if err != nil {
		return err
	}
	return objs.Create(ctx, client)
}

// SignClusterInfo adds a jws-kubeconfig-<id> signature of cluster-info's
// kubeconfig for every unexpired bootstrap token allowed to sign, and drops
// signatures of tokens that are gone: what kube-controller-manager's
// bootstrap signer does.
func SignClusterInfo(ctx context.Context, client kubernetes.Interface, now time.Time) error {
	cms := client.CoreV1().ConfigMaps(metav1.NamespacePublic)
	cm, err := cms.Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading cluster-info: %w", err)
	}
	content, ok := cm.Data[bootstrapapi.KubeConfigKey]
	if !ok {
		return fmt.Errorf("cluster-info has no %s key", bootstrapapi.KubeConfigKey)
	}
	secrets, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken)})
	if err != nil {
		return fmt.Errorf("listing bootstrap tokens: %w", err)
	}
	data := map[string]string{}
	for k, v := range cm.Data {
		if !strings.HasPrefix(k, bootstrapapi.JWSSignatureKeyPrefix) {
			data[k] = v
		}
	}
	for i := range secrets.Items {
		s := &secrets.Items[i]
		id, ok := bootstrapsecretutil.ParseName(s.Name)
		if !ok || bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenIDKey) != id ||
			bootstrapsecretutil.HasExpired(s, now) ||
			bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenUsageSigningKey) != "true" {
			continue
		}
		secret := bootstrapsecretutil.GetData(s, bootstrapapi.BootstrapTokenSecretKey)
		if secret == "" {
			continue
		}
		sig, err := jws.ComputeDetachedSignature(content, id, secret)
		if err != nil {
			return fmt.Errorf("signing cluster-info for token %s: %w", id, err)
		}
		data[bootstrapapi.JWSSignatureKeyPrefix+id] = sig
	}
	cm.Data = data
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating cluster-info: %w", err)
	}
	return nil
}

func waitForNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = nil
			}
		}
		return err == nil, nil
	})
}
