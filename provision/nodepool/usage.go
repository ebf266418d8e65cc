package nodepool

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// usageTracker keeps, per NodePool, the capacity its NodeClaims hold (the
// launched capacity where known, else what the claim asked for), each
// claim counting as one node. It follows NodeClaim events, so a decision
// reads it in time proportional to the pools, not to the claims.
type usageTracker struct {
	mu     sync.Mutex
	byPool map[string]v1.ResourceList
	claims map[string]claimUsage // by NodeClaim name: what it added
}

type claimUsage struct {
	pool string
	held v1.ResourceList
}

// Watch keeps the pools' usage from the NodeClaim informer's events.
// Without it, every Pools call sums the NodeClaims afresh.
func (s *Source) Watch(claims cache.SharedIndexInformer) error {
	t := &usageTracker{byPool: map[string]v1.ResourceList{}, claims: map[string]claimUsage{}}
	_, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { t.set(obj) },
		UpdateFunc: func(_, obj interface{}) { t.set(obj) },
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if nc, ok := obj.(*karpv1.NodeClaim); ok {
				t.mu.Lock()
				t.unset(nc.Name)
				t.mu.Unlock()
			}
		},
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tracker = t
	s.mu.Unlock()
	return nil
}

func (t *usageTracker) set(obj interface{}) {
	nc, ok := obj.(*karpv1.NodeClaim)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unset(nc.Name)
	u, ok := holds(nc)
	if !ok {
		return
	}
	t.claims[nc.Name] = u
	addTo(t.byPool, u, 1)
}

func (t *usageTracker) unset(name string) {
	if u, ok := t.claims[name]; ok {
		addTo(t.byPool, u, -1)
		delete(t.claims, name)
	}
}

// snapshot copies the per-pool usage.
func (t *usageTracker) snapshot() map[string]v1.ResourceList {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]v1.ResourceList, len(t.byPool))
	for pool, total := range t.byPool {
		out[pool] = total.DeepCopy()
	}
	return out
}

// holds is what one NodeClaim counts against its pool.
func holds(nc *karpv1.NodeClaim) (claimUsage, bool) {
	pool := nc.Labels[karpv1.NodePoolLabelKey]
	if pool == "" {
		return claimUsage{}, false
	}
	held := nc.Status.Capacity
	if len(held) == 0 {
		held = nc.Spec.Resources.Requests
	}
	return claimUsage{pool: pool, held: held}, true
}

var oneNodeQuantity = resource.MustParse("1")

// addTo adds (sign 1) or takes away (sign -1) one claim's usage.
func addTo(byPool map[string]v1.ResourceList, u claimUsage, sign int) {
	total := byPool[u.pool]
	if total == nil {
		total = v1.ResourceList{}
		byPool[u.pool] = total
	}
	add := func(name v1.ResourceName, q resource.Quantity) {
		sum := total[name]
		if sign > 0 {
			sum.Add(q)
		} else {
			sum.Sub(q)
		}
		total[name] = sum
	}
	for name, q := range u.held {
		add(name, q)
	}
	add(packing.ResourceNodes, oneNodeQuantity)
}

// usage sums, per NodePool, the capacity of its NodeClaims and counts them
// as nodes: from the tracker when Watch was called, else from the lister.
func (s *Source) usage() map[string]v1.ResourceList {
	s.mu.Lock()
	t := s.tracker
	s.mu.Unlock()
	if t != nil {
		return t.snapshot()
	}
	claims, err := s.NodeClaims.List(labels.Everything())
	if err != nil {
		return nil
	}
	out := map[string]v1.ResourceList{}
	for _, nc := range claims {
		if u, ok := holds(nc); ok {
			addTo(out, u, 1)
		}
	}
	return out
}

// remaining is limits minus usage for the resources the pool limits; nil
// when it has no limits.
func remaining(np *karpv1.NodePool, used v1.ResourceList) v1.ResourceList {
	if len(np.Spec.Limits) == 0 {
		return nil
	}
	out := v1.ResourceList{}
	for name, limit := range np.Spec.Limits {
		left := limit.DeepCopy()
		if u, ok := used[name]; ok {
			left.Sub(u)
		}
		out[name] = left
	}
	return out
}
