package provisioner

import (
	"slices"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner/index"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// A pod that may share a claim with none of a group (a hostname
// anti-affinity, a hostname spread) needs a claim that lacks that group;
// when every such claim is full, it would open a claim of its own. Pods
// reach the scheduler in queue order, not largest first, so a claim can
// fill up with pods that could as well have gone elsewhere before the
// first pod of such a group arrives. Before opening a claim for such a pod,
// makeRoom moves a few pods (no volumes, no host ports) off one such claim
// onto other open claims that take them, by the same exact checks a
// decision makes, and the pod takes the room. The moved pods keep their claim in this
// ledger and are retried by the scheduler, whose Filter plugins then judge
// them on their new claim (see PostFilter); until then their old
// nomination holds room on a claim that has more than enough.

// makeRoomClaims and makeRoomPods bound the search.
const (
	makeRoomClaims = 4
	makeRoomPods   = 8
)

// makeRoom returns a claim it made room on for the pod, with the options
// the claim narrows to, or nil. Pods it moved stay moved even when the
// pod does not fit after all: each fits where it went.
func (d *decision) makeRoom() (*claim, []*packing.PoolOption) {
	st := d.p.state
	if len(d.exclude) == 0 || d.unsatisfiable != "" || d.query.Pools == 0 {
		return nil, nil
	}
	q := d.query
	q.Need = index.Vec{}
	var full []*claim
	st.index.Search(q, func(c *claim) bool {
		if c.planned {
			if opts, _ := d.fits(c); opts == nil {
				full = append(full, c)
			}
		}
		return len(full) >= makeRoomClaims
	})
	for _, c := range full {
		if !d.moveOff(c) {
			continue
		}
		if opts, _ := d.fits(c); opts != nil && d.filterOn(c, opts).IsSuccess() {
			return c, opts
		}
	}
	return nil, nil
}

// moveOff moves pods off c, largest first, each onto another open
// claim that takes it, until what is left holds the pod on c's largest
// option. It reports whether it got there.
func (d *decision) moveOff(c *claim) bool {
	st := d.p.state
	var movable []*member
	for _, m := range c.pods {
		if isMovable(m) {
			movable = append(movable, m)
		}
	}
	slices.SortFunc(movable, func(a, b *member) int {
		if a.requests.MilliCPU != b.requests.MilliCPU {
			return int(b.requests.MilliCPU - a.requests.MilliCPU)
		}
		return int(b.requests.Memory - a.requests.Memory)
	})
	moved := 0
	for _, m := range movable {
		if packing.Fits(packing.Sum(c.used, d.need), c.max) || moved >= makeRoomPods {
			break
		}
		md, err := d.p.newDecision(d.ctx, nil, m.pod(), d.pools)
		if err != nil {
			continue
		}
		md.prepare()
		var opts []*packing.PoolOption
		to, ok := st.index.Search(md.query, func(other *claim) bool {
			if other == c || !other.planned {
				return false
			}
			opts, _ = md.fits(other)
			return opts != nil
		})
		if !ok {
			continue
		}
		st.move(m, c, to, opts)
		moved++
	}
	return packing.Fits(packing.Sum(c.used, d.need), c.max)
}

// isMovable reports whether the pod may be moved to make room: not a pod
// with volumes (they tie it to its zone, read afresh only in its own
// cycle) or host ports. Its pod-to-pod rules are weighed by the exact
// checks on the claim it moves to.
func isMovable(m *member) bool {
	pod := m.pod()
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			return false
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				return false
			}
		}
	}
	return true
}

// move takes a pod off from and puts it on to, narrowed to options, and
// has the scheduler retry it so its nomination follows.
func (p *state) move(m *member, from, to *claim, options []*packing.PoolOption) {
	p.unplace(from, m.pod().UID)
	if !sameOptions(options, to.options) {
		before := p.pinnedKeys(to)
		to.narrow(options)
		p.groups.narrowed(to, before)
	}
	m.moved = true
	m.added = p.now()
	to.add(m)
	p.groups.joined(to, m)
	p.podOn[m.pod().UID] = to
	p.refresh(to)
	p.waiting[m.pod().UID] = m.pod()
	p.poolsChanged = true
}
