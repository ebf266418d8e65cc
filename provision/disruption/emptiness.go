package disruption

import (
	"context"
	"fmt"
	"sort"
	"time"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// empty removes nodes with nothing to move and nothing on its way, that
// have been so for consolidateAfter, fewest-recently-used first.
func (l *loop) empty(ctx context.Context) {
	empty := l.filter(func(k *candidate) bool {
		return k.initialized && consolidationEnabled(k.pool) && len(k.movable) == 0 && l.consolidatable(k)
	})
	sort.SliceStable(empty, func(i, j int) bool { return empty[i].lastEvent.Before(empty[j].lastEvent) })
	for _, k := range empty {
		if !l.mayDisrupt(k, karpv1.DisruptionReasonEmpty) {
			continue
		}
		l.disrupt(ctx, k, string(karpv1.DisruptionReasonEmpty),
			fmt.Sprintf("no pods but DaemonSet and static pods since %s (consolidateAfter %s)",
				k.lastEvent.UTC().Format(time.RFC3339), k.pool.Spec.Disruption.ConsolidateAfter.String()))
	}
}
