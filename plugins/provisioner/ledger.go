package provisioner

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// The scheduler's nominator is the source of truth for which pods are on
// which claim; the claims keep the pods (requests, parsed terms, the warm
// node) because asking the nominator deep-copies every pod. Pod events
// keep them in line: a pod deleted, bound to another node, or nominated
// elsewhere leaves its claim; a pod nominated to a claim this process did
// not place it on (before a restart) joins it.

// ledgerGrace keeps a pod on its claim while the scheduler has not yet
// written the nomination this plugin just returned.
const ledgerGrace = 5 * time.Second

// syncPeriod bounds how often a decision looks at the NodeClaims.
const syncPeriod = 250 * time.Millisecond

// watchPods follows the scheduler's pod informer.
func (p *state) watchPods(informer cache.SharedIndexInformer) {
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj interface{}) {
			if pod, ok := obj.(*v1.Pod); ok {
				p.podChanged(pod)
			}
		},
		DeleteFunc: func(obj interface{}) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok {
				p.mu.Lock()
				if c := p.podOn[pod.UID]; c != nil {
					p.unplace(c, pod.UID)
				}
				delete(p.waiting, pod.UID)
				p.mu.Unlock()
			}
		},
	})
}

// podChanged moves a pod off its claim when it went elsewhere, and onto a
// known claim it is nominated to.
func (p *state) podChanged(pod *v1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.podOn[pod.UID]
	switch {
	case c != nil && pod.Spec.NodeName != "" && pod.Spec.NodeName != c.name:
		p.unplace(c, pod.UID)
	case c != nil && pod.Status.NominatedNodeName != "" && pod.Status.NominatedNodeName != c.name &&
		p.now().Sub(c.pods[pod.UID].added) > ledgerGrace:
		p.unplace(c, pod.UID)
		p.adopt(pod)
	case c == nil && pod.Spec.NodeName == "":
		p.adopt(pod)
	}
}

// adopt puts a pod on the claim it is nominated to, if this process knows
// the claim and not the pod.
func (p *state) adopt(pod *v1.Pod) {
	c := p.claims[pod.Status.NominatedNodeName]
	if c == nil || c.pods[pod.UID] != nil {
		return
	}
	info, err := framework.NewPodInfo(pod)
	if err != nil {
		return
	}
	m := &member{info: info, requests: packing.PodRequests(pod), added: p.now()}
	c.add(m)
	p.groups.joined(c, m)
	p.podOn[pod.UID] = c
	p.refresh(c)
}

// createdGrace is how long a claim this plugin created is kept before the
// NodeClaim informer must have seen it.
const createdGrace = 30 * time.Second

// syncInFlight reconciles the frozen claims with the NodeClaims that exist:
// adds those created before a restart (with the pods nominated to them),
// refreshes options (a launched claim has one instance type), and drops
// claims whose node is initialized or whose NodeClaim is deleting at once,
// and those whose NodeClaim has not been seen for createdGrace.
func (p *state) syncInFlight(pools []*packing.Pool) {
	p.lastSync = p.now()
	seen := map[string]bool{}
	for _, f := range p.pools.InFlight(pools) {
		if f.Ended {
			// Deleted (interrupted, disrupted) or initialized: its pods go
			// elsewhere or bind to its node; it takes no more.
			if c, ok := p.claims[f.Name]; ok && !c.planned {
				p.dropClaim(f.Name)
			}
			continue
		}
		seen[f.Name] = true
		if len(f.Options) == 0 {
			continue
		}
		if c, ok := p.claims[f.Name]; ok {
			if !c.planned && !sameOptions(c.options, f.Options) {
				before := p.pinnedKeys(c)
				c.pool = f.Pool
				c.narrow(f.Options)
				p.groups.narrowed(c, before)
				p.refresh(c)
			}
			continue
		}
		c := newClaim(f.Name, f.Pool, f.Options, false, f.Created)
		p.addClaim(c)
		for _, pi := range p.nominator.NominatedPodsForNode(f.Name) {
			p.adopt(pi.GetPod())
		}
	}
	for name, c := range p.claims {
		if !c.planned && !seen[name] && p.now().Sub(c.opened) > createdGrace {
			p.dropClaim(name)
		}
	}
}
