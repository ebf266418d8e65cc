// Package provisioner holds the Provisioner PostFilter plugin: when a pod fits
// no existing node, it packs the pod onto a claim (a node planned or being
// launched) and nominates it to that claim's future node name. Launching is
// left to the NodeClaim lifecycle controllers.
package provisioner

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
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
// the batch window. The scheduler's nominator (one per process) is the
// ledger of which pods are on which claim.
type state struct {
	nominator fwk.PodNominator
	pools     PoolSource
	creator   ClaimCreator
	batch     *batcher
	now       func() time.Time

	mu       sync.Mutex
	claims   map[string]*claim
	podClaim map[types.UID]string
	waiting  map[types.UID]*v1.Pod
	// pods is the scheduler's pod cache, to drop waiting pods that are gone.
	pods corelisters.PodLister
	// poolsChanged asks the requeue loop to retry waiting pods now.
	poolsChanged bool
}

var _ fwk.PostFilterPlugin = &Provisioner{}

// Name returns the plugin name.
func (p *Provisioner) Name() string { return Name }

// newProvisioner wires the plugin from its parts and starts the batcher.
func newProvisioner(ctx context.Context, h fwk.Handle, pools PoolSource, creator ClaimCreator, idle, max time.Duration) *Provisioner {
	return &Provisioner{handle: h, state: newState(ctx, h, pools, creator, idle, max)}
}

// newState starts the batch window of a fresh claim set.
func newState(ctx context.Context, h fwk.Handle, pools PoolSource, creator ClaimCreator, idle, max time.Duration) *state {
	s := &state{nominator: h, pools: pools, creator: creator, now: time.Now, claims: map[string]*claim{}, podClaim: map[types.UID]string{}, waiting: map[types.UID]*v1.Pod{}}
	if f := h.SharedInformerFactory(); f != nil {
		s.pods = f.Core().V1().Pods().Lister()
	}
	s.batch = newBatcher(idle, max, s.now)
	go s.batch.run(ctx, s.flush)
	go s.requeueLoop(ctx, h)
	return s
}

func (p *state) addClaim(c *claim) { p.claims[c.name] = c }

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

// flush creates a NodeClaim for every planned claim that still has pods.
// Claims freeze before the lock is released, so nothing narrows them while
// their objects are written.
func (p *state) flush(ctx context.Context) {
	logger := klog.FromContext(ctx)
	p.mu.Lock()
	var specs []packing.ClaimSpec
	for _, c := range p.claims {
		if !c.planned {
			continue
		}
		used := c.requests("")
		if used.AllowedPodNumber == len(c.pool.Daemons) {
			// Every pod left (deleted, or bound elsewhere) before launch.
			delete(p.claims, c.name)
			continue
		}
		c.planned = false
		c.opened = p.now()
		specs = append(specs, packing.ClaimSpec{Name: c.name, NodePool: c.pool.Name, Options: c.options, Requests: packing.ResourceList(used)})
	}
	p.mu.Unlock()

	for _, spec := range specs {
		if err := p.creator.Create(ctx, spec); err != nil {
			logger.Error(err, "Creating NodeClaim failed; its pods will be provisioned again", "nodeClaim", spec.Name)
			p.mu.Lock()
			p.dropClaim(spec.Name)
			p.mu.Unlock()
			continue
		}
		metrics.NodeClaimsCreated.WithLabelValues("provisioning", spec.NodePool).Inc()
		logger.V(2).Info("Created NodeClaim", "nodeClaim", spec.Name, "nodePool", spec.NodePool, "instanceTypes", len(spec.Options))
	}
}

// createdGrace is how long a claim this plugin created is kept before the
// NodeClaim informer must have seen it.
const createdGrace = 30 * time.Second

// syncInFlight reconciles the frozen claims with the NodeClaims that exist:
// adds those created before a restart, refreshes options (a launched claim
// has one instance type), and drops claims whose node is initialized or
// whose NodeClaim is gone.
func (p *state) syncInFlight(pools []*packing.Pool) {
	seen := map[string]bool{}
	for _, f := range p.pools.InFlight(pools) {
		seen[f.Name] = true
		if len(f.Options) == 0 {
			continue
		}
		if c, ok := p.claims[f.Name]; ok {
			if !c.planned {
				c.pool = f.Pool
				c.narrow(f.Options)
			}
			continue
		}
		c := newClaim(f.Name, f.Pool, f.Options, false, f.Created)
		p.claims[f.Name] = c
		p.reconcile(c)
	}
	for name, c := range p.claims {
		if !c.planned && !seen[name] && p.now().Sub(c.opened) > createdGrace {
			p.dropClaim(name)
		}
	}
}

// nominated records an event on the pod the first time it is nominated to a claim.
func (p *Provisioner) nominated(pod *v1.Pod, c *claim) {
	if pod.Status.NominatedNodeName == c.name {
		return
	}
	p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeNormal, "Nominated", "Provisioning",
		"Pod should schedule on node %s (nodeclaim %s, nodepool %s)", c.name, c.name, c.pool.Name)
}

// notProvisionable tells the pod's owner why no NodePool admits it.
func (p *Provisioner) notProvisionable(pod *v1.Pod, msg string) {
	p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning", "%s", msg)
}
