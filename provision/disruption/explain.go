package disruption

import (
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
)

// The loop's rules on objects read from the cluster, for `kubectl fleet
// explain node`: the same checks and the same words as the loop's events.

// NodeHold says what keeps a node from voluntary disruption, in the words
// of the DisruptionBlocked event, or "" when nothing does: do-not-disrupt
// on the claim, the node or a pod, pods nominated to the node (nominated),
// a PodDisruptionBudget that allows no disruption of a pod that would be
// evicted. pods are the pods bound to the node.
func NodeHold(nc *karpv1.NodeClaim, node *v1.Node, pods []*v1.Pod, nominated int, pdbs []*policyv1.PodDisruptionBudget) string {
	k := &candidate{claim: nc, node: node, pods: pods, movable: Movable(pods), nominated: nominated}
	l := &loop{pdbs: indexPDBs(pdbs)}
	return l.voluntaryBlock(k)
}

// Movable are the pods a drain of their node would evict for their owners
// to recreate elsewhere (not DaemonSet, mirror or finished pods).
func Movable(pods []*v1.Pod) []*v1.Pod {
	var out []*v1.Pod
	for _, p := range pods {
		if drain.IsReschedulable(p) {
			out = append(out, p)
		}
	}
	return out
}

// BudgetLeft is how many more of a pool's nodes its disruption budgets let
// go now for reason, out of total initialized nodes of which disrupting
// are going already; by names the budget that sets it and limit what the
// budgets allow in all.
func BudgetLeft(np *karpv1.NodePool, reason karpv1.DisruptionReason, total, disrupting int, now time.Time) (left int, by, limit string, err error) {
	b := &budget{pool: np, total: total, disrupting: disrupting}
	left, by, err = b.allowed(reason, now)
	return left, by, budgetLimit(b, reason, now), err
}

// PoolNode is one initialized node of a pool, for BalancedVerdict.
type PoolNode struct {
	Claim *karpv1.NodeClaim
	// Pods are those a drain would move (Movable).
	Pods []*v1.Pod
	// Price per hour; Priced is false when it is not known.
	Price  float64
	Priced bool
}

// BalancedVerdict judges, under the pool's Balanced policy, removing node
// (saving its price) against the pool's nodes: "" when the move is worth
// its disruption, else why not, with the figures of the Unconsolidatable
// event.
func BalancedVerdict(np *karpv1.NodePool, node PoolNode, pool []PoolNode, now time.Time) string {
	l := &loop{now: now}
	t := poolTotals{priced: true}
	for _, n := range pool {
		t.priced = t.priced && n.Priced
		t.cost += n.Price
		t.disruption += l.disruptionCost(&candidate{claim: n.Claim, movable: n.Pods})
	}
	l.poolTotals = map[string]poolTotals{np.Name: t}
	return l.balancedVerdict(&candidate{claim: node.Claim, pool: np, movable: node.Pods}, node.Price)
}
