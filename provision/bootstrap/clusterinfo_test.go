package bootstrap_test

import (
	"crypto/x509"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	kubeadmapi "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm"
	"k8s.io/kubernetes/cmd/kubeadm/app/util/pkiutil"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

func newCAPEM(t *testing.T) ([]byte, *x509.Certificate) {
	t.Helper()
	ca, _, err := pkiutil.NewCertificateAuthority(&pkiutil.CertConfig{
		Config:              certutil.Config{CommonName: "kubernetes"},
		EncryptionAlgorithm: kubeadmapi.EncryptionAlgorithmECDSAP256,
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkiutil.EncodeCertPEM(ca), ca
}

func TestParseClusterInfo(t *testing.T) {
	caPEM, _ := newCAPEM(t)
	ca2PEM, _ := newCAPEM(t)
	caB64 := base64.StdEncoding.EncodeToString(caPEM)
	bundleB64 := base64.StdEncoding.EncodeToString(append(append([]byte{}, caPEM...), ca2PEM...))
	hashes, _ := bootstrap.CACertHashes(caPEM)
	hashes2, _ := bootstrap.CACertHashes(ca2PEM)
	// What kubeadm init writes: one unnamed cluster, nothing else.
	kubeadmStyle := "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: " + caB64 + "\n    server: https://10.0.1.21:6443\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nusers: null\n"
	tests := []struct {
		name       string
		data       map[string]string
		wantEP     string
		wantHashes []string
		wantErr    string
	}{
		{name: "kubeadm's unnamed cluster", data: map[string]string{"kubeconfig": kubeadmStyle}, wantEP: "10.0.1.21:6443", wantHashes: hashes},
		{
			name: "current context's cluster, CA bundle, no port",
			data: map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {server: 'https://a.example.com', certificate-authority-data: " + caB64 + "}\n" +
				"- name: b\n  cluster: {server: 'https://api.example.com', certificate-authority-data: " + bundleB64 + "}\ncontexts:\n- name: ctx\n  context: {cluster: b}\ncurrent-context: ctx\n"},
			wantEP: "api.example.com:443", wantHashes: append(append([]string{}, hashes...), hashes2...),
		},
		{name: "no kubeconfig key", data: map[string]string{"other": "x"}, wantErr: `has no "kubeconfig" key`},
		{name: "not a kubeconfig", data: map[string]string{"kubeconfig": "{{{"}, wantErr: "is not a kubeconfig"},
		{name: "no cluster", data: map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\n"}, wantErr: "has no cluster"},
		{
			name:    "no server",
			data:    map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster: {certificate-authority-data: " + caB64 + "}\n"},
			wantErr: "has no server URL",
		},
		{
			name:    "no CA",
			data:    map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster: {server: 'https://10.0.1.21:6443'}\n"},
			wantErr: "has no CA",
		},
		{
			name:    "http server",
			data:    map[string]string{"kubeconfig": strings.Replace(kubeadmStyle, "https://", "http://", 1)},
			wantErr: "scheme must be https",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-public", Name: "cluster-info"}, Data: tt.data}
			got, err := bootstrap.ParseClusterInfo(cm)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "kube-public/cluster-info") {
					t.Errorf("error %q does not name the ConfigMap", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Endpoint != tt.wantEP || !reflect.DeepEqual(got.CACertHashes, tt.wantHashes) {
				t.Errorf("got %s %v, want %s %v", got.Endpoint, got.CACertHashes, tt.wantEP, tt.wantHashes)
			}
		})
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "10.0.1.21:6443", want: "10.0.1.21:6443"},
		{in: "https://10.0.1.21:6443", want: "10.0.1.21:6443"},
		{in: "https://10.0.1.21:6443/", want: "10.0.1.21:6443"},
		{in: "api.example.com", want: "api.example.com:443"},
		{in: "https://[fd00::1]:6443", want: "[fd00::1]:6443"},
		{in: "fd00::1", want: "[fd00::1]:443"},
		{in: "", wantErr: "empty"},
		{in: "http://10.0.1.21:6443", wantErr: "https"},
		{in: "10.0.1.21:http", wantErr: "invalid port"},
		{in: "10.0.1.21:70000", wantErr: "invalid port"},
		{in: "https://x/y", wantErr: "path"},
	}
	for _, tt := range tests {
		got, err := bootstrap.NormalizeEndpoint(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeEndpoint(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
