// Package provisioner holds the Provisioner PostFilter plugin: when a pod fits
// no existing node, it packs the pod onto a claim (a node planned or being
// launched) and nominates it to that claim's future node name. Launching is
// left to the NodeClaim lifecycle controllers. As a Filter plugin it keeps
// the pod for that node while the claim is in flight (wait.go).
//
// A decision runs in three steps, cheapest first: the claim index rules out
// claims by room, pool, domains and groups without running any plugin; the
// claims it yields are checked exactly; the first that passes is judged by
// the scheduler's own Filter plugins on the claim's warm node, which have
// the last word. Only when no open claim takes the pod is a new one opened.
package provisioner

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	corelisters "k8s.io/client-go/listers/core/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/utils/clock"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner/index"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Name is the plugin's name in the scheduler configuration.
const Name = "Provisioner"

// PoolSource supplies what the plugin packs onto: the NodePools that may
// provision, heaviest first, and the NodeClaims already created whose node
// is not initialized yet.
type PoolSource interface {
	Pools() []*packing.Pool
	InFlight(pools []*packing.Pool) []packing.InFlight
}

// ClaimCreator turns a planned claim into a NodeClaim object.
type ClaimCreator interface {
	Create(ctx context.Context, spec packing.ClaimSpec) error
}

// Provisioner is the PostFilter plugin of one scheduling profile. The
// claims it packs onto are shared by every profile in the process.
type Provisioner struct {
	handle fwk.Handle
	*state
}

// state is what every profile's plugin shares: the pools, the claims and
// their index, and the batch window. The scheduler's nominator (one per
// process) is the ledger of which pods are on which claim; the claims keep
// the pods' requests and node-side view so a decision does not copy them
// out of it.
type state struct {
	nominator fwk.PodNominator
	pools     PoolSource
	creator   ClaimCreator
	batch     *batcher
	clock     clock.PassiveClock

	mu      sync.Mutex
	claims  map[string]*claim
	index   *index.Index[*claim]
	planned map[string]map[*claim]struct{} // by NodePool
	podOn   map[types.UID]*claim
	waiting map[types.UID]*v1.Pod
	groups  *groups
	shapes  *shapes
	// bits the index knows pools and domain values by
	poolBits   map[string]uint64
	domainBits [2]map[string]uint64
	stamp      uint64
	lastSync   time.Time
	existing   existingCache
	// pods is the scheduler's pod cache, to drop waiting pods that are gone.
	pods    corelisters.PodLister
	volumes *volumeListers
	// poolsChanged asks the requeue loop to retry waiting pods now.
	poolsChanged bool
	// names are the claims' names, for Filter, which cannot take mu.
	names sync.Map
}

var (
	_ fwk.PostFilterPlugin  = &Provisioner{}
	_ fwk.FilterPlugin      = &Provisioner{}
	_ fwk.EnqueueExtensions = &Provisioner{}
)

// Name returns the plugin name.
func (p *Provisioner) Name() string { return Name }

// newState starts the batch window of a fresh claim set.
func newState(ctx context.Context, h fwk.Handle, pools PoolSource, creator ClaimCreator, idle, max time.Duration) *state {
	s := &state{nominator: h, pools: pools, creator: creator, clock: clock.RealClock{},
		claims: map[string]*claim{}, index: index.New[*claim](), planned: map[string]map[*claim]struct{}{},
		podOn: map[types.UID]*claim{}, waiting: map[types.UID]*v1.Pod{}, shapes: newShapes(),
		poolBits: map[string]uint64{}, domainBits: [2]map[string]uint64{{}, {}}}
	var nsLabels func(string) labels.Set
	if f := h.SharedInformerFactory(); f != nil {
		s.pods = f.Core().V1().Pods().Lister()
		namespaces := f.Core().V1().Namespaces().Lister()
		nsLabels = func(name string) labels.Set {
			if ns, err := namespaces.Get(name); err == nil {
				return ns.Labels
			}
			return nil
		}
		s.watchPods(f.Core().V1().Pods().Informer())
		s.volumes = newVolumeListers(f)
	}
	s.groups = newGroups(nsLabels)
	s.batch = newBatcher(idle, max, s.clock)
	go s.batch.run(ctx, s.flush)
	go s.requeueLoop(ctx, h)
	return s
}

func (p *state) now() time.Time { return p.clock.Now() }

// eachClaim visits every claim in index order.
func (p *state) eachClaim(visit func(*claim)) { p.index.All(visit) }

func (p *state) addClaim(c *claim) {
	p.claims[c.name] = c
	p.names.Store(c.name, struct{}{})
	if c.planned {
		set := p.planned[c.pool.Name]
		if set == nil {
			set = map[*claim]struct{}{}
			p.planned[c.pool.Name] = set
		}
		set[c] = struct{}{}
	}
	p.index.Add(c, p.entry(c))
}

// refresh tells the index what changed on c.
func (p *state) refresh(c *claim) { p.index.Set(c, p.entry(c)) }

// entry is what the index keeps of c.
func (p *state) entry(c *claim) index.Entry {
	e := index.Entry{Free: c.room(), Pool: p.poolBit(c.pool.Name)}
	for key, k := range indexKeys {
		for _, v := range values(c.options, key) {
			e.Domains[k] |= p.domainBit(k, v)
		}
	}
	e.Has, e.Full = p.groups.entryBits(c)
	return e
}

// poolBit is the index's bit for a NodePool; past 63 pools, every bit (the
// index then cannot tell those pools apart, and the exact check does).
func (p *state) poolBit(name string) uint64 {
	if b, ok := p.poolBits[name]; ok {
		return b
	}
	b := ^uint64(0)
	if n := len(p.poolBits); n < 63 {
		b = 1 << n
	}
	p.poolBits[name] = b
	return b
}

// domainBit is the index's bit for a value of an indexed key, likewise.
func (p *state) domainBit(k int, value string) uint64 {
	bits := p.domainBits[k]
	if b, ok := bits[value]; ok {
		return b
	}
	b := ^uint64(0)
	if n := len(bits); n < 63 {
		b = 1 << n
	}
	bits[value] = b
	return b
}

// newClaimName names a claim, and so its node, after its pool, the way
// NodeClaims are named: <nodepool>-<random>.
func (p *state) newClaimName(pool string) string {
	for {
		name := pool + "-" + utilrand.String(5)
		if _, taken := p.claims[name]; !taken {
			return name
		}
	}
}

// place puts the decided pod on c, narrowed to options, and off any
// claim it was on before.
func (p *state) place(d *decision, c *claim, options []*packing.PoolOption) {
	if old := p.podOn[d.pod.UID]; old != nil {
		p.unplace(old, d.pod.UID)
	}
	if c.planned && !sameOptions(options, c.options) {
		before := p.pinnedKeys(c)
		c.narrow(options)
		p.groups.narrowed(c, before)
	}
	m := &member{info: d.info, requests: d.need, added: p.now()}
	c.add(m)
	p.groups.joined(c, m)
	p.podOn[d.pod.UID] = c
	p.refresh(c)
}

// unplace takes a pod off c.
func (p *state) unplace(c *claim, uid types.UID) {
	m := c.pods[uid]
	if m == nil {
		return
	}
	p.groups.left(c, m)
	c.remove(m)
	if p.podOn[uid] == c {
		delete(p.podOn, uid)
	}
	p.refresh(c)
}

// pinnedKeys are c's pinned values of the keys groups count domains by.
func (p *state) pinnedKeys(c *claim) map[string]string {
	out := map[string]string{}
	for _, gr := range p.groups.all {
		for key := range gr.byDomain {
			if _, done := out[key]; done {
				continue
			}
			if v, ok := pinnedValue(c.options, key); ok {
				out[key] = v
			}
		}
	}
	return out
}

func sameOptions(a, b []*packing.PoolOption) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// dropClaim removes a claim and queues its pods for another attempt.
func (p *state) dropClaim(name string) {
	c := p.claims[name]
	if c == nil {
		return
	}
	for uid, m := range c.pods {
		p.groups.left(c, m)
		if p.podOn[uid] == c {
			delete(p.podOn, uid)
		}
		p.waiting[uid] = m.pod()
	}
	delete(p.claims, name)
	p.names.Delete(name)
	delete(p.planned[c.pool.Name], c)
	p.index.Remove(c)
	p.shapes.forget(c)
	if p.index.Len() == 0 {
		// Nothing is counted any more: start the groups afresh, so that
		// their bits go to the groups of the pods that come next.
		p.groups = newGroups(p.groups.nsLabels)
	}
	p.poolsChanged = true
}
