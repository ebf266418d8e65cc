// Package monitoring runs the sandbox's Prometheus (Debian's prometheus
// package) and kube-state-metrics as child processes: Prometheus scrapes
// fleet-scheduler's /metrics (as a client the API server authorizes, like
// a cluster's Prometheus) and kube-state-metrics, and evaluates the alert
// rules of the monitoring component's PrometheusRule, so the runbook's
// PromQL, the dashboard and the alerts all run against real series.
package monitoring

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"sigs.k8s.io/yaml"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/proc"
)

// Job names, as a cluster's Prometheus Operator names them: the
// ServiceMonitor's Service (fleet-scheduler-metrics), which the
// FleetSchedulerDown alert looks for, and kube-state-metrics.
const (
	SchedulerJob        = "fleet-scheduler-metrics"
	KubeStateMetricsJob = "kube-state-metrics"
	// ScrapeInterval is short so a scale-up shows within seconds and the
	// sandbox is ready soon after Prometheus starts (Start waits for the
	// first scrape of each target).
	ScrapeInterval = 2 * time.Second
	// RulesManifest is the PrometheusRule whose groups Prometheus loads.
	RulesManifest = "manifests/overlays/components/monitoring/prometheusrule.yaml"
	// NodeLabelsAllowlist is the kube-state-metrics flag the runbook's
	// count(kube_node_labels{label_managed_by="karpenter"}) needs.
	NodeLabelsAllowlist = "--metric-labels-allowlist=nodes=[managed-by]"
)

// Options say what to run and scrape.
type Options struct {
	// Root is the checkout (for RulesManifest); Dir holds config, rules and
	// the TSDB; LogDir the two logs.
	Root, Dir, LogDir string
	// KubeStateMetrics is its binary; Kubeconfig its identity, which may
	// list and watch nodes and pods.
	KubeStateMetrics, Kubeconfig string
	// Schedulers are the fleet-scheduler replicas' secure ports, host:port;
	// ClientCert and ClientKey (PEM) Prometheus's identity toward them.
	Schedulers            []string
	ClientCert, ClientKey []byte
	// Env is the children's environment.
	Env []string
}

// Monitoring is the running pair.
type Monitoring struct {
	// URL is Prometheus's, KubeStateMetricsURL kube-state-metrics' /metrics.
	URL, KubeStateMetricsURL string
	API                      promv1.API
	// Procs are the child processes, kube-state-metrics first.
	Procs []*proc.Process
}

// Start starts kube-state-metrics and Prometheus and waits until
// Prometheus has scraped both: when it returns, queries answer. On error
// the processes it started are in the returned value for the caller to
// stop.
func Start(ctx context.Context, o Options) (*Monitoring, error) {
	m := &Monitoring{}
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		return m, errors.New("prometheus not found: `make run` and `make test` install Debian's prometheus package; or apt-get install prometheus")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return m, err
	}
	ksmPort, err := controlplane.FreePort()
	if err != nil {
		return m, err
	}
	ksmTelemetry, err := controlplane.FreePort()
	if err != nil {
		return m, err
	}
	ksm, err := proc.Start(proc.Spec{
		Name: "kube-state-metrics", Path: o.KubeStateMetrics, Env: o.Env,
		Args:    KubeStateMetricsArgs(o.Kubeconfig, ksmPort, ksmTelemetry),
		LogPath: filepath.Join(o.LogDir, "kube-state-metrics.log"),
	})
	if err != nil {
		return m, err
	}
	m.Procs = append(m.Procs, ksm)
	m.KubeStateMetricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", ksmPort)

	if err := writeFiles(o, fmt.Sprintf("127.0.0.1:%d", ksmPort)); err != nil {
		return m, err
	}
	promPort, err := controlplane.FreePort()
	if err != nil {
		return m, err
	}
	m.URL = fmt.Sprintf("http://127.0.0.1:%d", promPort)
	p, err := proc.Start(proc.Spec{
		Name: "prometheus", Path: prometheus, Env: o.Env, Dir: o.Dir,
		Args: []string{
			"--config.file=" + filepath.Join(o.Dir, "prometheus.yml"),
			"--storage.tsdb.path=" + filepath.Join(o.Dir, "data"),
			"--storage.tsdb.retention.time=1d",
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort),
		},
		LogPath: filepath.Join(o.LogDir, "prometheus.log"),
	})
	if err != nil {
		return m, err
	}
	m.Procs = append(m.Procs, p)
	client, err := promapi.NewClient(promapi.Config{Address: m.URL})
	if err != nil {
		return m, err
	}
	m.API = promv1.NewAPI(client)
	if err := m.waitScraped(ctx, p, time.Minute); err != nil {
		return m, fmt.Errorf("%w (see %s)", err, filepath.Join(o.LogDir, "prometheus.log"))
	}
	return m, nil
}

// KubeStateMetricsArgs run kube-state-metrics on loopback for the nodes
// and pods the runbook's queries and the dashboard read, with the node
// label the runbook selects on.
func KubeStateMetricsArgs(kubeconfig string, port, telemetryPort int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", port),
		"--telemetry-host=127.0.0.1", fmt.Sprintf("--telemetry-port=%d", telemetryPort),
		"--resources=nodes,pods",
		NodeLabelsAllowlist,
	}
}

// writeFiles writes Prometheus's config, its client certificate for the
// scheduler and the rules of the PrometheusRule.
func writeFiles(o Options, kubeStateMetrics string) error {
	raw, err := os.ReadFile(filepath.Join(o.Root, RulesManifest))
	if err != nil {
		return err
	}
	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &rule); err != nil || len(rule.Spec.Groups) == 0 {
		return fmt.Errorf("%s: no rule groups (%v)", RulesManifest, err)
	}
	rules, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"rules.yaml":     rules,
		"prometheus.crt": o.ClientCert,
		"prometheus.key": o.ClientKey,
		"prometheus.yml": []byte(config(o.Schedulers, kubeStateMetrics, ScrapeInterval)),
	} {
		if err := os.WriteFile(filepath.Join(o.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// config is prometheus.yml. fleet-scheduler serves a self-signed
// certificate (kube-scheduler makes one at start), so it is not verified;
// the client certificate is what the scheduler's delegated authentication
// checks, and RBAC lets its user GET /metrics. kube-state-metrics' labels
// (namespace, pod, node) are the objects', so they are honoured.
func config(schedulers []string, kubeStateMetrics string, interval time.Duration) string {
	return fmt.Sprintf(`# The sandbox's Prometheus (hack/sandbox/monitoring).
global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
rule_files:
- rules.yaml
scrape_configs:
- job_name: %[2]s
  scheme: https
  tls_config:
    insecure_skip_verify: true
    cert_file: prometheus.crt
    key_file: prometheus.key
  static_configs:
  - targets: ['%[3]s']
- job_name: %[4]s
  honor_labels: true
  static_configs:
  - targets: ['%[5]s']
`, interval, SchedulerJob, strings.Join(schedulers, "', '"), KubeStateMetricsJob, kubeStateMetrics)
}

// waitScraped waits until Prometheus is ready and every target is up.
func (m *Monitoring) waitScraped(ctx context.Context, p *proc.Process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := errors.New("not ready")
	for {
		if exit := p.ExitError(); exit != nil {
			return fmt.Errorf("prometheus exited: %w", exit)
		}
		err := m.targetsUp(ctx)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus has not scraped its targets: %v", last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (m *Monitoring) targetsUp(ctx context.Context) error {
	resp, err := http.Get(m.URL + "/-/ready")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/-/ready: %s", resp.Status)
	}
	targets, err := m.API.Targets(ctx)
	if err != nil {
		return err
	}
	up := map[string]bool{}
	for _, t := range targets.Active {
		if t.Health != promv1.HealthGood {
			return fmt.Errorf("target %s (%s): %s %s", t.ScrapeURL, t.Labels["job"], t.Health, t.LastError)
		}
		up[string(t.Labels["job"])] = true
	}
	if !up[SchedulerJob] || !up[KubeStateMetricsJob] {
		return fmt.Errorf("targets up: %v", up)
	}
	return nil
}
