package nodepool

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// InFlight returns the NodeClaims whose node cannot take pods yet (not
// initialized, not deleting) with the options they may still launch as, and
// the others marked Ended:
// their pool's options (from pools, as Pools returned them) narrowed by the
// claim's requirements and, once launched, by its instance type, zone and
// capacity type labels.
func (s *Source) InFlight(current []*packing.Pool) []packing.InFlight {
	claims, err := s.NodeClaims.List(labels.Everything())
	if err != nil {
		return nil
	}
	pools := map[string]*packing.Pool{}
	for _, p := range current {
		pools[p.Name] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight == nil {
		s.inFlight = map[string]*cachedClaim{}
	}
	seen := map[string]bool{}
	var out []packing.InFlight
	for _, nc := range claims {
		if nc.DeletionTimestamp != nil || meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized) {
			out = append(out, packing.InFlight{Name: nc.Name, Ended: true})
			continue
		}
		pool := pools[nc.Labels[karpv1.NodePoolLabelKey]]
		if pool == nil || len(pool.Options) == 0 {
			continue
		}
		seen[nc.Name] = true
		key := nc.ResourceVersion + "/" + s.pools[pool.Name].key
		if s.overlays != nil {
			key += "/" + s.overlays.key // the pool's options change with the overlays
		}
		cached := s.inFlight[nc.Name]
		if cached == nil || cached.key != key {
			cached = &cachedClaim{key: key, options: claimOptions(nc, pool)}
			s.inFlight[nc.Name] = cached
		}
		out = append(out, packing.InFlight{Name: nc.Name, Pool: pool, Options: cached.options, Created: nc.CreationTimestamp.Time})
	}
	for name := range s.inFlight {
		if !seen[name] {
			delete(s.inFlight, name)
		}
	}
	return out
}

// launchedLabels pin a launched claim to what it launched as.
var launchedLabels = []string{"node.kubernetes.io/instance-type", "topology.kubernetes.io/zone", karpv1.CapacityTypeLabelKey}

func claimOptions(nc *karpv1.NodeClaim, pool *packing.Pool) []*packing.PoolOption {
	selector, err := requirementsSelector(nc.Spec.Requirements)
	if err != nil {
		return nil
	}
	var out []*packing.PoolOption
	for _, o := range pool.Options {
		if selector != nil && !selector.Match(o.Node) {
			continue
		}
		match := true
		for _, k := range launchedLabels {
			if v, ok := nc.Labels[k]; ok && o.Node.Labels[k] != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, o)
		}
	}
	return out
}

// ClaimOptions are the options a NodeClaim may launch as now: its pool's
// current options narrowed by the claim's requirements.
func (s *Source) ClaimOptions(nc *karpv1.NodeClaim) ([]*packing.PoolOption, error) {
	name := nc.Labels[karpv1.NodePoolLabelKey]
	for _, p := range s.Pools() {
		if p.Name != name {
			continue
		}
		if p.Unavailable != "" {
			return nil, fmt.Errorf("nodepool %q: %s", name, p.Unavailable)
		}
		return claimOptions(nc, p), nil
	}
	return nil, fmt.Errorf("nodepool %q not found", name)
}
