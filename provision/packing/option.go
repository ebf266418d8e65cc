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
}

// PoolOption is an Option as a given NodePool would launch it: its node
// carries the pool's labels too. Node is a label-only node used to match
// node selectors and affinity with component-helpers.
type PoolOption struct {
	*Option
	Node        *v1.Node
	allocatable *framework.Resource
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

// AllocatableResource is the option's allocatable in the scheduler's form.
func (o *PoolOption) AllocatableResource() *framework.Resource { return o.allocatable }
