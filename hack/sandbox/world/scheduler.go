package world

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// Leader election of the sandbox's schedulers: kube-scheduler's Lease and
// the provisioning controllers' one both take these timings from the
// config. A standby takes over 10-14 s after the leader dies (the lease
// runs out, then its next retry); SIGTERM hands the Leases over at once.
const (
	LeaseDuration = 10 * time.Second
	RenewDeadline = 8 * time.Second
	RetryPeriod   = time.Second
)

// scheduler is one fleet-scheduler replica the sandbox runs.
type scheduler struct {
	name string
	port int
	spec proc.Spec
	proc *proc.Process
}

// ReplicaName is the name of replica i: its pid file in pids/, its
// secure port in ports/, and what `bin/sandbox leader` prints.
func ReplicaName(i int) string { return fmt.Sprintf("scheduler-%d", i) }

// schedulerLog is replica i's log: the first keeps the name the single
// scheduler always had.
func schedulerLog(i int) string {
	if i == 0 {
		return "fleet-scheduler.log"
	}
	return fmt.Sprintf("fleet-scheduler-%d.log", i)
}

// startScheduler starts the fleet-scheduler replicas, once the nodes they
// must not provision for are Ready, and waits for their health.
func (w *World) startScheduler(ctx context.Context, b *boot) error {
	schedConfig := filepath.Join(w.Dir, "scheduler-config.yaml")
	if err := os.WriteFile(schedConfig, []byte(w.schedulerConfig(b.schedConf.Path)), 0o644); err != nil {
		return err
	}
	for i, port := range b.schedPorts { // chosen by Start, for Prometheus too
		s := &scheduler{name: ReplicaName(i), port: port, spec: proc.Spec{
			Name: ReplicaName(i), Path: b.bins.Scheduler, Env: w.awsEnv(),
			Args:    controlplane.SchedulerArgs(schedConfig, b.schedConf.Path, port, filepath.Join(w.Dir, ReplicaName(i)), w.SchedulerVerbosity),
			LogPath: filepath.Join(b.logs, schedulerLog(i)),
		}}
		w.mu.Lock()
		w.schedulers = append(w.schedulers, s)
		w.mu.Unlock()
		if err := w.runScheduler(ctx, s); err != nil {
			return err
		}
	}
	w.progress("fleet-scheduler running: %d replica(s), leader-elected (profile %s, Provisioner after DefaultPreemption; config %s)",
		w.Schedulers, SchedulerName, schedConfig)
	return nil
}

// runScheduler starts a replica, records its pid and port, and waits for
// its health.
func (w *World) runScheduler(ctx context.Context, s *scheduler) error {
	p, err := proc.Start(s.spec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	s.proc = p
	w.mu.Unlock()
	w.watch(p)
	if err := w.writeState("ports", s.name, s.port); err != nil {
		return err
	}
	if err := controlplane.WaitHealthz(ctx, s.port, p, time.Minute); err != nil {
		return fmt.Errorf("%w (see %s)", err, s.spec.LogPath)
	}
	return nil
}

// RestartScheduler starts replica i again after it exited (a Deployment
// would); it returns once the new process is healthy.
func (w *World) RestartScheduler(ctx context.Context, i int) error {
	if i < 0 || i >= w.Schedulers {
		return fmt.Errorf("no scheduler %d", i)
	}
	w.mu.Lock()
	s, running := w.schedulers[i], w.schedulers[i].proc != nil && w.schedulers[i].proc.ExitError() == nil
	w.mu.Unlock()
	if running {
		return fmt.Errorf("%s is still running (pid %d)", s.name, s.proc.Pid())
	}
	return w.runScheduler(ctx, s)
}

// SchedulerPid is the process id of replica i, 0 if there is none.
func (w *World) SchedulerPid(i int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i < 0 || i >= len(w.schedulers) || w.schedulers[i].proc == nil {
		return 0
	}
	return w.schedulers[i].proc.Pid()
}

// startWorkload creates scan-worker and, if asked, waits for its replicas.
func (w *World) startWorkload(ctx context.Context) error {
	if err := seed.ScanWorker(ctx, w.Client, SchedulerName); err != nil {
		return err
	}
	if w.WaitForScanWorker {
		if err := w.waitScanWorker(ctx, 90*time.Second); err != nil {
			w.progress("warning: %v", err)
		} else {
			w.progress("deployment %s/%s: %d/%d replicas running", seed.ScanNamespace, seed.ScanDeployment, seed.ScanReplicas, seed.ScanReplicas)
		}
	}
	return nil
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
// the seed's SSM parameters (or none: minted tokens) and the interruption
// queue, leader-elected on kube-scheduler's Lease (kube-system/kube-scheduler)
// like the stock scheduler it replaces.
func (w *World) schedulerConfig(kubeconfig string) string {
	bootstrap := fmt.Sprintf("tokenSSMParameter: %s\n        caCertHashSSMParameter: %s", seed.TokenParameter, seed.CACertHashParameter)
	if w.MintedTokens {
		bootstrap = "{} # no SSM parameters: a bootstrap token is minted per node"
	}
	return fmt.Sprintf(`# fleet-scheduler in the sandbox: replaces the stock kube-scheduler (same
# profile name), so every pod that fits nowhere gets capacity.
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
leaderElection:
  leaderElect: true
  leaseDuration: %s
  renewDeadline: %s
  retryPeriod: %s
profiles:
- schedulerName: %s
  plugins:
    filter:
      enabled:
      - name: Provisioner
    postFilter:
      disabled:
      - name: DynamicResources
      enabled:
      - name: Provisioner
      - name: DynamicResources
  pluginConfig:
  - name: Provisioner
    args:
      clusterName: %s
      region: %s
      registrationTTL: %s
      interruptionQueue: %s
      bootstrap:
        %s
`, kubeconfig, LeaseDuration, RenewDeadline, RetryPeriod, SchedulerName, ClusterName, Region, w.RegistrationTTL, ClusterName, bootstrap)
}

// awsEnv is fleet-scheduler's environment: the sandbox's AWS endpoint and
// dummy credentials, nothing of the caller's AWS or Kubernetes settings.
func (w *World) awsEnv() []string {
	return append(baseEnv(),
		"AWS_ENDPOINT_URL="+w.SchedulerAWSEndpoint,
		"AWS_REGION="+Region,
		"AWS_DEFAULT_REGION="+Region,
		"AWS_ACCESS_KEY_ID="+AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
}
