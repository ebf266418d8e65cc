// Package world brings up the whole sandbox - etcd, kube-apiserver,
// kube-controller-manager, moto_server, fleet-scheduler and the node
// simulator - and seeds it as the seed's cluster. `make run` (hack/sandbox)
// and the end-to-end tests (test/e2e) both start it through Start.
package world

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/nodesim"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/pki"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
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
	AWS          aws.Config
	EC2          *ec2.Client
	SSM          *ssm.Client
	Network      seed.Network

	Sim *nodesim.Simulator
	// Proxy carries the API server's traffic to kubelets (logs) to the simulator.
	Proxy *nodesim.Proxy
	// RSS samples the memory of the sandbox process and its children.
	RSS *proc.RSSMeter
	// ControlPlaneNode and Workers are the static nodes' names.
	ControlPlaneNode string
	Workers          []string

	start    time.Time
	lock     *os.File
	etcd     *controlplane.Etcd
	procs    []*proc.Process
	ctx      context.Context
	cancel   context.CancelFunc
	simDone  chan struct{}
	failed   chan error
	stopOnce sync.Once
}

func (w *World) progress(format string, args ...any) {
	w.Progress("[%5.1fs] "+format, append([]any{time.Since(w.start).Seconds()}, args...)...)
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
	logs := filepath.Join(w.Dir, "logs")
	if w.LogFile {
		if err := logToFile(filepath.Join(logs, "sandbox.log"), w.LogVerbosity); err != nil {
			return nil, err
		}
	}

	// Binaries, moto and etcd in parallel with the PKI.
	var (
		wg              sync.WaitGroup
		buildErr        error
		bins            controlplane.Binaries
		moto            *proc.Process
		motoErr, etcErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		bins, buildErr = controlplane.EnsureBinaries(ctx, controlplane.BuildOptions{Root: w.Root, Scheduler: w.BuildScheduler, Progress: w.progress})
	}()
	go func() {
		defer wg.Done()
		moto, w.MotoEndpoint, motoErr = controlplane.StartMoto(ctx, filepath.Join(logs, "moto.log"))
	}()
	go func() {
		defer wg.Done()
		w.etcd, etcErr = controlplane.StartEtcd(filepath.Join(w.Dir, "etcd"), filepath.Join(logs, "etcd.log"))
	}()
	w.PKI, err = pki.Generate(filepath.Join(w.Dir, "pki"))
	wg.Wait()
	if moto != nil {
		w.watch(moto)
	}
	if err = errors.Join(err, buildErr, motoErr, etcErr); err != nil {
		return nil, err
	}
	if _, err := os.Stat(bins.Scheduler); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make build` (or `make run`, which builds it)", bins.Scheduler)
	}
	w.progress("etcd (in process) at %s; moto_server at %s", w.etcd.ClientURL, w.MotoEndpoint)

	w.AWS = aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint:     aws.String(w.MotoEndpoint),
		RetryMaxAttempts: 5,
	}
	w.EC2, w.SSM = ec2.NewFromConfig(w.AWS), ssm.NewFromConfig(w.AWS)
	w.Sim = nodesim.New(nodesim.Options{
		EC2: w.EC2, ClusterName: ClusterName, Region: Region,
		StateDir: filepath.Join(w.Dir, "nodes"), BootDelay: w.BootDelay, DiscoveryTimeout: w.DiscoveryTimeout,
		PodStartDelay: 500 * time.Millisecond, PodStopDelay: 500 * time.Millisecond,
		Progress: w.progress, Log: klog.Background().WithName("nodesim"),
	})

	// kube-apiserver.
	apiPort, err := controlplane.FreePort()
	if err != nil {
		return nil, err
	}
	w.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	w.Endpoint = fmt.Sprintf("127.0.0.1:%d", apiPort)
	w.CACertHash = w.PKI.CACertHash
	w.Kubeconfig = filepath.Join(w.Dir, "kubeconfig")
	admin, err := w.PKI.WriteKubeconfig(w.Kubeconfig, w.Server, "kubernetes-super-admin", "kubernetes-super-admin", "system:masters")
	if err != nil {
		return nil, err
	}
	w.Admin = rest.CopyConfig(admin.Config)
	w.Admin.QPS, w.Admin.Burst = 100, 200
	w.Client = kubernetes.NewForConfigOrDie(w.Admin)
	kcmConf, err := w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "controller-manager.conf"), w.Server, "system:kube-controller-manager", "system:kube-controller-manager")
	if err != nil {
		return nil, err
	}
	schedConf, err := w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "scheduler.conf"), w.Server, "system:kube-scheduler", "system:kube-scheduler")
	if err != nil {
		return nil, err
	}
	// The API server reaches kubelets (kubectl logs) through an egress
	// proxy that knows the simulated nodes, as Konnectivity would.
	proxyTLS, err := w.PKI.EgressProxyTLS()
	if err != nil {
		return nil, err
	}
	if w.Proxy, err = nodesim.NewProxy(w.Sim.Kubelet, proxyTLS); err != nil {
		return nil, err
	}
	egressConfig := filepath.Join(w.Dir, "egress-selector.yaml")
	if err := os.WriteFile(egressConfig, []byte(egressSelectorConfig(w.Proxy.URL(), w.PKI)), 0o644); err != nil {
		return nil, err
	}
	apiserver, err := proc.Start(proc.Spec{
		Name: "kube-apiserver", Path: bins.APIServer, Env: baseEnv(),
		Args: append(controlplane.APIServerArgs(w.PKI, w.etcd.ClientURL, apiPort, filepath.Join(w.Dir, "apiserver")),
			"--egress-selector-config-file="+egressConfig),
		LogPath: filepath.Join(logs, "kube-apiserver.log"),
	})
	if err != nil {
		return nil, err
	}
	w.watch(apiserver)
	if err := controlplane.WaitReady(ctx, w.Admin, apiserver, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(logs, "kube-apiserver.log"))
	}
	w.progress("kube-apiserver ready at %s", w.Server)

	// kube-controller-manager.
	kcmPort, err := controlplane.FreePort()
	if err != nil {
		return nil, err
	}
	kcm, err := proc.Start(proc.Spec{
		Name: "kube-controller-manager", Path: bins.ControllerManager, Env: baseEnv(),
		Args: controlplane.ControllerManagerArgs(w.PKI, kcmConf.Path, kcmPort, filepath.Join(w.Dir, "controller-manager"),
			ClusterName, w.NodeMonitorGracePeriod),
		LogPath: filepath.Join(logs, "kube-controller-manager.log"),
	})
	if err != nil {
		return nil, err
	}
	w.watch(kcm)

	// AWS: the network, the node image and (after the token) SSM, while
	// the controller manager starts and the cluster is seeded.
	awsDone := make(chan error, 1)
	go func() {
		var err error
		w.Network, err = seed.EC2Network(ctx, w.EC2, ClusterName, controlplane.KubernetesVersion)
		if err == nil {
			err = seed.NodeRole(ctx, iam.NewFromConfig(w.AWS), ClusterName)
		}
		awsDone <- err
	}()

	if err := seed.Kubeadm(ctx, w.Client, seed.KubeadmCluster{
		ClusterName: ClusterName, Server: w.Server, CAData: w.PKI.CAData,
		KubernetesVersion: controlplane.KubernetesVersion, PodSubnet: controlplane.PodCIDR, ServiceSubnet: pki.ServiceClusterIPRange,
		NodeLeaseDurationSeconds: w.LeaseDurationSeconds,
	}); err != nil {
		return nil, err
	}
	if err := seed.SchedulerAccess(ctx, w.Client, "system:kube-scheduler"); err != nil {
		return nil, err
	}
	applier, err := seed.NewApplier(w.Admin)
	if err != nil {
		return nil, err
	}
	crdFiles, err := seed.Glob(filepath.Join(w.Root, "manifests", "crds"))
	if err != nil {
		return nil, err
	}
	crds, err := seed.ReadManifests(crdFiles...)
	if err != nil {
		return nil, err
	}
	if err := applier.CRDs(ctx, crds); err != nil {
		return nil, err
	}
	if err := controlplane.WaitHealthz(ctx, kcmPort, kcm, time.Minute); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(logs, "kube-controller-manager.log"))
	}
	w.progress("kube-controller-manager running (%d controllers); kubeadm objects and %d CRDs in place", len(controlplane.Controllers), len(crds))

	// kubeadm token create, signed by the bootstrap signer.
	if w.Token, err = seed.CreateToken(ctx, w.Client, 0); err != nil {
		return nil, err
	}
	if err := seed.WaitForSignature(ctx, w.Client, w.Token.ID(), time.Minute); err != nil {
		return nil, fmt.Errorf("the bootstrap signer did not sign cluster-info for token %s: %w", w.Token.ID(), err)
	}
	if err := <-awsDone; err != nil {
		return nil, err
	}
	if err := seed.PutJoinParameters(ctx, w.SSM, w.Token.Token, w.CACertHash); err != nil {
		return nil, err
	}
	w.progress("bootstrap token %s.<secret> (expires %s) and CA hash in SSM %s, %s",
		w.Token.ID(), w.Token.Expires.Format(time.RFC3339), seed.TokenParameter, seed.CACertHashParameter)
	w.progress("moto: %s, subnets %s, security group %s, AMI %s (%s)", w.Network.VPCID,
		strings.Join(mapValues(w.Network.Subnets), ","), w.Network.SecurityGroupID, w.Network.AMIID, w.Network.AMIName)

	// The example NodePool and EC2NodeClass, while the nodes join.
	examplesDone := make(chan error, 1)
	go func() {
		objs, err := seed.ReadManifests(
			filepath.Join(w.Root, "manifests", "examples", "ec2nodeclass.yaml"),
			filepath.Join(w.Root, "manifests", "examples", "nodepool.yaml"))
		if err == nil {
			err = applier.Create(ctx, objs)
		}
		examplesDone <- err
	}()

	// Nodes: the simulator for moto's instances, plus the control plane and
	// two workers that fleet-scheduler does not manage.
	w.simDone = make(chan struct{})
	go func() {
		defer close(w.simDone)
		w.Sim.Run(w.ctx)
	}()
	if err := w.staticNodes(ctx); err != nil {
		return nil, err
	}
	if err := <-examplesDone; err != nil {
		return nil, err
	}
	w.progress("applied manifests/examples/ec2nodeclass.yaml and nodepool.yaml")

	// fleet-scheduler, once the nodes it must not provision for are Ready.
	schedPort, err := controlplane.FreePort()
	if err != nil {
		return nil, err
	}
	schedConfig := filepath.Join(w.Dir, "scheduler-config.yaml")
	if err := os.WriteFile(schedConfig, []byte(w.schedulerConfig(schedConf.Path)), 0o644); err != nil {
		return nil, err
	}
	sched, err := proc.Start(proc.Spec{
		Name: "fleet-scheduler", Path: bins.Scheduler, Env: w.awsEnv(),
		Args:    controlplane.SchedulerArgs(schedConfig, schedConf.Path, schedPort, filepath.Join(w.Dir, "scheduler")),
		LogPath: filepath.Join(logs, "fleet-scheduler.log"),
	})
	if err != nil {
		return nil, err
	}
	w.watch(sched)
	if err := controlplane.WaitHealthz(ctx, schedPort, sched, time.Minute); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(logs, "fleet-scheduler.log"))
	}
	w.progress("fleet-scheduler running (profile %s, Provisioner after DefaultPreemption; config %s)", SchedulerName, schedConfig)

	if err := seed.ScanWorker(ctx, w.Client, SchedulerName); err != nil {
		return nil, err
	}
	if w.WaitForScanWorker {
		if err := w.waitScanWorker(ctx, 90*time.Second); err != nil {
			w.progress("warning: %v", err)
		} else {
			w.progress("deployment %s/%s: %d/%d replicas running", seed.ScanNamespace, seed.ScanDeployment, seed.ScanReplicas, seed.ScanReplicas)
		}
	}
	return w, nil
}

// logToFile sends klog's output to path.
func logToFile(path string, verbosity int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "v": fmt.Sprint(verbosity)} {
		if err := fs.Set(k, v); err != nil {
			return err
		}
	}
	klog.SetOutput(f)
	return nil
}

// Elapsed is the time since Start began.
func (w *World) Elapsed() time.Duration { return time.Since(w.start) }

// prepareDir locks Dir against a second sandbox in the same checkout and
// empties it (the build cache of go.mod copies stays).
func (w *World) prepareDir() error {
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(w.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("another sandbox is running in %s (stop it first)", w.Dir)
	}
	w.lock = lock
	entries, err := os.ReadDir(w.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "lock" || e.Name() == "build" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.Dir, e.Name())); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(w.Dir, "logs"), 0o755)
}

// staticNodes starts the control-plane node (its kubelet.conf issued from
// the CA, as `kubeadm init` writes it) and joins the two workers with the
// runbook's join command, then waits until all three are Ready and
// schedulable.
func (w *World) staticNodes(ctx context.Context) error {
	w.ControlPlaneNode = "ip-10-0-1-21"
	kubeletConf, err := w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "nodes", w.ControlPlaneNode, "kubelet.conf"), w.Server,
		"system:node:"+w.ControlPlaneNode, "system:node:"+w.ControlPlaneNode, "system:nodes")
	if err != nil {
		return err
	}
	logs := filepath.Join(w.Dir, "logs")
	staticPod := func(name, image, log string, labels map[string]string) nodesim.StaticPod {
		l := map[string]string{"component": name, "tier": "control-plane"}
		for k, v := range labels {
			l[k] = v
		}
		return nodesim.StaticPod{Name: name, Namespace: metav1.NamespaceSystem, Labels: l, Image: image, Command: []string{name}, LogPath: filepath.Join(logs, log)}
	}
	if _, err := w.Sim.StartStatic(w.ctx, nodesim.StaticNode{
		Name: w.ControlPlaneNode, InstanceType: "t3.medium", Zone: "us-east-1a", PrivateIP: "10.0.1.21",
		Config: kubeletConf.Config, Taints: []corev1.Taint{seed.ControlPlaneTaint},
		// kubeadm's static pods, their logs the real components'. The
		// scheduler's carries the label the runbook finds the autoscaler's
		// logs by (kubectl logs -n kube-system -l app.kubernetes.io/name=karpenter).
		StaticPods: []nodesim.StaticPod{
			staticPod("etcd", "registry.k8s.io/etcd:3.7.0-0", "etcd.log", nil),
			staticPod("kube-apiserver", "registry.k8s.io/kube-apiserver:"+controlplane.KubernetesVersion, "kube-apiserver.log", nil),
			staticPod("kube-controller-manager", "registry.k8s.io/kube-controller-manager:"+controlplane.KubernetesVersion, "kube-controller-manager.log", nil),
			staticPod("fleet-scheduler", "fleet-scheduler:dev", "fleet-scheduler.log", map[string]string{"app.kubernetes.io/name": "karpenter"}),
		},
	}); err != nil {
		return fmt.Errorf("control-plane node: %w", err)
	}
	if err := seed.MarkControlPlane(ctx, w.Client, w.ControlPlaneNode); err != nil {
		return fmt.Errorf("marking the control-plane node: %w", err)
	}
	workers := []struct{ name, zone, ip string }{
		{"ip-10-0-1-31", "us-east-1a", "10.0.1.31"},
		{"ip-10-0-2-32", "us-east-1b", "10.0.2.32"},
	}
	errs := make(chan error, len(workers))
	for _, wk := range workers {
		w.Workers = append(w.Workers, wk.name)
		go func() {
			userData := WorkerUserData(w.Endpoint, w.Token.Token, w.CACertHash, wk.name, map[string]string{
				corev1.LabelInstanceTypeStable: "t3.large", corev1.LabelTopologyZone: wk.zone, corev1.LabelTopologyRegion: Region,
			})
			_, err := w.Sim.StartStatic(w.ctx, nodesim.StaticNode{Name: wk.name, InstanceType: "t3.large", Zone: wk.zone, PrivateIP: wk.ip, UserData: userData})
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}
	names := append([]string{w.ControlPlaneNode}, w.Workers...)
	if err := w.WaitNodesSchedulable(ctx, names, time.Minute); err != nil {
		return err
	}
	w.progress("nodes Ready: %s (control plane, t3.medium, tainted), %s (t3.large workers, joined with the SSM token)",
		w.ControlPlaneNode, strings.Join(w.Workers, ", "))
	return nil
}

// WorkerUserData is how a worker was joined by hand: the runbook's `kubeadm
// join` with its kubelet flags.
func WorkerUserData(endpoint, token, caCertHash, name string, labels map[string]string) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		pairs = append(pairs, k+"="+labels[k])
	}
	return fmt.Sprintf("#!/bin/bash\nset -euo pipefail\nprintf '%%s\\n' 'KUBELET_EXTRA_ARGS=--node-labels=%s' > /etc/default/kubelet\n%s --node-name %s\n",
		strings.Join(pairs, ","), seed.JoinCommand(endpoint, seed.Token{Token: token}, caCertHash), name)
}

// WaitNodesSchedulable waits until the nodes are Ready and carry no
// not-ready/unreachable taint.
func (w *World) WaitNodesSchedulable(ctx context.Context, names []string, timeout time.Duration) error {
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, n := range names {
			node, err := w.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !Schedulable(node) {
				pending = append(pending, n)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not Ready and schedulable: %v", pending)
	}
	return nil
}

// Schedulable reports whether a node is Ready without a not-ready or
// unreachable taint.
func Schedulable(n *corev1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	return ready
}

func (w *World) waitScanWorker(ctx context.Context, timeout time.Duration) error {
	var running int
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := w.Client.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
		if err != nil {
			return false, nil
		}
		running = 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running >= seed.ScanReplicas, nil
	})
	if err != nil {
		return fmt.Errorf("only %d/%d scan-worker replicas running after %s (see %s)", running, seed.ScanReplicas, timeout,
			filepath.Join(w.Dir, "logs", "fleet-scheduler.log"))
	}
	return nil
}

// schedulerConfig is fleet-scheduler's KubeSchedulerConfiguration: the
// stock profile with the Provisioner after DefaultPreemption, set up with
// the seed's SSM parameters.
func (w *World) schedulerConfig(kubeconfig string) string {
	return fmt.Sprintf(`# fleet-scheduler in the sandbox: replaces the stock kube-scheduler (same
# profile name), so every pod that fits nowhere gets capacity.
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
leaderElection:
  leaderElect: false
profiles:
- schedulerName: %s
  plugins:
    postFilter:
      enabled:
      - name: DefaultPreemption
      - name: Provisioner
  pluginConfig:
  - name: Provisioner
    args:
      clusterName: %s
      region: %s
      registrationTTL: %s
      bootstrap:
        tokenSSMParameter: %s
        caCertHashSSMParameter: %s
`, kubeconfig, SchedulerName, ClusterName, Region, w.RegistrationTTL, seed.TokenParameter, seed.CACertHashParameter)
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

// EnvFile is .sandbox/env: the exports a second shell needs.
func (w *World) EnvFile() string {
	return fmt.Sprintf("export KUBECONFIG=%s AWS_ENDPOINT_URL=%s AWS_REGION=%s AWS_DEFAULT_REGION=%s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n",
		w.Kubeconfig, w.MotoEndpoint, Region, Region, AccessKeyID, SecretAccessKey)
}

// awsEnv is fleet-scheduler's environment: the sandbox's AWS endpoint and
// dummy credentials, nothing of the caller's AWS or Kubernetes settings.
func (w *World) awsEnv() []string {
	return append(baseEnv(),
		"AWS_ENDPOINT_URL="+w.MotoEndpoint,
		"AWS_REGION="+Region,
		"AWS_DEFAULT_REGION="+Region,
		"AWS_ACCESS_KEY_ID="+AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "KUBECONFIG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// watch reports an unexpected exit of p on Failed.
func (w *World) watch(p *proc.Process) {
	w.procs = append(w.procs, p)
	w.RSS.Track(p)
	go func() {
		<-p.Done()
		if !p.Stopping() {
			w.failed <- p.ExitError()
		}
	}()
}

// Failed delivers an error when a component exits on its own.
func (w *World) Failed() <-chan error { return w.failed }

// Pids are the process ids of the child processes (each leads its group).
func (w *World) Pids() map[string]int {
	out := map[string]int{}
	for _, p := range w.procs {
		out[p.Name] = p.Pid()
	}
	return out
}

// Stop stops everything Start started: the scheduler first (so it launches
// nothing more), the nodes, the controller manager, the API server, moto,
// etcd.
func (w *World) Stop() {
	w.stopOnce.Do(func() {
		stop := func(name string) {
			for _, p := range w.procs {
				if p.Name == name {
					p.Stop(10 * time.Second)
				}
			}
		}
		w.RSS.Stop()
		stop("fleet-scheduler")
		w.cancel()
		if w.simDone != nil {
			select {
			case <-w.simDone:
			case <-time.After(10 * time.Second):
			}
		}
		stop("kube-controller-manager")
		stop("kube-apiserver")
		stop("moto_server")
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

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}
