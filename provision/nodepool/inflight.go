package nodepool

import (
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
			cached = &cachedClaim{key: key, options: packing.ClaimOptions(pool.Options, nc)}
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
