package disruption

import (
	"fmt"
	"math"
	"strconv"

	v1 "k8s.io/api/core/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// The Balanced consolidation policy makes a move (removing a node, or
// replacing it with a cheaper one) only when what it saves is worth the
// disruption, both as shares of the NodePool's totals:
//
//	score = (savings / pool cost) / (disruption cost / pool disruption cost)
//
// and the move is made when score >= 1/k, k being consolidationThreshold
// (1 to 3, default 2). A node's disruption cost is 1 for the node itself
// plus, for each pod that must move, clamp(1 + priority/2^25 +
// pod-deletion-cost/2^27, -10, 10), the pods' part scaled by the share of
// the node's expireAfter still ahead of it. These are Karpenter's terms,
// so a pool behaves here as it would there.

// defaultConsolidationThreshold is k when consolidationThreshold is unset.
const defaultConsolidationThreshold = 2

// podDeletionCostAnnotation ranks pods for ReplicaSet scale-down; a higher
// cost makes a pod, and so its node, dearer to disrupt.
const podDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

func balanced(np *karpv1.NodePool) bool {
	return np.Spec.Disruption.ConsolidationPolicy == karpv1.ConsolidationPolicyBalanced
}

func threshold(np *karpv1.NodePool) float64 {
	if k := np.Spec.Disruption.ConsolidationThreshold; k != nil && *k > 0 {
		return float64(*k)
	}
	return defaultConsolidationThreshold
}

// podCost is one pod's share of its node's disruption cost.
func podCost(p *v1.Pod) float64 {
	c := 1.0
	if p.Spec.Priority != nil {
		c += float64(*p.Spec.Priority) / (1 << 25)
	}
	if s, ok := p.Annotations[podDeletionCostAnnotation]; ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			c += float64(n) / (1 << 27)
		}
	}
	return math.Max(-10, math.Min(10, c))
}

// disruptionCost is what disrupting k costs: the node, and its pods
// weighted by how much of its lifetime is left.
func (l *loop) disruptionCost(k *candidate) float64 {
	pods := 0.0
	for _, p := range k.movable {
		pods += podCost(p)
	}
	return 1 + pods*l.lifetimeRemaining(k)
}

// lifetimeRemaining is the share of expireAfter still ahead of the node;
// 1 without expiry.
func (l *loop) lifetimeRemaining(k *candidate) float64 {
	d := k.claim.Spec.ExpireAfter
	if d.IsNever() || *d.Duration <= 0 {
		return 1
	}
	left := 1 - float64(l.now.Sub(k.claim.CreationTimestamp.Time))/float64(*d.Duration)
	return math.Max(0, math.Min(1, left))
}

// poolTotals are a pool's hourly cost and disruption cost over its
// initialized nodes; priced is false when a node's price is unknown.
type poolTotals struct {
	cost, disruption float64
	priced           bool
}

func (l *loop) totals(pool string) poolTotals {
	if t, ok := l.poolTotals[pool]; ok {
		return t
	}
	t := poolTotals{priced: true}
	for _, k := range l.cands {
		if k.pool.Name != pool || !k.initialized || k.node == nil {
			continue
		}
		price, ok := l.price(k)
		if !ok {
			t.priced = false
		}
		t.cost += price
		t.disruption += l.disruptionCost(k)
	}
	if l.poolTotals == nil {
		l.poolTotals = map[string]poolTotals{}
	}
	l.poolTotals[pool] = t
	return t
}

// balancedVerdict judges a move of k that saves savings per hour under
// k's pool's Balanced policy: "" when it may be made, else why not.
func (l *loop) balancedVerdict(k *candidate, savings float64) string {
	t := l.totals(k.pool.Name)
	if !t.priced || t.cost <= 0 {
		return "Balanced needs the price of every node of the pool, and some are not known"
	}
	savedShare := savings / t.cost
	disruptedShare := l.disruptionCost(k) / t.disruption
	score := savedShare / disruptedShare
	need := 1 / threshold(k.pool)
	if score < need {
		return fmt.Sprintf("Balanced: the move saves %.1f%% of the pool's cost for %.1f%% of its disruption cost (score %.2f, below %.2f)",
			100*savedShare, 100*disruptedShare, score, need)
	}
	return ""
}
