package provisioner

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// open opens a new planned claim for the pod on the first NodePool, by
// weight, that can take it, or says per pool what ruled it out.
func (d *decision) open() (*claim, []string) {
	reasons := make([]string, 0, len(d.pools))
	for _, pool := range d.pools {
		c, reason := d.openOn(pool)
		if c != nil {
			return c, nil
		}
		reasons = append(reasons, fmt.Sprintf("nodepool %q: %s", pool.Name, reason))
	}
	return nil, reasons
}

// openOn opens a claim on pool, or says which of the pool's constraints
// ruled the pod out.
func (d *decision) openOn(pool *packing.Pool) (*claim, string) {
	st := d.p.state
	switch {
	case pool.Unavailable != "":
		return nil, pool.Unavailable
	case pool.Static:
		return nil, "it is a static NodePool: spec.replicas fixes its node count"
	case d.unsatisfiable != "":
		return nil, d.unsatisfiable
	case len(d.include) > 0:
		return nil, "its required pod affinity on " + d.include[0].term.TopologyKey + " needs a node that holds the pods it selects"
	}
	if taint, ok := untolerated(d.pod, pool.Taints); ok {
		return nil, fmt.Sprintf("the pod does not tolerate taint %s", taint.ToString())
	}
	options := d.admit(pool.Options)
	if len(options) == 0 {
		return nil, fmt.Sprintf("none of its %d instance offerings satisfies the pod's node selector and required node affinity%s", len(pool.Options), d.admitWhat())
	}
	options, used := packing.Holding(options, pool.DaemonRequests, d.pod)
	if len(options) == 0 {
		return nil, fmt.Sprintf("no instance type has room for the pod's requests plus daemonset overhead (%s)", describe(used))
	}
	if options = packing.WithinLimits(options, st.remaining(pool)); len(options) == 0 {
		return nil, "its limits leave no room for another node"
	}
	if why := pool.MinValues.Unmet(options); why != "" {
		return nil, "the offerings left for the pod cannot meet minValues: " + why
	}
	if pinned := d.pinDomains(nil, options); pinned == nil {
		return nil, "no offering is in a domain its topology spread, pod affinity and anti-affinity allow (" + d.domainsWhat() + ")"
	} else {
		options = pinned
	}
	if why := pool.MinValues.Unmet(options); why != "" {
		return nil, "the offerings in the pod's topology domain cannot meet minValues: " + why
	}
	name := st.newClaimName(pool.Name)
	if s := d.filterFresh(name, pool, options); !s.IsSuccess() {
		return nil, fmt.Sprintf("%s rejects its nodes: %s", s.Plugin(), strings.Join(s.Reasons(), ", "))
	}
	return newClaim(name, pool, options, true, st.now()), ""
}

// admitWhat names the constraints beyond node selection that admit applies.
func (d *decision) admitWhat() string {
	var parts []string
	if len(d.nodeSels) > 0 {
		parts = append(parts, "preferred node affinity")
	}
	if len(d.volumes) > 0 {
		parts = append(parts, "volumes' topology")
	}
	if len(parts) == 0 {
		return ""
	}
	return " (with its " + strings.Join(parts, " and ") + ")"
}

// domainsWhat lists the domains the rules allow, for a reason.
func (d *decision) domainsWhat() string {
	var parts []string
	for _, c := range d.domains {
		if c.allowed != nil {
			parts = append(parts, c.key+" in "+strings.Join(slices.Sorted(maps.Keys(c.allowed)), ","))
		}
	}
	return strings.Join(parts, "; ")
}

// remaining is the pool's remaining limits less what its planned claims
// will take (at least the smallest option each).
func (p *state) remaining(pool *packing.Pool) v1.ResourceList {
	if pool.Remaining == nil {
		return nil
	}
	left := pool.Remaining.DeepCopy()
	for c := range p.planned[pool.Name] {
		for name, q := range packing.MinCapacity(c.options) {
			if l, ok := left[name]; ok {
				l.Sub(q)
				left[name] = l
			}
		}
	}
	return left
}

func describe(r *framework.Resource) string {
	list := packing.ResourceList(r)
	parts := make([]string, 0, len(list))
	for _, n := range slices.Sorted(maps.Keys(list)) {
		q := list[n]
		parts = append(parts, string(n)+"="+q.String())
	}
	return strings.Join(parts, ", ")
}
