package metrics

import (
	"strings"
	"testing"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
)

// TestInitNodePool: a pool's NodeClaim series exist at zero before its
// first claim, so that Prometheus sees the first one as an increase.
func TestInitNodePool(t *testing.T) {
	Register()
	InitNodePool("init-test")
	want := `# HELP karpenter_nodeclaims_created_total [ALPHA] Number of NodeClaims created, by reason and nodepool.
# TYPE karpenter_nodeclaims_created_total counter
karpenter_nodeclaims_created_total{nodepool="init-test",reason="provisioning"} 0
# HELP karpenter_nodeclaims_terminated_total [ALPHA] Number of NodeClaims terminated, by nodepool.
# TYPE karpenter_nodeclaims_terminated_total counter
karpenter_nodeclaims_terminated_total{nodepool="init-test"} 0
`
	if err := testutil.GatherAndCompare(legacyregistry.DefaultGatherer, strings.NewReader(want),
		"karpenter_nodeclaims_created_total", "karpenter_nodeclaims_terminated_total"); err != nil {
		t.Error(err)
	}
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	histogram := false
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["nodepool"] != "init-test" {
				continue
			}
			switch f.GetName() {
			case "karpenter_nodeclaims_disrupted_total":
				reasons[labels["reason"]] = m.GetCounter().GetValue() == 0
			case "karpenter_nodeclaims_startup_duration_seconds":
				histogram = m.GetHistogram().GetSampleCount() == 0
			}
		}
	}
	for _, r := range []string{"empty", "underutilized", "drifted", "expired", "interruption", ReasonInsufficientCapacity, ReasonLiveness, ReasonGarbageCollected} {
		if !reasons[r] {
			t.Errorf("karpenter_nodeclaims_disrupted_total{reason=%q} is not exported at 0", r)
		}
	}
	if !histogram {
		t.Error("karpenter_nodeclaims_startup_duration_seconds is not exported empty")
	}
}
