package disruption

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

func TestBudgetAllowed(t *testing.T) {
	noon := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	daily := func(nodes string, d time.Duration, reasons ...karpv1.DisruptionReason) karpv1.Budget {
		return karpv1.Budget{Nodes: nodes, Schedule: ptr.To("@daily"), Duration: &metav1.Duration{Duration: d}, Reasons: reasons}
	}
	for _, tc := range []struct {
		name       string
		budgets    []karpv1.Budget
		total      int
		disrupting int
		reason     karpv1.DisruptionReason
		now        time.Time
		want       int
	}{
		{name: "unset is 10% rounded up", total: 3, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 1},
		{name: "count", budgets: []karpv1.Budget{{Nodes: "1"}}, total: 5, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 1},
		{name: "count less disrupting", budgets: []karpv1.Budget{{Nodes: "1"}}, total: 5, disrupting: 1, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 0},
		{name: "never below zero", budgets: []karpv1.Budget{{Nodes: "1"}}, total: 5, disrupting: 3, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 0},
		{name: "percent rounds up", budgets: []karpv1.Budget{{Nodes: "20%"}}, total: 19, reason: karpv1.DisruptionReasonDrifted, now: noon, want: 4},
		{name: "smallest wins", budgets: []karpv1.Budget{{Nodes: "50%"}, {Nodes: "2"}}, total: 10, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 2},
		{name: "zero blocks", budgets: []karpv1.Budget{{Nodes: "0"}}, total: 10, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 0},
		{name: "reasons limit a budget", budgets: []karpv1.Budget{{Nodes: "0", Reasons: []karpv1.DisruptionReason{karpv1.DisruptionReasonDrifted}}, {Nodes: "3"}},
			total: 10, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 3},
		{name: "reasons apply to their reason", budgets: []karpv1.Budget{{Nodes: "0", Reasons: []karpv1.DisruptionReason{karpv1.DisruptionReasonDrifted}}, {Nodes: "3"}},
			total: 10, reason: karpv1.DisruptionReasonDrifted, now: noon, want: 0},
		{name: "schedule active", budgets: []karpv1.Budget{daily("0", 10*time.Minute), {Nodes: "5"}}, total: 10,
			reason: karpv1.DisruptionReasonUnderutilized, now: time.Date(2025, 3, 4, 0, 5, 0, 0, time.UTC), want: 0},
		{name: "schedule active from its hit", budgets: []karpv1.Budget{daily("0", 10*time.Minute), {Nodes: "5"}}, total: 10,
			reason: karpv1.DisruptionReasonUnderutilized, now: time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC), want: 0},
		{name: "schedule over at its end", budgets: []karpv1.Budget{daily("0", 10*time.Minute), {Nodes: "5"}}, total: 10,
			reason: karpv1.DisruptionReasonUnderutilized, now: time.Date(2025, 3, 4, 0, 10, 0, 0, time.UTC), want: 5},
		{name: "schedule inactive", budgets: []karpv1.Budget{daily("0", 10*time.Minute), {Nodes: "5"}}, total: 10,
			reason: karpv1.DisruptionReasonUnderutilized, now: noon, want: 5},
		{name: "cron expression, UTC", budgets: []karpv1.Budget{{Nodes: "0", Schedule: ptr.To("0 9 * * 1-5"), Duration: &metav1.Duration{Duration: 8 * time.Hour}}},
			total: 10, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 0}, // a Tuesday, 12:00 UTC
		{name: "cron expression outside its window", budgets: []karpv1.Budget{{Nodes: "0", Schedule: ptr.To("0 9 * * 1-5"), Duration: &metav1.Duration{Duration: 8 * time.Hour}}},
			total: 10, reason: karpv1.DisruptionReasonEmpty, now: noon.Add(6 * time.Hour), want: 10 - 0},
		{name: "bad schedule fails closed", budgets: []karpv1.Budget{{Nodes: "5", Schedule: ptr.To("not a cron"), Duration: &metav1.Duration{Duration: time.Hour}}},
			total: 10, reason: karpv1.DisruptionReasonEmpty, now: noon, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := &karpv1.NodePool{Spec: karpv1.NodePoolSpec{Disruption: karpv1.Disruption{Budgets: tc.budgets}}}
			b := &budget{pool: np, total: tc.total, disrupting: tc.disrupting}
			got, _, _ := b.allowed(tc.reason, tc.now)
			if tc.name == "cron expression outside its window" {
				// Unbounded when no budget is active.
				if got < tc.want {
					t.Errorf("allowed = %d, want at least %d", got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("allowed = %d, want %d", got, tc.want)
			}
		})
	}
}
