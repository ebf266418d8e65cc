package nodepool

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// usage sums, per NodePool, the capacity of its NodeClaims (the launched
// capacity where known, else what the claim asked for) and counts them as
// nodes.
func (s *Source) usage() map[string]v1.ResourceList {
	claims, err := s.NodeClaims.List(labels.Everything())
	if err != nil {
		return nil
	}
	out := map[string]v1.ResourceList{}
	for _, nc := range claims {
		pool := nc.Labels[karpv1.NodePoolLabelKey]
		if pool == "" {
			continue
		}
		held := nc.Status.Capacity
		if len(held) == 0 {
			held = nc.Spec.Resources.Requests
		}
		total := out[pool]
		if total == nil {
			total = v1.ResourceList{}
			out[pool] = total
		}
		for name, q := range held {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
		nodes := total[packing.ResourceNodes]
		nodes.Add(resource.MustParse("1"))
		total[packing.ResourceNodes] = nodes
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
