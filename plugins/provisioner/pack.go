package provisioner

import (
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// packExisting finds the first open claim, in the order claims were
// opened, that takes the pod. The index rules out claims by room, pool,
// domains and groups; each claim it yields is checked exactly, then judged
// by the Filter plugins. It returns the claim and the options it narrows
// to, or nil.
func (d *decision) packExisting() (*claim, []*packing.PoolOption) {
	st := d.p.state
	if d.unsatisfiable != "" || d.query.Pools == 0 {
		return nil, nil
	}
	seen := st.shapes.get(d.shape, d.relaxed)
	var chosen []*packing.PoolOption
	c, ok := st.index.Search(d.query, func(c *claim) bool {
		if seen.rejected(c) {
			return false
		}
		opts, lasting := d.fits(c)
		if opts == nil {
			if lasting {
				seen.reject(c)
			}
			return false
		}
		if s := d.filterOn(c, opts); !s.IsSuccess() {
			seen.reject(c)
			return false
		}
		chosen = opts
		return true
	})
	if !ok {
		return nil, nil
	}
	return c, chosen
}

// fits checks exactly what the index only bounds: the pool's taints, the
// groups, that an option the pod may run on holds the claim's pods and the
// pod, the domains the rules allow, and minValues. It returns the options
// the claim would narrow to, or nil and whether the verdict lasts until
// the claim changes (a domain verdict changes with other claims too).
func (d *decision) fits(c *claim) ([]*packing.PoolOption, bool) {
	if !tolerates(d.pod, c.pool.Taints) {
		return nil, true
	}
	for _, g := range d.exclude {
		if g.limit > 0 && c.count(g.id) >= g.limit {
			return nil, true
		}
	}
	for _, g := range d.include {
		if c.count(g.id) == 0 {
			return nil, true
		}
	}
	if !packing.Fits(packing.Sum(c.used, d.need), c.max) {
		return nil, true
	}
	opts, _ := packing.Holding(d.admit(c.options), c.used, d.pod)
	if !c.planned {
		// A created claim cannot narrow: every option it may launch as
		// must hold the pod, in a domain the rules allow.
		if len(opts) != len(c.options) {
			return nil, true
		}
		if d.pinDomains(c, opts) == nil || !d.pinnedAlready(opts) {
			return nil, false
		}
		return opts, true
	}
	if len(opts) == 0 {
		return nil, true
	}
	if opts = d.pinDomains(c, opts); opts == nil {
		return nil, false
	}
	if c.pool.MinValues.Unmet(opts) != "" {
		return nil, true // the claim would lose the choice minValues keeps
	}
	return opts, true
}

// pinnedAlready reports whether every domain choice holds for all options
// as they are (a created claim cannot be pinned any further).
func (d *decision) pinnedAlready(opts []*packing.PoolOption) bool {
	for _, c := range d.domains {
		if c.allowed == nil {
			continue
		}
		v, ok := pinnedValue(opts, c.key)
		if !ok || !c.allowed[v] {
			return false
		}
	}
	return true
}
