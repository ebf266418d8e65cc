package world

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// SchedulerLease is the Lease the sandbox's schedulers elect their leader
// on: kube-scheduler's, as fleet-scheduler replaces the stock scheduler.
const SchedulerLease = "kube-scheduler"

// leaderSeries is the line of /metrics by which a replica says it holds
// kube-scheduler's Lease (client-go's leader election metric).
const leaderSeries = `leader_election_master_status{name="kube-scheduler"} 1`

// Leader names the replica (scheduler-<i>) that holds
// kube-system/kube-scheduler now: the Lease is held and was renewed within
// its duration, and exactly one live replica says on its /metrics that it
// is the leader. The Lease's holder identity is "<host>_<uuid>", the same
// host for every replica here, so the replica's own word tells them apart.
func (w *World) Leader(ctx context.Context) (string, error) { return Leader(ctx, w.Dir) }

// Leader is World.Leader for the sandbox whose state is in dir, as
// `bin/sandbox leader` asks it from another process.
func Leader(ctx context.Context, dir string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return "", fmt.Errorf("no sandbox in %s: %w", dir, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	lease, err := client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, SchedulerLease, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("Lease %s/%s: %w", metav1.NamespaceSystem, SchedulerLease, err)
	}
	spec := lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity == "" || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return "", fmt.Errorf("nobody holds Lease %s/%s", metav1.NamespaceSystem, SchedulerLease)
	}
	if expires := spec.RenewTime.Add(time.Duration(*spec.LeaseDurationSeconds) * time.Second); time.Now().After(expires) {
		return "", fmt.Errorf("Lease %s/%s of %s ran out at %s: its holder is gone and no replica has taken over yet",
			metav1.NamespaceSystem, SchedulerLease, *spec.HolderIdentity, expires.Format(time.RFC3339))
	}
	replicas, err := filepath.Glob(filepath.Join(dir, "ports", "scheduler-*"))
	if err != nil {
		return "", err
	}
	sort.Strings(replicas)
	var leaders, errs []string
	for _, path := range replicas {
		name := filepath.Base(path)
		if !alive(filepath.Join(dir, "pids", name)) {
			continue
		}
		port, err := readInt(path)
		if err != nil {
			return "", err
		}
		body, err := scrape(ctx, cfg, port)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if strings.Contains(body, "\n"+leaderSeries+"\n") {
			leaders = append(leaders, name)
		}
	}
	switch {
	case len(leaders) == 1:
		return leaders[0], nil
	case len(leaders) > 1:
		return "", fmt.Errorf("%s all say they lead", strings.Join(leaders, ", "))
	case len(errs) > 0:
		return "", errors.New(strings.Join(errs, "; "))
	}
	return "", fmt.Errorf("Lease %s/%s is held by %s, but no running replica says it leads", metav1.NamespaceSystem, SchedulerLease, *spec.HolderIdentity)
}

// scrape reads a replica's /metrics with the admin's client certificate
// (authorized through the apiserver). The replica serves a self-signed
// certificate.
func scrape(ctx context.Context, admin *rest.Config, port int) (string, error) {
	cfg := rest.CopyConfig(admin)
	cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile, cfg.TLSClientConfig.Insecure = nil, "", true
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics: %s", resp.Status)
	}
	return string(body), nil
}

// alive reports whether the process in a pid file runs.
func alive(pidFile string) bool {
	pid, err := readInt(pidFile)
	return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
