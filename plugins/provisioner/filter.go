package provisioner

import (
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// filterOn runs the scheduler's Filter plugins for the pod on the claim's
// node as it would be launched from options. The claim's pods are on its
// warm node already (the node's requests, ports and pods are the plugins'
// view of them); the pods the plugins learn of through PreFilter state -
// those a required term or spread of the pod may select, and those whose
// own anti-affinity or volumes count for every pod - are added to a clone
// of the cycle's state, as RunFilterPluginsWithNominatedPods would add
// every nominated pod. Every pod on the claim counts, whatever its
// priority: the claim's capacity was bought for all of them.
func (d *decision) filterOn(c *claim, options []*packing.PoolOption) *fwk.Status {
	c.node.SetNode(packing.ClaimNode(c.name, c.pool, options))
	state := d.state.Clone()
	st := d.p.state
	st.stamp++
	stamp := st.stamp
	add := func(m *member) *fwk.Status {
		if m.stamp == stamp || m.info.Pod.UID == d.pod.UID {
			return nil
		}
		m.stamp = stamp
		return d.p.handle.RunPreFilterExtensionAddPod(d.ctx, state, d.pod, m.info, c.node)
	}
	for _, m := range c.special {
		if s := add(m); !s.IsSuccess() {
			return s
		}
	}
	for i := range d.filterTerms {
		for _, m := range c.candidates(&d.filterTerms[i]) {
			if s := add(m); !s.IsSuccess() {
				return s
			}
		}
	}
	return d.p.handle.RunFilterPlugins(d.ctx, state, d.pod, c.node)
}

// filterFresh runs the Filter plugins for the pod on a new claim's node.
func (d *decision) filterFresh(name string, pool *packing.Pool, options []*packing.PoolOption) *fwk.Status {
	return d.p.handle.RunFilterPlugins(d.ctx, d.state, d.pod, packing.NodeInfo(name, pool, options))
}
