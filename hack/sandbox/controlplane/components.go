package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fleet-scheduler/fleet-scheduler/hack/etcdserver"
	"github.com/fleet-scheduler/fleet-scheduler/hack/motoserver"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/pki"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) { return etcdserver.FreePort() }

// Etcd is an etcd server embedded in this process.
type Etcd struct {
	ClientURL string
	server    *embed.Etcd
}

// StartEtcd starts etcd with its data in dir (which it empties first),
// listening on free loopback ports.
func StartEtcd(dir, logPath string) (*Etcd, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	// The sandbox's data is thrown away on every start: skip fsync.
	e, clientURL, err := etcdserver.Start(etcdserver.Options{
		Dir: dir, Name: "sandbox", LogLevel: "warn", LogOutputs: []string{logPath}, UnsafeNoFsync: true,
	})
	if err != nil {
		return nil, err
	}
	return &Etcd{ClientURL: clientURL, server: e}, nil
}

// Close stops etcd.
func (e *Etcd) Close() { e.server.Close() }

// APIServerArgs are kube-apiserver's flags as kubeadm's static pod manifest
// sets them, on loopback: bootstrap token authentication, Node and RBAC
// authorization, NodeRestriction, the front proxy and service accounts.
func APIServerArgs(p *pki.PKI, etcdURL string, port int, certDir string) []string {
	return []string{
		"--advertise-address=127.0.0.1",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + certDir,
		"--allow-privileged=true",
		"--authorization-mode=Node,RBAC",
		"--client-ca-file=" + p.Path("ca.crt"),
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true",
		"--etcd-servers=" + etcdURL,
		"--kubelet-client-certificate=" + p.Path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + p.Path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--proxy-client-cert-file=" + p.Path("front-proxy-client.crt"),
		"--proxy-client-key-file=" + p.Path("front-proxy-client.key"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-client-ca-file=" + p.Path("front-proxy-ca.crt"),
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-username-headers=X-Remote-User",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.Path("sa.pub"),
		"--service-account-signing-key-file=" + p.Path("sa.key"),
		"--service-cluster-ip-range=" + pki.ServiceClusterIPRange,
		"--tls-cert-file=" + p.Path("apiserver.crt"),
		"--tls-private-key-file=" + p.Path("apiserver.key"),
		// The advertise address is loopback, which is no valid endpoint for
		// the kubernetes Service; nothing in the sandbox uses the Service.
		"--endpoint-reconciler-type=none",
		// Aggregated APIs (KEDA's external metrics) are reached at their
		// EndpointSlice's address: no kube-proxy serves cluster IPs here.
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"-v=1",
	}
}

// PodCIDR is the cluster CIDR the controller manager's node IPAM hands
// /24s out of (kubeadm init --pod-network-cidr).
const PodCIDR = "10.244.0.0/16"

// Controllers is kube-controller-manager's --controllers as kubeadm sets
// it: every controller enabled by default ("*": deployment, replicaset,
// statefulset, daemonset, job, cronjob, ttl and ttl-after-finished,
// endpoints, endpointslice and its mirroring, the persistent volume binder,
// expander and protection, attach-detach, ephemeral volumes, resource
// quota, namespace, service accounts and their tokens, garbage collector,
// node IPAM and lifecycle, taint eviction, pod GC, disruption, horizontal
// pod autoscaling, CSR approving, signing and cleaning, the root CA
// publisher, cluster role aggregation and the rest), plus the two kubeadm
// turns on besides: the bootstrap signer and the token cleaner. Those that
// need a cloud provider (service load balancers, routes, cloud node
// lifecycle) do not start without one, as on kubeadm.
const Controllers = "*,bootstrapsigner,tokencleaner"

// ControllerManagerArgs are kube-controller-manager's flags as kubeadm sets
// them, with the cluster CA as the CSR signer. NodeMonitorGracePeriod is how
// long a node may miss heartbeats before it is NotReady (kubeadm: 40s).
func ControllerManagerArgs(p *pki.PKI, kubeconfig string, port int, certDir, clusterName string, nodeMonitorGracePeriod time.Duration) []string {
	return []string{
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + certDir,
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--client-ca-file=" + p.Path("ca.crt"),
		"--requestheader-client-ca-file=" + p.Path("front-proxy-ca.crt"),
		"--cluster-signing-cert-file=" + p.Path("ca.crt"),
		"--cluster-signing-key-file=" + p.Path("ca.key"),
		"--root-ca-file=" + p.Path("ca.crt"),
		"--service-account-private-key-file=" + p.Path("sa.key"),
		"--use-service-account-credentials=true",
		"--cluster-name=" + clusterName,
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + PodCIDR,
		"--node-cidr-mask-size=24",
		"--service-cluster-ip-range=" + pki.ServiceClusterIPRange,
		"--controllers=" + Controllers,
		"--leader-elect=false",
		fmt.Sprintf("--node-monitor-grace-period=%s", nodeMonitorGracePeriod),
		"--node-monitor-period=2s",
		"--profiling=false",
		"-v=1",
	}
}

// SchedulerArgs are fleet-scheduler's (kube-scheduler's) flags, logging
// at verbosity v.
func SchedulerArgs(config, kubeconfig string, port int, certDir string, v int) []string {
	return []string{
		"--config=" + config,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + certDir,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		fmt.Sprintf("-v=%d", v),
	}
}

// WaitReady polls the API server's /readyz with cfg until it answers ok.
func WaitReady(ctx context.Context, cfg *rest.Config, p *proc.Process, timeout time.Duration) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return p.Await(ctx, timeout, "ready", func(ctx context.Context) error {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) != "ok" {
			err = fmt.Errorf("readyz: %s", body)
		}
		return err
	})
}

// WaitHealthz polls https://127.0.0.1:port/healthz (a self-signed serving
// certificate, so unverified) until it answers 200.
func WaitHealthz(ctx context.Context, port int, p *proc.Process, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	return p.Await(ctx, timeout, "healthy", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	})
}

// StartMoto starts moto_server on a loopback port this process binds and
// hands over, and waits until it answers; it returns the endpoint URL.
func StartMoto(ctx context.Context, logPath string) (*proc.Process, string, error) {
	bin, err := motoserver.Binary()
	if err != nil {
		return nil, "", err
	}
	sock, err := motoserver.Listen()
	if err != nil {
		return nil, "", err
	}
	defer sock.Close()
	p, err := proc.Start(proc.Spec{
		Name: "moto_server", Path: bin, Args: sock.Args(),
		Env: append(os.Environ(), sock.Env()...), LogPath: logPath, ExtraFiles: []*os.File{sock.File()},
	})
	if err != nil {
		return nil, "", err
	}
	sock.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := motoserver.WaitReady(ctx, sock.Endpoint, p.ExitError); err != nil {
		p.Stop(5 * time.Second)
		return nil, "", err
	}
	return p, sock.Endpoint, nil
}
