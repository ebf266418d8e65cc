package disruption

import (
	"context"
	"fmt"
	"time"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// expire deletes claims older than their expireAfter. Expiry is forceful
// (Karpenter v1): budgets and do-not-disrupt do not hold it back; only pods
// on their way to the node do, for as long as they are.
func (l *loop) expire(ctx context.Context) {
	for _, k := range l.cands {
		d := k.claim.Spec.ExpireAfter
		if d.IsNever() || !karpv1.IsConditionTrue(k.claim.Status.Conditions, karpv1.ConditionTypeLaunched) {
			continue
		}
		age := l.now.Sub(k.claim.CreationTimestamp.Time)
		if age < *d.Duration {
			continue
		}
		if k.nominated > 0 {
			l.c.report.blocked(k.claim, k.node, "DisruptionBlocked",
				fmt.Sprintf("Not expiring yet: %d pod(s) nominated to the node are on their way to it", k.nominated))
			continue
		}
		l.disrupt(ctx, k, ReasonExpired, fmt.Sprintf("expireAfter %s reached (age %s)", d.String(), age.Round(time.Second)))
	}
}
