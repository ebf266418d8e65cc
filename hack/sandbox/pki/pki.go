// Package pki generates the sandbox cluster's certificates the way `kubeadm
// init` does (kubeadm's own pkiutil, kubeadm's file names): the cluster CA,
// the front-proxy CA, the API server's serving and kubelet-client
// certificates, the front-proxy client, the service account key pair, and
// client certificates for the admin, the controller manager and the
// scheduler, written as kubeconfigs.
package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pkiutil"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
)

// Key algorithm: kubeadm's default.
const algorithm = kubeadmapi.EncryptionAlgorithmRSA2048

// ServiceClusterIPRange is the apiserver's --service-cluster-ip-range
// (kubeadm's default); its first address is in the serving certificate.
const ServiceClusterIPRange = "10.96.0.0/12"

// PKI is a generated cluster PKI on disk.
type PKI struct {
	// Dir holds the files under kubeadm's names (ca.crt, apiserver.key, sa.pub, ...).
	Dir string

	CA     *x509.Certificate
	CAKey  crypto.Signer
	CAData []byte // PEM
	// CACertHash is kubeadm's discovery hash of the CA: "sha256:<64 hex>".
	CACertHash string
}

// Path returns the path of a file in the PKI directory.
func (p *PKI) Path(name string) string { return filepath.Join(p.Dir, name) }

// newCA makes a certificate authority and writes it to dir/name.{crt,key}.
func newCA(dir, name, commonName string) (*x509.Certificate, crypto.Signer, error) {
	ca, key, err := pkiutil.NewCertificateAuthority(&pkiutil.CertConfig{
		Config: certutil.Config{CommonName: commonName}, EncryptionAlgorithm: algorithm,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := pkiutil.WriteCertAndKey(dir, name, ca, key); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// Generate writes a fresh PKI into dir. The API server's serving certificate
// is valid for the loopback addresses it listens on.
func Generate(dir string) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, caKey, err := newCA(dir, "ca", "kubernetes")
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	p := &PKI{Dir: dir, CA: ca, CAKey: caKey, CAData: pkiutil.EncodeCertPEM(ca), CACertHash: pubkeypin.Hash(ca)}

	serviceIP := net.ParseIP("10.96.0.1")
	leaf := []struct {
		name string
		cfg  certutil.Config
	}{
		{"apiserver", certutil.Config{
			CommonName: "kube-apiserver",
			AltNames: certutil.AltNames{
				IPs:      []net.IP{net.ParseIP("127.0.0.1"), serviceIP},
				DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{"apiserver-kubelet-client", certutil.Config{
			CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		// The egress proxy (a Konnectivity server's place) and the API
		// server's client certificate for it.
		{"egress-proxy", certutil.Config{
			CommonName: "egress-proxy", AltNames: certutil.AltNames{IPs: []net.IP{net.ParseIP("127.0.0.1")}},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{"egress-proxy-client", certutil.Config{
			CommonName: "kube-apiserver-egress-client",
			Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, l := range leaf {
		cfg := l.cfg
		cert, key, err := pkiutil.NewCertAndKey(ca, caKey, &pkiutil.CertConfig{Config: cfg, EncryptionAlgorithm: algorithm})
		if err != nil {
			return nil, fmt.Errorf("%s certificate: %w", l.name, err)
		}
		if err := pkiutil.WriteCertAndKey(dir, l.name, cert, key); err != nil {
			return nil, err
		}
	}

	fpCA, fpKey, err := newCA(dir, "front-proxy-ca", "front-proxy-ca")
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	fpClient, fpClientKey, err := pkiutil.NewCertAndKey(fpCA, fpKey, &pkiutil.CertConfig{
		Config:              certutil.Config{CommonName: "front-proxy-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		EncryptionAlgorithm: algorithm,
	})
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	if err := pkiutil.WriteCertAndKey(dir, "front-proxy-client", fpClient, fpClientKey); err != nil {
		return nil, err
	}

	saKey, err := pkiutil.NewPrivateKey(algorithm)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	if err := pkiutil.WriteKey(dir, "sa", saKey); err != nil {
		return nil, err
	}
	if err := pkiutil.WritePublicKey(dir, "sa", saKey.Public()); err != nil {
		return nil, err
	}
	return p, nil
}

// EgressProxyTLS is the egress proxy's server configuration: its
// certificate, and the API server's client certificate required.
func (p *PKI) EgressProxyTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.Path("egress-proxy.crt"), p.Path("egress-proxy.key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// ClientCert issues a client certificate signed by the cluster CA: the
// credentials kubeadm writes into admin.conf, controller-manager.conf,
// scheduler.conf and a control-plane node's kubelet.conf.
func (p *PKI) ClientCert(commonName string, organizations ...string) (certPEM, keyPEM []byte, err error) {
	cert, key, err := pkiutil.NewCertAndKey(p.CA, p.CAKey, &pkiutil.CertConfig{
		Config: certutil.Config{
			CommonName: commonName, Organization: organizations,
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
		EncryptionAlgorithm: algorithm,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate for %s: %w", commonName, err)
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pkiutil.EncodeCertPEM(cert), keyPEM, nil
}

// Kubeconfig is a kubeconfig with embedded client certificate credentials.
type Kubeconfig struct {
	Path   string
	Config *rest.Config
}

// WriteKubeconfig issues a client certificate and writes a kubeconfig for
// server at path, as kubeadm's kubeconfig phase does (cluster "kubernetes",
// context "<user>@kubernetes").
func (p *PKI) WriteKubeconfig(path, server, user, commonName string, organizations ...string) (*Kubeconfig, error) {
	certPEM, keyPEM, err := p.ClientCert(commonName, organizations...)
	if err != nil {
		return nil, err
	}
	ctxName := user + "@kubernetes"
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"kubernetes": {Server: server, CertificateAuthorityData: p.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{user: {ClientCertificateData: certPEM, ClientKeyData: keyPEM}},
		Contexts:       map[string]*clientcmdapi.Context{ctxName: {Cluster: "kubernetes", AuthInfo: user}},
		CurrentContext: ctxName,
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := clientcmd.WriteToFile(cfg, path); err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(cfg, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	return &Kubeconfig{Path: path, Config: rc}, nil
}
