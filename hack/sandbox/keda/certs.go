package keda

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	certutil "k8s.io/client-go/util/cert"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pkiutil"
)

// Certs are what KEDA's certificate manager would put in its cert
// directory (ca.crt, tls.crt, tls.key): a KEDA CA and one certificate,
// for serving and as a client, that the operator's gRPC metrics service,
// the metrics server's gRPC client (mutual TLS, same CA) and the metrics
// server's HTTPS endpoint (verified by the aggregator with the
// APIService's caBundle) all use. The sandbox makes them so that the
// operator runs without --enable-cert-rotation, which would also patch
// webhooks and need a Secret.
type Certs struct {
	Dir    string
	CAData []byte // PEM, the APIService's caBundle
}

// writeCerts makes the CA and the certificate, valid for the Services'
// names, the loopback address the processes listen on and hostIP.
func writeCerts(dir string, hostIP net.IP) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	const alg = kubeadmapi.EncryptionAlgorithmRSA2048
	ca, caKey, err := pkiutil.NewCertificateAuthority(&pkiutil.CertConfig{
		Config: certutil.Config{CommonName: "KEDA", Organization: []string{"KEDAORG"}}, EncryptionAlgorithm: alg,
	})
	if err != nil {
		return nil, fmt.Errorf("KEDA CA: %w", err)
	}
	var names []string
	for _, svc := range []string{OperatorService, MetricsService} {
		names = append(names, svc, svc+"."+Namespace, svc+"."+Namespace+".svc", svc+"."+Namespace+".svc.cluster.local")
	}
	cert, key, err := pkiutil.NewCertAndKey(ca, caKey, &pkiutil.CertConfig{
		Config: certutil.Config{
			CommonName: OperatorService + "." + Namespace + ".svc", Organization: []string{"KEDAORG"},
			AltNames: certutil.AltNames{DNSNames: names, IPs: []net.IP{net.ParseIP("127.0.0.1"), hostIP}},
			Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		},
		EncryptionAlgorithm: alg,
	})
	if err != nil {
		return nil, fmt.Errorf("KEDA certificate: %w", err)
	}
	if err := pkiutil.WriteCertAndKey(dir, "tls", cert, key); err != nil {
		return nil, err
	}
	caData := pkiutil.EncodeCertPEM(ca)
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), caData, 0o644); err != nil {
		return nil, err
	}
	return &Certs{Dir: dir, CAData: caData}, nil
}
