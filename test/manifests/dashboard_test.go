package manifests

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

const dashboardFile = "manifests/dashboards/fleet-scheduler.json"

// exportedMetrics are the metric families provision/metrics registers on
// the scheduler's /metrics.
func exportedMetrics() map[string]bool {
	out := map[string]bool{}
	for _, name := range metrics.Names() {
		out[name] = true
	}
	return out
}

// thirdPartyMetrics are the series of kube-state-metrics (and Prometheus's
// own up) that the dashboard and the alerts may read: the sandbox's
// Prometheus has them, so every query is checked against real data there.
var thirdPartyMetrics = []string{
	"kube_node_labels", "kube_pod_status_phase", "kube_pod_status_unschedulable", "kube_node_status_allocatable",
	"kube_pod_container_resource_requests", "up",
}

// checkMetricNames reports the series an expression reads that nothing
// exports.
func checkMetricNames(t *testing.T, where, expr string) {
	t.Helper()
	exported := exportedMetrics()
	for _, name := range promIdentifiers(expr) {
		family := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(name, "")
		switch {
		case strings.HasPrefix(name, "karpenter_") && !exported[family] && !exported[name]:
			t.Errorf("%s reads %s, which fleet-scheduler does not export (provision/metrics)", where, name)
		case !strings.HasPrefix(name, "karpenter_") && !slices.Contains(thirdPartyMetrics, name):
			t.Errorf("%s reads %s, not a known kube-state-metrics series", where, name)
		}
	}
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
	raw := readRepoFile(t, dashboardFile)
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
	keywords := []string{"sum", "count", "avg", "min", "max", "rate", "increase", "histogram_quantile", "vector", "absent", "or", "and", "unless", "bool"}
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
	exprs := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if _, dup := exprs[p.Title]; dup {
			t.Errorf("two panels titled %q", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs[p.Title] = append(exprs[p.Title], tg.Expr)
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced %q", p.Title, tg.Expr)
			}
			checkMetricNames(t, "panel "+strconv.Quote(p.Title), tg.Expr)
		}
	}
	// The runbook's panels, with what each must show.
	for title, want := range map[string][]string{
		"Active Karpenter Nodes": {`count(kube_node_labels{label_managed_by="karpenter"})`},
		"Pending Pods Count":     {`sum(kube_pod_status_phase{phase="Pending"})`},
		// How long a pod waits for its node, not how long one decision takes.
		"Node Provisioning Latency": {
			`histogram_quantile(0.99, sum by (le) (rate(karpenter_pods_startup_duration_seconds_bucket`,
			`karpenter_nodeclaims_startup_duration_seconds_bucket`,
		},
		"Provisioner Decision Time (PostFilter)": {`histogram_quantile(0.99, sum by (le) (rate(karpenter_provisioner_scheduling_duration_seconds_bucket`},
		"Instance Type Distribution":             {`count by (instance_type) (karpenter_nodes_allocatable`},
		"CPU Utilization per Node":               {`kube_pod_container_resource_requests{resource="cpu"}`, `label_managed_by="karpenter"`},
		"Memory Utilization per Node":            {`kube_pod_container_resource_requests{resource="memory"}`, `label_managed_by="karpenter"`},
	} {
		got, ok := exprs[title]
		if !ok {
			t.Errorf("no panel %q", title)
			continue
		}
		for _, w := range want {
			if !slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, w) }) {
				t.Errorf("panel %q queries %q, want one with %q", title, got, w)
			}
		}
	}
	for _, e := range exprs["Node Provisioning Latency"] {
		if strings.Contains(e, "scheduling_duration") {
			t.Errorf("Node Provisioning Latency plots %q: a decision's time is not the wait for a node", e)
		}
	}
	// "Given up" counts failures only: scale-down is not giving up.
	givenUp := strings.Join(exprs["NodeClaims Given Up (1h)"], " ")
	if !strings.Contains(givenUp, `reason=~"insufficient_capacity|liveness"`) {
		t.Errorf("NodeClaims Given Up (1h) queries %q: want only the failure reasons (insufficient_capacity, liveness)", givenUp)
	}
}
