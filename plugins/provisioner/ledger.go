package provisioner

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// The scheduler's nominator is the source of truth for which pods are on
// which claim; the claims keep a copy of their pods' requests because
// asking the nominator deep-copies every pod. The copy is brought back in
// line with the nominator every second.

// ledgerGrace keeps a pod on its claim while the scheduler has not yet
// recorded the nomination this plugin just returned.
const ledgerGrace = 5 * time.Second

// assign records the pod on c, and off any other claim it was on.
func (p *state) assign(pod *v1.Pod, need *framework.Resource, c *claim) {
	if old, ok := p.podClaim[pod.UID]; ok && old != c.name {
		if oc := p.claims[old]; oc != nil {
			delete(oc.pods, pod.UID)
		}
	}
	p.podClaim[pod.UID] = c.name
	c.pods[pod.UID] = ledgerEntry{requests: need, added: p.now()}
}

// reconcile rebuilds c's pods from the nominator: pods deleted, bound or
// nominated elsewhere leave; pods nominated before a restart join.
func (p *state) reconcile(c *claim) {
	now := p.now()
	fresh := map[types.UID]ledgerEntry{}
	for _, pi := range p.nominator.NominatedPodsForNode(c.name) {
		pod := pi.GetPod()
		e, ok := c.pods[pod.UID]
		if !ok {
			e = ledgerEntry{requests: packing.PodRequests(pod), added: now}
		}
		fresh[pod.UID] = e
		p.podClaim[pod.UID] = c.name
	}
	for uid, e := range c.pods {
		if _, ok := fresh[uid]; !ok {
			if now.Sub(e.added) < ledgerGrace {
				fresh[uid] = e
				continue
			}
			if p.podClaim[uid] == c.name {
				delete(p.podClaim, uid)
			}
		}
	}
	c.pods = fresh
}

// reconcileAll brings every claim's ledger in line with the nominator.
func (p *state) reconcileAll() {
	for _, c := range p.claims {
		p.reconcile(c)
	}
}
