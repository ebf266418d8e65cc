package world

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/nodesim"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/pki"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// startAPIServer writes the kubeconfigs, starts the egress proxy to the
// simulated kubelets and kube-apiserver, and waits until it is ready.
func (w *World) startAPIServer(ctx context.Context, b *boot) error {
	apiPort, err := controlplane.FreePort()
	if err != nil {
		return err
	}
	w.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	w.Endpoint = fmt.Sprintf("127.0.0.1:%d", apiPort)
	w.CACertHash = w.PKI.CACertHash
	w.Kubeconfig = filepath.Join(w.Dir, "kubeconfig")
	admin, err := w.PKI.WriteKubeconfig(w.Kubeconfig, w.Server, "kubernetes-super-admin", "kubernetes-super-admin", "system:masters")
	if err != nil {
		return err
	}
	w.Admin = rest.CopyConfig(admin.Config)
	w.Admin.QPS, w.Admin.Burst = 100, 200
	w.Client = kubernetes.NewForConfigOrDie(w.Admin)
	if b.kcmConf, err = w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "controller-manager.conf"), w.Server, "system:kube-controller-manager", "system:kube-controller-manager"); err != nil {
		return err
	}
	if b.schedConf, err = w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "scheduler.conf"), w.Server, "system:kube-scheduler", "system:kube-scheduler"); err != nil {
		return err
	}
	// The API server reaches kubelets (kubectl logs) through an egress
	// proxy that knows the simulated nodes, as Konnectivity would.
	proxyTLS, err := w.PKI.EgressProxyTLS()
	if err != nil {
		return err
	}
	if w.Proxy, err = nodesim.NewProxy(w.Sim.Kubelet, proxyTLS); err != nil {
		return err
	}
	egressConfig := filepath.Join(w.Dir, "egress-selector.yaml")
	if err := os.WriteFile(egressConfig, []byte(egressSelectorConfig(w.Proxy.URL(), w.PKI)), 0o644); err != nil {
		return err
	}
	apiserver, err := proc.Start(proc.Spec{
		Name: "kube-apiserver", Path: b.bins.APIServer, Env: baseEnv(),
		Args: append(controlplane.APIServerArgs(w.PKI, w.etcd.ClientURL, apiPort, filepath.Join(w.Dir, "apiserver")),
			"--egress-selector-config-file="+egressConfig),
		LogPath: filepath.Join(b.logs, "kube-apiserver.log"),
	})
	if err != nil {
		return err
	}
	w.watch(apiserver)
	if err := controlplane.WaitReady(ctx, w.Admin, apiserver, 2*time.Minute); err != nil {
		return fmt.Errorf("%w (see %s)", err, filepath.Join(b.logs, "kube-apiserver.log"))
	}
	w.progress("kube-apiserver ready at %s", w.Server)
	return nil
}

// egressSelectorConfig sends the API server's cluster traffic (to
// kubelets) through the HTTP CONNECT proxy at url.
func egressSelectorConfig(url string, p *pki.PKI) string {
	return fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      tcp:
        url: %s
        tlsConfig:
          caBundle: %s
          clientCert: %s
          clientKey: %s
`, url, p.Path("ca.crt"), p.Path("egress-proxy-client.crt"), p.Path("egress-proxy-client.key"))
}
