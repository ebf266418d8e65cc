package world

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/nodesim"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/pki"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// startInfrastructure builds (or finds) the binaries and starts moto and
// etcd in parallel with the PKI, then makes the AWS clients and the node
// simulator.
func (w *World) startInfrastructure(ctx context.Context, b *boot) (err error) {
	var (
		wg              sync.WaitGroup
		buildErr        error
		moto            *proc.Process
		motoErr, etcErr error
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		b.bins, buildErr = controlplane.EnsureBinaries(ctx, controlplane.BuildOptions{Root: w.Root, Scheduler: w.BuildScheduler, Kubeadm: w.Kubeadm, Progress: w.progress})
	}()
	go func() {
		defer wg.Done()
		moto, w.MotoEndpoint, motoErr = controlplane.StartMoto(ctx, filepath.Join(b.logs, "moto.log"))
	}()
	go func() {
		defer wg.Done()
		w.etcd, etcErr = controlplane.StartEtcd(filepath.Join(w.Dir, "etcd"), filepath.Join(b.logs, "etcd.log"))
	}()
	w.PKI, err = pki.Generate(filepath.Join(w.Dir, "pki"))
	wg.Wait()
	if moto != nil {
		w.watch(moto)
	}
	if err = errors.Join(err, buildErr, motoErr, etcErr); err != nil {
		return err
	}
	if w.Kubeadm {
		if err := w.writeKubeadm(b.bins.Kubeadm); err != nil {
			return err
		}
	}
	if _, err := os.Stat(b.bins.Scheduler); err != nil {
		return fmt.Errorf("%s is missing: run `make build` (or `make run`, which builds it)", b.bins.Scheduler)
	}
	w.progress("etcd (in process) at %s; moto_server at %s", w.etcd.ClientURL, w.MotoEndpoint)

	w.AWS = aws.Config{
		Region:           Region,
		Credentials:      credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint:     aws.String(w.MotoEndpoint),
		RetryMaxAttempts: 5,
	}
	w.EC2, w.SSM = ec2.NewFromConfig(w.AWS), ssm.NewFromConfig(w.AWS)
	if err := w.startFaultProxy(ctx); err != nil {
		return err
	}
	w.Sim = nodesim.New(nodesim.Options{
		EC2: w.EC2, ClusterName: ClusterName, Region: Region,
		StateDir: filepath.Join(w.Dir, "nodes"), BootDelay: w.BootDelay, DiscoveryTimeout: w.DiscoveryTimeout,
		PodStartDelay: 500 * time.Millisecond, PodStopDelay: 500 * time.Millisecond,
		Progress: w.progress, Log: klog.Background().WithName("nodesim"),
	})
	return nil
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
