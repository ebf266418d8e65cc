package provisioner

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

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

	// pods are the requests of the pods nominated to the claim, kept here
	// so a decision does not copy every nominated pod out of the scheduler's
	// nominator; reconcile brings it back in line with the nominator.
	pods map[types.UID]ledgerEntry
}

type ledgerEntry struct {
	requests *framework.Resource
	added    time.Time
}

func newClaim(name string, pool *packing.Pool, options []*packing.PoolOption, planned bool, opened time.Time) *claim {
	return &claim{name: name, pool: pool, options: options, max: packing.MaxAllocatable(options), planned: planned, opened: opened,
		pods: map[types.UID]ledgerEntry{}}
}

// requests is what the claim's node must hold: the pool's daemons and its
// pods, less the pod being placed (which may already be on the claim).
func (c *claim) requests(except types.UID) *framework.Resource {
	used := packing.Sum(c.pool.DaemonRequests)
	for uid, e := range c.pods {
		if uid != except {
			packing.Add(used, e.requests)
		}
	}
	return used
}

func (c *claim) narrow(options []*packing.PoolOption) {
	c.options = options
	c.max = packing.MaxAllocatable(options)
}
