package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/monitoring"
)

// This file's name sorts after seed_test.go and before workload_test.go:
// TestSeedDashboard runs on what the seed's scale-up and scale-down left
// in the sandbox's Prometheus.

// The runbook's "모니터링" queries, verbatim.
const (
	queryManagedNodes    = `count(kube_node_labels{label_managed_by="karpenter"})`
	queryProvisioningP99 = `histogram_quantile(0.99, karpenter_provisioner_scheduling_duration_seconds_bucket)`
	queryPendingPods     = `count(kube_pod_status_phase{phase="Pending"})`
)

// checkRunbookQueries asks the sandbox's Prometheus the runbook's three
// queries after the seed's scale-up (20/20 Running on managed nodes). Each
// must answer, with the cluster's state once Prometheus has scraped it.
// count(kube_pod_status_phase{phase="Pending"}) counts every pod's Pending
// series, 0 or 1, so it answers the number of pods; the pods actually
// Pending are sum(...), which must be 0 by now.
func checkRunbookQueries(ctx context.Context, t *testing.T, managedNodes int) {
	t.Helper()
	api := sandbox.Monitoring.API
	// Prometheus scrapes every 5s: wait until it has seen the scale-up's
	// end state.
	var nodes, p99, pods, pending, inAPI float64
	waitFor(ctx, t, "Prometheus to answer the runbook's queries with the cluster's state", 30*time.Second, func() bool {
		list, err := sandbox.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		inAPI = float64(len(list.Items))
		nodes = scalar(ctx, t, api, queryManagedNodes)
		p99 = scalar(ctx, t, api, queryProvisioningP99)
		pods = scalar(ctx, t, api, queryPendingPods)
		pending = scalar(ctx, t, api, `sum(kube_pod_status_phase{phase="Pending"})`)
		return nodes == float64(managedNodes) && !math.IsNaN(p99) && pods == inAPI && pending == 0
	})
	if p99 <= 0 || p99 > 10 {
		t.Errorf("%s = %v: want the p99 of the Provisioner's decisions, a fraction of a second", queryProvisioningP99, p99)
	}
	t.Logf("the runbook's queries after the scale-up: %s = %v; %s = %.6fs; %s = %v (pods in the cluster %v, Pending %v)",
		queryManagedNodes, nodes, queryProvisioningP99, p99, queryPendingPods, pods, inAPI, pending)
}

// scalar runs an instant query that must answer one sample.
func scalar(ctx context.Context, t *testing.T, api promv1.API, query string) float64 {
	t.Helper()
	v, _, err := api.Query(ctx, query, time.Now())
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return math.NaN()
	}
	return float64(vec[0].Value)
}

// TestSeedDashboard runs every query of the shipped Grafana dashboard
// against the sandbox's Prometheus over the time since the sandbox started,
// as Grafana would draw it after the scale-up and scale-down: each returns
// data, and the panels about provisioning show the scale-up. The alert
// rules of the monitoring component evaluate without error and none fires.
func TestSeedDashboard(t *testing.T) {
	ctx := testContext(t, time.Minute)
	api := sandbox.Monitoring.API
	if env := sandbox.EnvFile(); !strings.Contains(env, "PROMETHEUS_URL="+sandbox.Monitoring.URL+"\n") {
		t.Errorf(".sandbox/env does not export PROMETHEUS_URL=%s:\n%s", sandbox.Monitoring.URL, env)
	}
	raw, err := os.ReadFile(filepath.Join(sandbox.Root, "manifests", "dashboards", "fleet-scheduler.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title, Type string
			Targets     []struct{ Expr, LegendFormat string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	// The scale-down ended moments ago: wait for a scrape of both targets
	// after it, so the window holds its last counts.
	began := time.Now()
	waitFor(ctx, t, "a scrape of every target after the scale-down", 3*monitoring.ScrapeInterval, func() bool {
		targets, err := api.Targets(ctx)
		if err != nil || len(targets.Active) == 0 {
			return false
		}
		for _, tg := range targets.Active {
			if tg.LastScrape.Before(began) {
				return false
			}
		}
		return true
	})
	// Evaluated at End and every step before it, back to the sandbox's start.
	end, step := time.Now(), monitoring.ScrapeInterval
	window := promv1.Range{Start: end.Add(-(sandbox.Elapsed()/step + 1) * step), End: end, Step: step}
	// What the scale-up must show, beyond "some data": the target's
	// largest value over the window is above zero.
	mustRise := map[string]bool{}
	for _, name := range []string{
		"Active Karpenter Nodes/",
		"Instance Type Distribution/{{instance_type}}",
		"Node Provisioning Latency/pod pending to running p99",
		"Node Provisioning Latency/pod pending to running p50",
		"Node Provisioning Latency/node launch to initialized p99",
		"NodeClaim Lifecycle/created",
		"NodeClaim Lifecycle/launched",
		"NodeClaim Lifecycle/registered",
		"NodeClaim Lifecycle/initialized",
		"NodeClaim Lifecycle/terminated",
		"NodeClaim Lifecycle/removed: {{reason}}",
	} {
		mustRise[name] = true
	}
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			name := p.Title + "/" + tg.LegendFormat
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "1m")
			v, _, err := api.QueryRange(ctx, expr, window)
			if err != nil {
				t.Errorf("%s: %s: %v", name, expr, err)
				continue
			}
			samples, peak := 0, math.Inf(-1)
			for _, s := range v.(model.Matrix) {
				for _, x := range s.Values {
					if f := float64(x.Value); !math.IsNaN(f) {
						samples++
						peak = math.Max(peak, f)
					}
				}
			}
			switch {
			case samples == 0:
				t.Errorf("panel %s: no data for %s", name, expr)
			case mustRise[name] && peak <= 0:
				t.Errorf("panel %s: %s stayed at %v through the scale-up", name, expr, peak)
			default:
				t.Logf("panel %s: %d samples, max %.4g", name, samples, peak)
			}
			delete(mustRise, name)
		}
	}
	for name := range mustRise {
		t.Errorf("the dashboard has no %s", name)
	}
	if queries < 15 {
		t.Errorf("only %d queries in the dashboard", queries)
	}

	rules, err := api.Rules(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			a, ok := r.(promv1.AlertingRule)
			if !ok {
				continue
			}
			alerts++
			if a.Health != promv1.RuleHealthGood || a.LastError != "" {
				t.Errorf("alert %s: health %s %s", a.Name, a.Health, a.LastError)
			}
			if a.State == string(promv1.AlertStateFiring) {
				t.Errorf("alert %s fires on a healthy sandbox: %v", a.Name, a.Alerts)
			}
		}
	}
	if alerts < 6 {
		t.Errorf("Prometheus evaluates %d alerts; the monitoring component has 6", alerts)
	}
}
