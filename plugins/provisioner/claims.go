package provisioner

import (
	"time"

	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// claim is a node-to-be that pods are nominated to. While planned it lives
// only here and narrows as pods pack onto it; once its NodeClaim object is
// created it is frozen: pods may still join it, but only if every option
// it may launch as still holds them.
type claim struct {
	name    string
	pool    *packing.Pool
	options []*packing.PoolOption // cheapest first
	max     *framework.Resource   // MaxAllocatable(options): quick reject for full claims
	planned bool
	opened  time.Time
}

func newClaim(name string, pool *packing.Pool, options []*packing.PoolOption, planned bool, opened time.Time) *claim {
	return &claim{name: name, pool: pool, options: options, max: packing.MaxAllocatable(options), planned: planned, opened: opened}
}

func (c *claim) narrow(options []*packing.PoolOption) {
	c.options = options
	c.max = packing.MaxAllocatable(options)
}
