package world

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/monitoring"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// metricsReaderManifest holds the ClusterRole a cluster binds to its
// Prometheus; the sandbox binds it to its own.
const metricsReaderManifest = "manifests/base/roles/metrics-reader.yaml"

// startMonitoring starts kube-state-metrics and Prometheus, once
// fleet-scheduler serves /metrics, each with its own identity and no more
// access than it needs, and waits until Prometheus has scraped both.
func (w *World) startMonitoring(ctx context.Context, b *boot) error {
	ksmConf, err := w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "kube-state-metrics.conf"), w.Server, seed.KubeStateMetricsUser, seed.KubeStateMetricsUser)
	if err != nil {
		return err
	}
	cert, key, err := w.PKI.ClientCert(seed.PrometheusUser)
	if err != nil {
		return err
	}
	role, err := seed.ReadManifests(filepath.Join(w.Root, metricsReaderManifest))
	if err != nil {
		return err
	}
	if err := b.applier.Create(ctx, role); err != nil {
		return err
	}
	if err := seed.MonitoringAccess(ctx, w.Client); err != nil {
		return err
	}
	m, err := monitoring.Start(ctx, monitoring.Options{
		Root: w.Root, Dir: filepath.Join(w.Dir, "prometheus"), LogDir: b.logs,
		KubeStateMetrics: b.bins.KubeStateMetrics, Kubeconfig: ksmConf.Path,
		Schedulers: targets(b.schedPorts), ClientCert: cert, ClientKey: key,
		Env: baseEnv(),
	})
	for _, p := range m.Procs {
		w.watch(p)
	}
	if err != nil {
		return err
	}
	w.Monitoring = m
	w.progress("Prometheus at %s: fleet-scheduler and kube-state-metrics (%s) scraped every %s, alerts of %s",
		m.URL, monitoring.NodeLabelsAllowlist, monitoring.ScrapeInterval, monitoring.RulesManifest)
	return nil
}

// targets are the replicas' secure ports as Prometheus targets.
func targets(ports []int) []string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return out
}
