// Package world brings up the whole sandbox - etcd, kube-apiserver,
// kube-controller-manager, moto_server, fleet-scheduler and the node
// simulator - and seeds it as the seed's cluster. `make run` (hack/sandbox)
// and the end-to-end tests (test/e2e) both start it through Start.
package world

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/keda"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/monitoring"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/nodesim"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/pki"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/scanworker"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
)

// Defaults.
const (
	ClusterName = "sesacthon-dev"
	Region      = "us-east-1"
	// SchedulerName is the profile the Provisioner runs in: the stock
	// scheduler's, since fleet-scheduler replaces it as in the seed.
	SchedulerName = "default-scheduler"
	// AWS credentials moto accepts.
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

// Options configure a sandbox.
type Options struct {
	// Root is the checkout: manifests/ is read from it and bin/ built in it.
	Root string
	// Dir holds the sandbox's state (PKI, kubeconfigs, etcd, logs); it is
	// emptied on start. Default Root/.sandbox.
	Dir string
	// BuildScheduler builds bin/fleet-scheduler too (`make run` has built it).
	BuildScheduler bool
	// BootDelay is how long a moto instance takes to boot before it joins.
	BootDelay time.Duration
	// RegistrationTTL is fleet-scheduler's registrationTTL.
	RegistrationTTL time.Duration
	// NodeMonitorGracePeriod is how long a silent node stays Ready.
	NodeMonitorGracePeriod time.Duration
	// DiscoveryTimeout bounds a joining node's kubeadm token discovery
	// (kubeadm: 5m; default 1m).
	DiscoveryTimeout time.Duration
	// LeaseDurationSeconds is kubelet-config's nodeLeaseDurationSeconds.
	LeaseDurationSeconds int32
	// WaitForScanWorker waits for scan-worker's 3 replicas before returning.
	WaitForScanWorker bool
	// Progress receives progress lines.
	Progress func(format string, args ...any)
	// LogFile sends klog's output (the node simulator's, client-go's) to
	// Dir/logs/sandbox.log instead of stderr.
	LogFile bool
	// LogVerbosity is klog's -v with LogFile.
	LogVerbosity int
	// KEDA also runs the runbook's whole chain: rabbitmq-server with the
	// scan queue, KEDA's operator and metrics server (built from the
	// hack/keda module), scan-worker's ScaledObject, and simulated workers
	// that drain the queue while their pods run (see keda.go).
	KEDA bool
	// Fault injects one of the runbook's troubleshooting cases (Faults).
	Fault string
	// Kubeadm builds bin/kubeadm and puts on .sandbox/env's PATH a
	// kubeadm whose token commands act on the sandbox (writeKubeadm).
	Kubeadm bool
	// Schedulers is how many fleet-scheduler replicas run (default 1); they
	// elect a leader on kube-system/kube-scheduler.
	Schedulers int
	// SchedulerVerbosity is fleet-scheduler's -v (default 2).
	SchedulerVerbosity int
	// MintedTokens leaves the SSM parameters out of fleet-scheduler's
	// config: it mints a bootstrap token per node (and its RBAC allows
	// that). The runbook's SSM parameters are seeded either way.
	MintedTokens bool
}

func (o *Options) defaults() error {
	if o.Root == "" {
		root, err := controlplane.RepoRoot()
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(o.Root, ".sandbox")
	}
	if o.BootDelay == 0 {
		o.BootDelay = 5 * time.Second
	}
	if o.RegistrationTTL == 0 {
		o.RegistrationTTL = 3 * time.Minute
	}
	if o.NodeMonitorGracePeriod == 0 {
		o.NodeMonitorGracePeriod = 20 * time.Second
	}
	if o.LeaseDurationSeconds == 0 {
		o.LeaseDurationSeconds = 20
	}
	if o.Schedulers <= 0 {
		o.Schedulers = 1
	}
	if o.SchedulerVerbosity <= 0 {
		o.SchedulerVerbosity = 2
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	return nil
}

// World is a running sandbox.
type World struct {
	Options

	// Kubeconfig is the admin kubeconfig's path; Admin its config.
	Kubeconfig string
	Admin      *rest.Config
	Client     kubernetes.Interface
	// Server is the API server URL; Endpoint the same as host:port.
	Server   string
	Endpoint string
	PKI      *pki.PKI
	// Token is the bootstrap token in SSM; CACertHash the CA's "sha256:..." hash.
	Token      seed.Token
	CACertHash string

	// MotoEndpoint serves EC2 and SSM; AWS is an SDK config for it.
	MotoEndpoint string
	// SchedulerAWSEndpoint is where fleet-scheduler's AWS calls go: moto,
	// or a fault proxy in front of it (Fault).
	SchedulerAWSEndpoint string
	AWS                  aws.Config
	EC2                  *ec2.Client
	SSM                  *ssm.Client
	Network              seed.Network
	// InterruptionQueueURL is the interruption queue (named after the
	// cluster) fleet-scheduler long-polls.
	InterruptionQueueURL string

	Sim *nodesim.Simulator
	// Proxy carries the API server's traffic to kubelets (logs) to the simulator.
	Proxy *nodesim.Proxy
	// RSS samples the memory of the sandbox process and its children.
	RSS *proc.RSSMeter
	// ControlPlaneNode and Workers are the static nodes' names.
	ControlPlaneNode string
	Workers          []string
	// Monitoring is Prometheus (URL, API) and kube-state-metrics.
	Monitoring *monitoring.Monitoring

	// With KEDA: the broker, KEDA and the simulated scan workers.
	Broker      *rabbitmq.Broker
	Autoscaling *keda.KEDA // KEDA's operator and metrics server
	ScanWorkers *scanworker.Workers
	workersDone chan struct{}
	// backgroundWG counts the starts that run beside Start's own steps.
	backgroundWG sync.WaitGroup

	start      time.Time
	faultProxy *awsfault.Proxy
	lock       *os.File
	etcd       *controlplane.Etcd
	procsMu    sync.Mutex // Start's phases run in parallel
	procs      []*proc.Process
	ctx        context.Context
	cancel     context.CancelFunc
	simDone    chan struct{}
	failed     chan error
	stopOnce   sync.Once
	// schedulers are the fleet-scheduler replicas, by index.
	schedulers []*scheduler
	mu         sync.Mutex // schedulers
}

func (w *World) progress(format string, args ...any) {
	w.Progress("[%5.1fs] "+format, append([]any{time.Since(w.start).Seconds()}, args...)...)
}

// boot carries what one phase of Start hands to the next.
type boot struct {
	logs       string
	bins       controlplane.Binaries
	kcmConf    *pki.Kubeconfig
	schedConf  *pki.Kubeconfig
	kcm        *proc.Process
	kcmPort    int
	schedPorts []int // the replicas' secure ports
	applier    *seed.Applier
	keda       *kedaBoot
}

// Start brings the sandbox up. On error everything started is stopped.
func Start(ctx context.Context, o Options) (_ *World, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	w := &World{Options: o, start: time.Now(), failed: make(chan error, 8), RSS: proc.NewRSSMeter(time.Second)}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			w.Stop()
		}
	}()
	if err := w.prepareDir(); err != nil {
		return nil, err
	}
	// etcd, the node simulator and the egress proxy run in this process.
	if err := w.writeState("pids", "sandbox", os.Getpid()); err != nil {
		return nil, err
	}
	b := &boot{logs: filepath.Join(w.Dir, "logs")}
	if w.LogFile {
		if err := logToFile(filepath.Join(b.logs, "sandbox.log"), w.LogVerbosity); err != nil {
			return nil, err
		}
	}
	if w.KEDA {
		w.startBrokerAndBuild(ctx, b)
	}
	if err := w.startInfrastructure(ctx, b); err != nil {
		return nil, err
	}
	if err := w.startAPIServer(ctx, b); err != nil {
		return nil, err
	}
	if err := w.startControllerManager(b); err != nil {
		return nil, err
	}
	// AWS: the network, the node image and (after the token) SSM, while
	// the controller manager starts and the cluster is seeded.
	awsDone := w.seedAWS(ctx)
	if err := w.seedCluster(ctx, b); err != nil {
		return nil, err
	}
	if w.KEDA {
		w.startKEDA(ctx, b)
	}
	// Prometheus and kube-state-metrics start while the nodes join and
	// fleet-scheduler starts: Prometheus scrapes a new target only ~5 s
	// after it starts. The schedulers' ports are chosen now for it.
	for range w.Schedulers {
		port, err := controlplane.FreePort()
		if err != nil {
			return nil, err
		}
		b.schedPorts = append(b.schedPorts, port)
	}
	monitoringCtx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	monitoringDone := make(chan error, 1)
	go func() { monitoringDone <- w.startMonitoring(monitoringCtx, b) }()
	if err = w.startNodesAndScheduler(ctx, b, awsDone); err != nil {
		stopWaiting() // no scheduler to wait for
	}
	if merr := <-monitoringDone; err == nil {
		err = merr
	}
	if err != nil {
		return nil, err
	}
	if w.KEDA {
		if err := w.startChain(ctx, b); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// startNodesAndScheduler puts the join parameters in SSM, applies the
// example NodePool and EC2NodeClass while the nodes join, then starts
// fleet-scheduler and the workload.
func (w *World) startNodesAndScheduler(ctx context.Context, b *boot, awsDone <-chan error) error {
	if err := w.seedJoinParameters(ctx, awsDone); err != nil {
		return err
	}
	examplesDone := w.applyExamples(ctx, b.applier)
	if err := w.startNodes(ctx); err != nil {
		return err
	}
	if err := <-examplesDone; err != nil {
		return err
	}
	w.progress("applied manifests/examples/ec2nodeclass.yaml and nodepool.yaml")
	if err := w.startScheduler(ctx, b); err != nil {
		return err
	}
	return w.startWorkload(ctx)
}

// Elapsed is the time since Start began.
func (w *World) Elapsed() time.Duration { return time.Since(w.start) }

// Stop stops everything Start started: Prometheus and kube-state-metrics,
// the scheduler (so it launches nothing more), the nodes and simulated
// workers, KEDA, the controller manager, the API server, moto, the broker,
// etcd.
func (w *World) Stop() {
	w.stopOnce.Do(func() {
		stop := func(name string) {
			// Read at each call: KEDA's start may add processes late.
			w.procsMu.Lock()
			procs := slices.Clone(w.procs)
			w.procsMu.Unlock()
			for _, p := range procs {
				if p.Name == name {
					p.Stop(10 * time.Second)
				}
			}
		}
		w.RSS.Stop()
		stop("prometheus")
		stop("kube-state-metrics")
		w.stopSchedulers()
		w.cancel()
		w.backgroundWG.Wait() // their contexts ended with w.ctx
		for _, done := range []chan struct{}{w.simDone, w.workersDone} {
			if done != nil {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
				}
			}
		}
		if w.Autoscaling != nil {
			w.Autoscaling.Stop()
		}
		stop("kube-controller-manager")
		stop("kube-apiserver")
		if w.faultProxy != nil {
			w.faultProxy.Close()
		}
		stop("moto_server")
		if w.Broker != nil {
			w.Broker.Stop()
		}
		if w.Proxy != nil {
			w.Proxy.Close()
		}
		if w.etcd != nil {
			w.etcd.Close()
		}
		if w.lock != nil {
			w.lock.Close()
		}
	})
}
