package keda

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/etcdserver"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// Token lifetime: the keda-operator ServiceAccount's tokens live an hour
// (kubelet's projected tokens do too) and are renewed when two thirds of
// it has passed; the processes reread the token file every minute.
const (
	tokenTTL   = time.Hour
	tokenRenew = 40 * time.Minute
)

// Options configure KEDA in the sandbox.
type Options struct {
	// Dir holds the certificates, the token and the kubeconfig; LogDir
	// receives keda-operator.log and keda-metrics-apiserver.log.
	Dir, LogDir string
	Binaries    Binaries
	Module      Module
	// Admin is an admin client configuration; Server and CAData what the
	// processes' kubeconfig points at.
	Admin   *rest.Config
	Applier *seed.Applier
	Server  string
	CAData  []byte
	// HostIP and NodeName are the node the processes stand for (the
	// EndpointSlice's address); Forward tells the API server's egress proxy
	// to carry connections for HostIP:port to the process.
	HostIP   string
	NodeName string
	Forward  func(addr, to string)
	// ClusterName is KEDA's --k8s-cluster-name.
	ClusterName string
	// Env is the processes' base environment.
	Env      []string
	Progress func(format string, args ...any)
}

// KEDA is a running operator and metrics server.
type KEDA struct {
	Operator, MetricsServer *proc.Process
	// MetricsPort is the metrics server's HTTPS port on 127.0.0.1.
	MetricsPort int
	CRDs        int
	stopRenew   context.CancelFunc
}

// Start applies KEDA's objects, starts the operator, waits for its
// readiness, starts the metrics server, registers it and waits until the
// API server calls the APIService Available.
func Start(ctx context.Context, o Options) (_ *KEDA, err error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	k := &KEDA{}
	defer func() {
		if err != nil {
			k.Stop()
		}
	}()
	if k.CRDs, err = applyModuleManifests(ctx, o.Applier, o.Module); err != nil {
		return nil, fmt.Errorf("KEDA's manifests (%s): %w", o.Module.Dir, err)
	}
	client, err := kubernetes.NewForConfig(o.Admin)
	if err != nil {
		return nil, err
	}
	certs, err := writeCerts(filepath.Join(o.Dir, "certs"), net.ParseIP(o.HostIP))
	if err != nil {
		return nil, err
	}
	kubeconfig, err := k.writeCredentials(ctx, client, o)
	if err != nil {
		return nil, err
	}
	var ports [5]int
	for i := range ports {
		if ports[i], err = etcdserver.FreePort(); err != nil {
			return nil, err
		}
	}
	grpcPort, probePort, opMetricsPort, msMetricsPort := ports[0], ports[1], ports[2], ports[3]
	k.MetricsPort = ports[4]
	env := append(append([]string{}, o.Env...),
		"KUBECONFIG="+kubeconfig,
		"POD_NAMESPACE="+Namespace,
		"WATCH_NAMESPACE=",
		"KEDA_CLUSTER_OBJECT_NAMESPACE="+Namespace,
	)
	caDir := filepath.Join(o.Dir, "custom-ca") // --ca-dir: no extra CAs for scalers
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		return nil, err
	}
	k.Operator, err = proc.Start(proc.Spec{
		Name: "keda-operator", Path: o.Binaries.Operator, Env: env, Dir: o.Dir,
		LogPath: filepath.Join(o.LogDir, "keda-operator.log"),
		Args: []string{
			"--zap-log-level=info", "--zap-encoder=console", "--zap-time-encoding=rfc3339",
			"--leader-elect=false",
			"--metrics-bind-address=" + loopback(opMetricsPort),
			"--health-probe-bind-address=" + loopback(probePort),
			"--metrics-service-bind-address=" + loopback(grpcPort),
			"--cert-dir=" + certs.Dir,
			"--ca-dir=" + caDir,
			"--k8s-cluster-name=" + o.ClusterName,
		},
	})
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, k.Operator, fmt.Sprintf("http://%s/readyz", loopback(probePort)), 3*time.Minute); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(o.LogDir, "keda-operator.log"))
	}
	progress("KEDA %s operator running (%d CRDs; gRPC metrics service on %s)", o.Module.Version, k.CRDs, loopback(grpcPort))

	k.MetricsServer, err = proc.Start(proc.Spec{
		Name: "keda-metrics-apiserver", Path: o.Binaries.MetricsServer, Env: env, Dir: o.Dir,
		LogPath: filepath.Join(o.LogDir, "keda-metrics-apiserver.log"),
		Args: []string{
			"--zap-log-level=info", "--zap-encoder=console",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(k.MetricsPort),
			"--cert-dir=" + certs.Dir,
			"--tls-cert-file=" + filepath.Join(certs.Dir, "tls.crt"),
			"--tls-private-key-file=" + filepath.Join(certs.Dir, "tls.key"),
			"--lister-kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--metrics-service-address=" + loopback(grpcPort),
			// Its Prometheus endpoint: the program binds it on every
			// address (":port"); nothing in the sandbox scrapes it.
			"--port=" + strconv.Itoa(msMetricsPort),
		},
	})
	if err != nil {
		return nil, err
	}
	agg, err := aggregator.NewForConfig(o.Admin)
	if err != nil {
		return nil, err
	}
	if o.Forward != nil {
		o.Forward(net.JoinHostPort(o.HostIP, strconv.Itoa(k.MetricsPort)), loopback(k.MetricsPort))
	}
	if err := register(ctx, client, agg, o.HostIP, o.NodeName, int32(k.MetricsPort), certs.CAData); err != nil {
		return nil, err
	}
	if err := waitAvailable(ctx, agg, k.MetricsServer, 3*time.Minute); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(o.LogDir, "keda-metrics-apiserver.log"))
	}
	progress("KEDA metrics server Available as APIService %s (Service %s/%s -> %s:%d)",
		APIService, Namespace, MetricsService, o.HostIP, k.MetricsPort)
	return k, nil
}

// Processes are the running programs, for the sandbox to watch.
func (k *KEDA) Processes() []*proc.Process {
	return proc.Started(k.Operator, k.MetricsServer)
}

// Stop stops the metrics server, then the operator, and the token renewal.
func (k *KEDA) Stop() {
	if k.stopRenew != nil {
		k.stopRenew()
	}
	for _, p := range proc.Started(k.MetricsServer, k.Operator) {
		p.Stop(10 * time.Second)
	}
}

// writeCredentials requests a token for the keda-operator ServiceAccount,
// writes it and a kubeconfig that reads it, and renews it in the
// background until Stop.
func (k *KEDA) writeCredentials(ctx context.Context, client kubernetes.Interface, o Options) (string, error) {
	tokenPath := filepath.Join(o.Dir, "token")
	renew := func(ctx context.Context) error {
		tr, err := client.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, ServiceAccount, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(tokenTTL / time.Second))},
		}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("a token for ServiceAccount %s/%s: %w", Namespace, ServiceAccount, err)
		}
		tmp := tokenPath + ".new"
		if err := os.WriteFile(tmp, []byte(tr.Status.Token), 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, tokenPath)
	}
	if err := renew(ctx); err != nil {
		return "", err
	}
	rctx, cancel := context.WithCancel(context.Background())
	k.stopRenew = cancel
	go func() {
		for {
			select {
			case <-rctx.Done():
				return
			case <-time.After(tokenRenew):
			}
			for renew(rctx) != nil && rctx.Err() == nil {
				time.Sleep(10 * time.Second)
			}
		}
	}()
	path := filepath.Join(o.Dir, "kubeconfig")
	user := "system:serviceaccount:" + Namespace + ":" + ServiceAccount
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"kubernetes": {Server: o.Server, CertificateAuthorityData: o.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{user: {TokenFile: tokenPath}},
		Contexts:       map[string]*clientcmdapi.Context{"keda": {Cluster: "kubernetes", AuthInfo: user, Namespace: Namespace}},
		CurrentContext: "keda",
	}
	return path, clientcmd.WriteToFile(cfg, path)
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// waitHTTP polls url until it answers 200, p exits or timeout passes.
func waitHTTP(ctx context.Context, p *proc.Process, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return p.Await(ctx, timeout, "ready", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// waitAvailable polls the APIService until it is Available.
func waitAvailable(ctx context.Context, agg aggregator.Interface, p *proc.Process, timeout time.Duration) error {
	return p.Await(ctx, timeout, "Available", func(ctx context.Context) error {
		ok, why, err := available(ctx, agg)
		if err == nil && !ok {
			err = errors.New(why)
		}
		return err
	})
}
