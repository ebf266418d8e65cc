package manifests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

const dashboardFile = "manifests/dashboards/fleet-scheduler.json"

// exportedMetrics are the metric families provision/metrics registers on
// the scheduler's /metrics.
func exportedMetrics() map[string]bool {
	out := map[string]bool{}
	for _, m := range []interface{ FQName() string }{
		metrics.NodeClaimsCreated, metrics.NodeClaimsLaunched, metrics.NodeClaimsRegistered,
		metrics.NodeClaimsInitialized, metrics.NodeClaimsTerminated, metrics.NodeClaimsDisrupted,
		metrics.ProvisionerSchedulingDuration, metrics.SchedulerSchedulingDuration,
		metrics.PodsStartupDuration, metrics.NodesAllocatable,
	} {
		out[m.FQName()] = true
	}
	return out
}

// thirdPartyMetrics are the kube-state-metrics and node-exporter series the
// dashboard may use.
var thirdPartyMetrics = []string{
	"kube_node_labels", "kube_pod_status_phase", "kube_node_status_allocatable", "kube_pod_container_resource_requests",
	"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
}

type dashboard struct {
	UID    string
	Title  string
	Panels []struct {
		Title   string
		Type    string
		Targets []struct{ Expr string }
	}
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.RepoRoot(), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// promIdentifiers returns the metric names an expression reads: identifiers
// followed by a selector, a range or an operator, minus PromQL's own words
// and label names inside braces or by()/on() clauses.
func promIdentifiers(expr string) []string {
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, "{}")
	expr = regexp.MustCompile(`\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(expr, "")
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	expr = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(expr, "[]")
	keywords := []string{"sum", "count", "avg", "min", "max", "rate", "increase", "histogram_quantile", "vector", "or", "and", "unless", "bool"}
	var out []string
	for _, m := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllString(expr, -1) {
		if !slices.Contains(keywords, m) {
			out = append(out, m)
		}
	}
	return out
}

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q: both are needed to import and link the dashboard", d.UID, d.Title)
	}
	exported := exportedMetrics()
	exprs := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs[p.Title] = append(exprs[p.Title], tg.Expr)
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced %q", p.Title, tg.Expr)
			}
			for _, name := range promIdentifiers(tg.Expr) {
				family := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(name, "")
				switch {
				case strings.HasPrefix(name, "karpenter_") && !exported[family] && !exported[name]:
					t.Errorf("panel %q reads %s, which fleet-scheduler does not export (provision/metrics)", p.Title, name)
				case !strings.HasPrefix(name, "karpenter_") && !slices.Contains(thirdPartyMetrics, name):
					t.Errorf("panel %q reads %s, not a known kube-state-metrics/node-exporter series", p.Title, name)
				}
			}
		}
	}
	// The runbook's panels, with its queries where it gives one.
	for title, want := range map[string]string{
		"Active Karpenter Nodes":      `count(kube_node_labels{label_managed_by="karpenter"})`,
		"Pending Pods Count":          `kube_pod_status_phase{phase="Pending"}`,
		"Node Provisioning Latency":   `histogram_quantile(0.99, sum by (le) (rate(karpenter_provisioner_scheduling_duration_seconds_bucket`,
		"Instance Type Distribution":  `kube_node_labels{label_managed_by="karpenter"}`,
		"CPU Utilization per Node":    `node_cpu_seconds_total`,
		"Memory Utilization per Node": `node_memory_MemAvailable_bytes`,
	} {
		got, ok := exprs[title]
		if !ok {
			t.Errorf("no panel %q", title)
			continue
		}
		if !slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("panel %q queries %q, want one with %q", title, got, want)
		}
	}
}
