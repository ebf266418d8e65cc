package manifests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	monitoringDir = "manifests/overlays/components/monitoring"
	rulesFile     = monitoringDir + "/prometheusrule.yaml"
)

// prometheusRule is the part of a PrometheusRule that Prometheus loads.
type prometheusRule struct {
	Spec struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Record, Expr, For string
				Labels, Annotations      map[string]string
			}
		}
	}
}

// TestAlertRules checks the PrometheusRule's alerts: they read only series
// that exist, each says how bad it is and what to do, Prometheus's own
// promtool accepts them, and its unit tests (testdata/alerts_test.yaml)
// fire each alert on its condition and not beside it.
func TestAlertRules(t *testing.T) {
	raw := readRepoFile(t, rulesFile)
	// The object itself is validated against the operator's CRD in
	// TestAPIServer; here, what Prometheus makes of the rules.
	var pr prometheusRule
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	alerts := map[string]bool{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			where := "alert " + strconv.Quote(r.Alert)
			alerts[r.Alert] = true
			checkMetricNames(t, where, r.Expr)
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" && sev != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", where, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: a summary and a description (what to do) are needed", where)
			}
		}
	}
	// What an operator needs to hear about.
	for _, want := range []string{
		"FleetSchedulerDown", "FleetSchedulerPodsPendingTooLong", "FleetSchedulerLaunchesFailing",
		"FleetSchedulerNodesNotJoining", "FleetSchedulerNodePoolLimitReached", "FleetSchedulerInterruptions",
	} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian's prometheus package) is needed; `make test` installs it: %v", err)
	}
	dir := t.TempDir()
	groups, err := yaml.Marshal(map[string]any{"groups": yamlValue(t, raw, "spec", "groups")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), groups, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// yamlValue is the value at a path of keys in a YAML document.
func yamlValue(t *testing.T, raw []byte, path ...string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %v in the document", path)
		}
		v = m[k]
	}
	return v
}
