package env

import (
	"path"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
)

// APIServer is a real kube-apiserver running in this test process.
type APIServer struct {
	Config *rest.Config
	Client kubernetes.Interface
}

// StartAPIServer starts a kube-apiserver on the shared embedded etcd and stops
// it when the test ends. Extra flags go to the apiserver as on its command
// line. The ServiceAccount admission plugin is off unless a flag says
// otherwise, so tests can create pods without running the token controller.
func StartAPIServer(t testing.TB, flags ...string) *APIServer {
	t.Helper()
	etcd, err := SharedEtcd()
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	storage := storagebackend.NewDefaultConfig(path.Join(uuid.New().String(), "registry"), nil)
	storage.Transport.ServerList = []string{etcd.ClientURL}
	args := append([]string{"--disable-admission-plugins=ServiceAccount"}, flags...)
	server := kubeapiservertesting.StartTestServerOrDie(t, nil, args, storage)
	t.Cleanup(server.TearDownFn)
	cfg := rest.CopyConfig(server.ClientConfig)
	cfg.QPS, cfg.Burst = 200, 400
	return &APIServer{Config: cfg, Client: kubernetes.NewForConfigOrDie(cfg)}
}

// WriteKubeconfig turns a client config (an in-process apiserver's) into a
// kubeconfig file another process can use, with its CA, server name and
// credentials; impersonate, when set, is the user every request is then
// authorized as (groups included).
func WriteKubeconfig(t testing.TB, c *rest.Config, impersonate string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthority: c.CAFile, CertificateAuthorityData: c.CAData,
		TLSServerName: c.ServerName, InsecureSkipTLSVerify: c.Insecure}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificate: c.CertFile, ClientCertificateData: c.CertData,
		ClientKey: c.KeyFile, ClientKeyData: c.KeyData, Token: c.BearerToken, TokenFile: c.BearerTokenFile, Impersonate: impersonate}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
