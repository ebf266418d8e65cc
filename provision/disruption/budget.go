package disruption

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/intstr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// budget counts, for one NodePool, the nodes its disruption budgets are
// taken against, as Karpenter v1 does: the total is the pool's initialized
// nodes; every one of them that is being deleted (for any reason, by anyone)
// or is not Ready uses up one disruption.
type budget struct {
	pool       *karpv1.NodePool
	total      int
	disrupting int
}

// allowed is how many more of the pool's nodes may be disrupted now for
// reason: the smallest of the active budgets that cover the reason, less
// what is already disrupting, never below zero. A budget that cannot be
// read allows nothing (fail closed).
func (b *budget) allowed(reason karpv1.DisruptionReason, now time.Time) (int, string, error) {
	limit, by, err := poolAllows(b.pool, reason, b.total, now)
	left := limit - b.disrupting
	if left < 0 {
		left = 0
	}
	return left, by, err
}

// poolAllows is the smallest number of disruptions the pool's active
// budgets covering reason allow out of total nodes, and the budget that
// sets it ("" when unbounded).
func poolAllows(np *karpv1.NodePool, reason karpv1.DisruptionReason, total int, now time.Time) (int, string, error) {
	limit, by := math.MaxInt32, ""
	budgets := np.Spec.Disruption.Budgets
	if len(budgets) == 0 {
		// What the API defaults an unset list to.
		budgets = []karpv1.Budget{{Nodes: "10%"}}
	}
	var errs []string
	for i, b := range budgets {
		if len(b.Reasons) > 0 && !hasReason(b.Reasons, reason) {
			continue
		}
		n, err := budgetAllows(b, total, now)
		if err != nil {
			errs = append(errs, fmt.Sprintf("budgets[%d]: %v", i, err))
		}
		if n < limit {
			limit, by = n, describeBudget(i, b)
		}
	}
	if len(errs) > 0 {
		return limit, by, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return limit, by, nil
}

// budgetAllows is what one budget allows out of total nodes: unbounded
// while its schedule is not active, else its count or its percentage of
// total rounded up (as Kubernetes rounds a PDB's maxUnavailable).
func budgetAllows(b karpv1.Budget, total int, now time.Time) (int, error) {
	active, err := budgetActive(b, now)
	if err != nil {
		return 0, err
	}
	if !active {
		return math.MaxInt32, nil
	}
	v := intstr.FromString(b.Nodes)
	if n, err := strconv.Atoi(b.Nodes); err == nil {
		v = intstr.FromInt32(int32(n))
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, total, true)
	if err != nil {
		return 0, fmt.Errorf("nodes %q: %w", b.Nodes, err)
	}
	return n, nil
}

// budgetActive reports whether a budget applies now: always without a
// schedule; with one, from each hit of the cron schedule (UTC) for
// duration.
func budgetActive(b karpv1.Budget, now time.Time) (bool, error) {
	if b.Schedule == nil && b.Duration == nil {
		return true, nil
	}
	if b.Schedule == nil || b.Duration == nil {
		return false, fmt.Errorf("schedule and duration must be set together")
	}
	schedule, err := cron.ParseStandard("TZ=UTC " + *b.Schedule)
	if err != nil {
		return false, fmt.Errorf("schedule %q: %w", *b.Schedule, err)
	}
	// Active if a hit fell within the last duration: the first hit after
	// (now - duration) is not later than now.
	now = now.UTC()
	next := schedule.Next(now.Add(-b.Duration.Duration))
	return !next.After(now), nil
}

// budgetLimit is what the pool's budgets allow in all for reason, for
// the message that says a budget holds a node back.
func budgetLimit(b *budget, reason karpv1.DisruptionReason, now time.Time) string {
	n, _, _ := poolAllows(b.pool, reason, b.total, now)
	return fmt.Sprint(n)
}

func hasReason(reasons []karpv1.DisruptionReason, r karpv1.DisruptionReason) bool {
	for _, x := range reasons {
		if x == r {
			return true
		}
	}
	return false
}

func describeBudget(i int, b karpv1.Budget) string {
	s := fmt.Sprintf("budgets[%d] (nodes: %q", i, b.Nodes)
	if b.Schedule != nil && b.Duration != nil {
		s += fmt.Sprintf(", schedule %q for %s", *b.Schedule, b.Duration.Duration)
	}
	if len(b.Reasons) > 0 {
		rs := make([]string, len(b.Reasons))
		for j, r := range b.Reasons {
			rs[j] = string(r)
		}
		s += ", reasons " + strings.Join(rs, ",")
	}
	return s + ")"
}
