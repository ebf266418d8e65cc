package disruption

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// underutilized removes nodes whose pods all fit on the other nodes, the
// nodes with the fewest pods first.
func (l *loop) underutilized(ctx context.Context) {
	under := l.filter(func(k *candidate) bool {
		return k.initialized && k.node != nil && len(k.movable) > 0 && underutilizedEnabled(k.pool) && l.consolidatable(k)
	})
	sort.SliceStable(under, func(i, j int) bool {
		if len(under[i].movable) != len(under[j].movable) {
			return len(under[i].movable) < len(under[j].movable)
		}
		return under[i].claim.CreationTimestamp.Before(&under[j].claim.CreationTimestamp)
	})
	for _, k := range under {
		if l.received[k.node.Name] {
			continue // judged again next run, with what it is now meant to hold
		}
		if !l.mayDisrupt(k, karpv1.DisruptionReasonUnderutilized) {
			continue
		}
		if p := claimsDevices(k.movable); p != nil {
			// The simulation runs without DynamicResources: it cannot tell
			// whether the devices exist elsewhere.
			l.c.report.blocked(k.claim, k.node, "Unconsolidatable",
				fmt.Sprintf("Not consolidating: pod %s/%s claims devices (resourceClaims), which the simulation cannot place", p.Namespace, p.Name))
			continue
		}
		price, priced := l.price(k)
		if !priced {
			price = 0 // no replacement: its price is unknown
		}
		if balanced(k.pool) {
			// Removing the node saves the most a move of it can: if that
			// is not worth it, no replacement is.
			if why := l.balancedVerdict(k, price); why != "" {
				l.c.report.blocked(k.claim, k.node, "Unconsolidatable", "Not consolidating: "+why)
				continue
			}
		}
		placed, why := l.relocateOrReplace(ctx, k, karpv1.DisruptionReasonUnderutilized, "", price)
		switch placed {
		case "":
			l.c.report.blocked(k.claim, k.node, "Unconsolidatable", "Not consolidating: "+why)
		case replaced:
		default:
			l.disrupt(ctx, k, string(karpv1.DisruptionReasonUnderutilized), placed)
		}
	}
}

// claimsDevices returns a pod with dynamic resource claims, or nil.
func claimsDevices(pods []*v1.Pod) *v1.Pod {
	for _, p := range pods {
		if len(p.Spec.ResourceClaims) > 0 {
			return p
		}
	}
	return nil
}
