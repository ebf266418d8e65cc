// Package packing holds the pure part of the provisioning decision: which
// launch options (instance type x zone x capacity type) a NodePool offers,
// which of them admit a pod, and how a claim's options narrow as pods pack
// onto it. The scheduler-framework side (running the Filter plugins on a
// node built from a claim) lives in plugins/provisioner.
package packing

import (
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// Option is one concrete way to launch a node: an instance type in a zone
// with a capacity type, at a price.
type Option struct {
	InstanceType string
	Zone         string
	CapacityType string
	Price        float64
	// Labels are the well-known labels a node of this option carries
	// (instance type, arch, os, zone, region, capacity type, instance-*).
	Labels      map[string]string
	Capacity    v1.ResourceList
	Allocatable v1.ResourceList
	// PriceOverlay names the NodeOverlay that set Price, and
	// CapacityOverlays those that added to Capacity and Allocatable; empty
	// when the option is the catalogue's own.
	PriceOverlay     string
	CapacityOverlays []string
}

// PoolOption is an Option as a given NodePool would launch it: its node
// carries the pool's labels too. Node is a label-only node used to match
// node selectors and affinity with component-helpers.
type PoolOption struct {
	*Option
	Node *v1.Node
	// allocatable is what pods may use: the option's allocatable less
	// daemons.
	allocatable *framework.Resource
	// daemons are the requests of the DaemonSet pods that run on this
	// option's nodes but not on every option of the pool (those are
	// Pool.DaemonRequests); nil when there are none.
	daemons *framework.Resource
}

// NewPoolOptions merges the pool's labels into each option, keeps those
// that satisfy the pool's requirements, and sorts them cheapest first.
// A nil selector admits every option.
func NewPoolOptions(options []*Option, poolLabels map[string]string, requirements *nodeaffinity.NodeSelector) []*PoolOption {
	out := make([]*PoolOption, 0, len(options))
	for _, o := range options {
		labels := make(map[string]string, len(o.Labels)+len(poolLabels))
		for k, v := range o.Labels {
			labels[k] = v
		}
		for k, v := range poolLabels {
			labels[k] = v
		}
		po := &PoolOption{Option: o, Node: &v1.Node{}, allocatable: framework.NewResource(o.Allocatable)}
		po.Node.Labels = labels
		if requirements != nil && !requirements.Match(po.Node) {
			continue
		}
		out = append(out, po)
	}
	SortCheapestFirst(out)
	return out
}

// SortCheapestFirst orders options by price, then by name and zone so that
// equal prices give a stable, reproducible order.
func SortCheapestFirst(opts []*PoolOption) {
	sort.SliceStable(opts, func(i, j int) bool {
		a, b := opts[i], opts[j]
		if a.Price != b.Price {
			return a.Price < b.Price
		}
		if a.InstanceType != b.InstanceType {
			return a.InstanceType < b.InstanceType
		}
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		return a.CapacityType < b.CapacityType
	})
}

// AllocatableResource is the option's allocatable in the scheduler's form,
// less the DaemonSet pods that run on this option alone (HoldForDaemons).
func (o *PoolOption) AllocatableResource() *framework.Resource { return o.allocatable }

// HoldForDaemons keeps r, the requests of DaemonSet pods that run on this
// option's nodes but not on every option of the pool, out of the room pods
// may use. Call it while the pool is being built, before anyone reads the
// option.
func (o *PoolOption) HoldForDaemons(r *framework.Resource) {
	if o.daemons == nil {
		o.daemons = &framework.Resource{}
	}
	Add(o.daemons, r)
	o.allocatable = lessDaemons(o.Option.Allocatable, o.daemons)
}

// DaemonRequests are the requests HoldForDaemons kept out; nil when none.
func (o *PoolOption) DaemonRequests() *framework.Resource { return o.daemons }

// WithOption is the pool option launching as opt instead (the same offering
// with a NodeOverlay's price or capacity), with the same node and the same
// DaemonSet hold. o is not changed.
func (o *PoolOption) WithOption(opt *Option) *PoolOption {
	return &PoolOption{Option: opt, Node: o.Node, daemons: o.daemons, allocatable: lessDaemons(opt.Allocatable, o.daemons)}
}

// lessDaemons is allocatable less daemons, each resource floored at zero:
// a daemon that does not fit leaves the option no room, not negative room.
func lessDaemons(allocatable v1.ResourceList, daemons *framework.Resource) *framework.Resource {
	r := framework.NewResource(allocatable)
	if daemons == nil {
		return r
	}
	r.MilliCPU = max(r.MilliCPU-daemons.MilliCPU, 0)
	r.Memory = max(r.Memory-daemons.Memory, 0)
	r.EphemeralStorage = max(r.EphemeralStorage-daemons.EphemeralStorage, 0)
	r.AllowedPodNumber = max(r.AllowedPodNumber-daemons.AllowedPodNumber, 0)
	for name, q := range daemons.ScalarResources {
		if have, ok := r.ScalarResources[name]; ok {
			r.ScalarResources[name] = max(have-q, 0)
		}
	}
	return r
}
