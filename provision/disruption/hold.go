package disruption

import (
	"fmt"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
)

// mayDisrupt checks what holds back voluntary disruption of k for reason,
// records why when something does, and reports whether k may go.
func (l *loop) mayDisrupt(k *candidate, reason karpv1.DisruptionReason) bool {
	if why := l.voluntaryBlock(k); why != "" {
		l.c.report.blocked(k.claim, k.node, "DisruptionBlocked", fmt.Sprintf("Not disrupting (%s): %s", reason, why))
		return false
	}
	b := l.budgets[k.pool.Name]
	left, by, err := b.allowed(reason, l.now)
	if err != nil {
		l.c.report.blocked(k.claim, k.node, "DisruptionBlocked",
			fmt.Sprintf("Not disrupting (%s): NodePool %s's budgets cannot be read: %v", reason, k.pool.Name, err))
		return false
	}
	if left <= 0 {
		l.c.report.blocked(k.claim, k.node, "DisruptionBlocked",
			fmt.Sprintf("Not disrupting (%s): NodePool %s's disruption budget allows no more now: %s allows %s of %d node(s), %d disrupting",
				reason, k.pool.Name, by, budgetLimit(b, reason, l.now), b.total, b.disrupting))
		return false
	}
	return true
}

// voluntaryBlock says what keeps k from voluntary disruption, or "".
func (l *loop) voluntaryBlock(k *candidate) string {
	if k.claim.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true" {
		return "the NodeClaim has " + karpv1.DoNotDisruptAnnotationKey
	}
	if k.node != nil && k.node.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true" {
		return "the node has " + karpv1.DoNotDisruptAnnotationKey
	}
	if k.nominated > 0 {
		return fmt.Sprintf("%d pod(s) nominated to the node are on their way to it", k.nominated)
	}
	for _, p := range k.pods {
		if drain.BlocksVoluntaryDisruption(p) {
			return fmt.Sprintf("pod %s/%s has %s", p.Namespace, p.Name, karpv1.DoNotDisruptAnnotationKey)
		}
	}
	for _, p := range k.movable {
		if drain.ToleratesDisruptedTaint(p) {
			continue // the drain leaves it alone
		}
		if why := l.pdbs.blocking(p); why != "" {
			return why
		}
	}
	return ""
}

// consolidatable reports whether k's pool consolidates at all and k has had
// no pod bound or removed for consolidateAfter.
func (l *loop) consolidatable(k *candidate) bool {
	d := k.pool.Spec.Disruption.ConsolidateAfter
	if d.IsNever() || k.lastEvent.IsZero() {
		return false
	}
	return !l.now.Before(k.lastEvent.Add(*d.Duration))
}

// consolidationEnabled is false for static pools (replicas set), whose
// size is not consolidation's to change.
func consolidationEnabled(np *karpv1.NodePool) bool {
	return np.Spec.Replicas == nil && !np.Spec.Disruption.ConsolidateAfter.IsNever()
}

// underutilizedEnabled is true for WhenEmptyOrUnderutilized (the default)
// and Balanced, which weighs each move (balanced.go).
func underutilizedEnabled(np *karpv1.NodePool) bool {
	p := np.Spec.Disruption.ConsolidationPolicy
	return consolidationEnabled(np) && (p == "" || p == karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized || p == karpv1.ConsolidationPolicyBalanced)
}
