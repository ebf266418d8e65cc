package packing

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// Pool is a NodePool as the packing sees it: what every node it launches
// carries (labels, taints), what it can launch (options, cheapest first),
// how much more it may launch (remaining limits), and what runs on every
// node regardless of pods (DaemonSet pods).
type Pool struct {
	Name          string
	Weight        int32
	Labels        map[string]string
	Taints        []v1.Taint
	StartupTaints []v1.Taint
	Options       []*PoolOption
	// Remaining is limits minus what the pool's NodeClaims hold; nil when the pool has no limits.
	Remaining v1.ResourceList
	// Daemons are the pods DaemonSets would run on a node of this pool.
	Daemons        []*v1.Pod
	DaemonRequests *framework.Resource
	// Static is set for a static NodePool (spec.replicas): its node count
	// is fixed, and pods never open claims on it.
	Static bool
	// MinValues every claim's options must keep; nil when none are set.
	MinValues MinValues
	// Unavailable says why the pool cannot provision now; empty when it can.
	Unavailable string
	// Version changes whenever what the pool offers may have changed (its
	// NodePool, node class, DaemonSets, the catalogue, NodeOverlays);
	// Remaining changes without it.
	Version string
}

// MaxAllocatable is the element-wise maximum allocatable across opts: a
// need that exceeds it fits none of them, which rejects a full claim
// without scanning its options.
func MaxAllocatable(opts []*PoolOption) *framework.Resource {
	max := &framework.Resource{}
	for _, o := range opts {
		a := o.allocatable
		if a.MilliCPU > max.MilliCPU {
			max.MilliCPU = a.MilliCPU
		}
		if a.Memory > max.Memory {
			max.Memory = a.Memory
		}
		if a.EphemeralStorage > max.EphemeralStorage {
			max.EphemeralStorage = a.EphemeralStorage
		}
		if a.AllowedPodNumber > max.AllowedPodNumber {
			max.AllowedPodNumber = a.AllowedPodNumber
		}
		for name, q := range a.ScalarResources {
			if q > max.ScalarResources[name] {
				max.SetScalar(name, q)
			}
		}
	}
	return max
}

// InFlight is a created NodeClaim whose node is not ready for pods yet,
// with the options it may still launch as.
type InFlight struct {
	Name    string
	Pool    *Pool
	Options []*PoolOption
	Created time.Time
	// Ended is set for a NodeClaim that takes no more pods: being deleted,
	// or its node initialized (the scheduler places pods on it directly).
	Ended bool
}

// ClaimSpec is a planned claim as it closes: what the NodeClaim object is
// made from.
type ClaimSpec struct {
	Name     string
	NodePool string
	// Options hold every pod nominated to the claim, cheapest first.
	Options []*PoolOption
	// Requests are the pods' and daemons' requests the node must hold.
	Requests v1.ResourceList
}
