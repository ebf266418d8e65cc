package packing

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// AdmittingPod keeps the options whose node labels satisfy the pod's node
// selector and required node affinity. When the pod has neither, opts itself
// comes back: callers must not modify the result.
func AdmittingPod(opts []*PoolOption, pod *v1.Pod) []*PoolOption {
	if len(pod.Spec.NodeSelector) == 0 && (pod.Spec.Affinity == nil || pod.Spec.Affinity.NodeAffinity == nil ||
		pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil) {
		return opts // nothing to match: every option admits the pod
	}
	affinity := nodeaffinity.GetRequiredNodeAffinity(pod)
	out := make([]*PoolOption, 0, len(opts))
	for _, o := range opts {
		if ok, _ := affinity.Match(o.Node); ok {
			out = append(out, o)
		}
	}
	return out
}

// WithRoomFor keeps the options whose allocatable holds need. When all of
// them do, opts itself comes back: callers must not modify the result.
func WithRoomFor(opts []*PoolOption, need *framework.Resource) []*PoolOption {
	n := 0
	for _, o := range opts {
		if Fits(need, o.allocatable) {
			n++
		}
	}
	if n == len(opts) {
		return opts
	}
	out := make([]*PoolOption, 0, n)
	for _, o := range opts {
		if Fits(need, o.allocatable) {
			out = append(out, o)
		}
	}
	return out
}

// ResourceNodes is the node count in NodePool limits and status.resources:
// every option is one node.
const ResourceNodes v1.ResourceName = "nodes"

// oneNode is what each option counts against a nodes limit.
var oneNode = resource.MustParse("1")

// WithinLimits keeps the options whose whole capacity, and one more node,
// stays within the remaining limits. A nil remaining means the pool has no
// limits.
func WithinLimits(opts []*PoolOption, remaining v1.ResourceList) []*PoolOption {
	if remaining == nil {
		return opts
	}
	out := make([]*PoolOption, 0, len(opts))
	for _, o := range opts {
		if withinLimits(o.Capacity, remaining) {
			out = append(out, o)
		}
	}
	return out
}

func withinLimits(capacity, remaining v1.ResourceList) bool {
	for name, left := range remaining {
		c, ok := capacity[name]
		if name == ResourceNodes {
			c, ok = oneNode, true
		}
		if ok && c.Cmp(left) > 0 {
			return false
		}
	}
	return true
}

// Fits reports whether need fits in have for every resource need asks for.
func Fits(need, have *framework.Resource) bool {
	if need.MilliCPU > have.MilliCPU || need.Memory > have.Memory ||
		need.EphemeralStorage > have.EphemeralStorage || need.AllowedPodNumber > have.AllowedPodNumber {
		return false
	}
	for name, q := range need.ScalarResources {
		if q > 0 && q > have.ScalarResources[name] {
			return false
		}
	}
	return true
}

// MinAllocatable is the element-wise minimum allocatable across opts: a
// node with it is one every option can provide.
func MinAllocatable(opts []*PoolOption) *framework.Resource {
	if len(opts) == 0 {
		return &framework.Resource{}
	}
	min := opts[0].allocatable.Clone()
	for _, o := range opts[1:] {
		a := o.allocatable
		min.MilliCPU = minInt64(min.MilliCPU, a.MilliCPU)
		min.Memory = minInt64(min.Memory, a.Memory)
		min.EphemeralStorage = minInt64(min.EphemeralStorage, a.EphemeralStorage)
		if a.AllowedPodNumber < min.AllowedPodNumber {
			min.AllowedPodNumber = a.AllowedPodNumber
		}
		for name, q := range min.ScalarResources {
			min.ScalarResources[name] = minInt64(q, a.ScalarResources[name])
		}
	}
	return min
}

// MinCapacity is the element-wise minimum capacity across opts, and one
// node, used to count a claim whose instance type is not chosen yet against
// limits.
func MinCapacity(opts []*PoolOption) v1.ResourceList {
	if len(opts) == 0 {
		return v1.ResourceList{}
	}
	out := opts[0].Capacity.DeepCopy()
	out[ResourceNodes] = oneNode.DeepCopy()
	for _, o := range opts[1:] {
		for name, q := range out {
			other, ok := o.Capacity[name]
			if name == ResourceNodes {
				continue
			}
			if !ok {
				delete(out, name)
				continue
			}
			if other.Cmp(q) < 0 {
				out[name] = other.DeepCopy()
			}
		}
	}
	return out
}

// ResourceList turns the scheduler's resource form back into a list, for a
// node's allocatable.
func ResourceList(r *framework.Resource) v1.ResourceList {
	out := v1.ResourceList{
		v1.ResourceCPU:              *resource.NewMilliQuantity(r.MilliCPU, resource.DecimalSI),
		v1.ResourceMemory:           *resource.NewQuantity(r.Memory, resource.BinarySI),
		v1.ResourceEphemeralStorage: *resource.NewQuantity(r.EphemeralStorage, resource.BinarySI),
		v1.ResourcePods:             *resource.NewQuantity(int64(r.AllowedPodNumber), resource.DecimalSI),
	}
	for name, q := range r.ScalarResources {
		out[name] = *resource.NewQuantity(q, resource.DecimalSI)
	}
	return out
}

func minInt64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// PinnedTo keeps the options whose node label key has value; used to hold a
// claim to the zone (or other topology domain) its pods were judged in.
func PinnedTo(opts []*PoolOption, key, value string) []*PoolOption {
	out := make([]*PoolOption, 0, len(opts))
	for _, o := range opts {
		if o.Node.Labels[key] == value {
			out = append(out, o)
		}
	}
	return out
}
