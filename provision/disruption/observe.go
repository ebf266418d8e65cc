package disruption

import (
	"context"
	"sort"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// candidate is one managed NodeClaim as the loop sees it.
type candidate struct {
	claim       *karpv1.NodeClaim
	pool        *karpv1.NodePool
	node        *v1.Node
	initialized bool
	pods        []*v1.Pod // bound to the node
	movable     []*v1.Pod // of those, the ones that must go elsewhere
	nominated   int       // pods on their way to the node
	lastEvent   time.Time // latest pod bound or removed (or initialization)
	driftReason string
	driftMsg    string
	acted       bool
	placed      bool // its pods are placed elsewhere in the simulation
}

func (k *candidate) nodeName() string {
	if k.claim.Status.NodeName != "" {
		return k.claim.Status.NodeName
	}
	return k.claim.Name
}

// loop is one run's view of the cluster.
type loop struct {
	c        *Controller
	now      time.Time
	budgets  map[string]*budget
	cands    []*candidate
	nodes    []*v1.Node
	leaving  []string // nodes going away: being deleted, or disrupted in this run
	pdbs     pdbIndex
	hashes   map[string]string
	sess     *session
	received map[string]bool // nodes that received simulated pods in this run
	// replacing maps claims being replaced to their replacements; exists
	// holds every claim's name, deleting or not.
	replacing  map[string]*karpv1.NodeClaim
	exists     map[string]bool
	poolViews  map[string]*packing.Pool // launch options, read on first use
	poolTotals map[string]poolTotals    // Balanced pools' totals, on first use
}

// observe builds the run's view from the caches.
func (c *Controller) observe(ctx context.Context) (*loop, error) {
	now := c.clock.Now()
	pools, err := c.nodePools.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	claims, err := c.nodeClaims.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	pdbs, err := c.pdbIndex()
	if err != nil {
		return nil, err
	}
	l := &loop{c: c, now: now, budgets: map[string]*budget{}, nodes: nodes, pdbs: pdbs,
		hashes: map[string]string{}, received: map[string]bool{},
		replacing: replacementState(claims), exists: map[string]bool{}}
	for _, nc := range claims {
		l.exists[nc.Name] = true
	}
	byPool := map[string]*karpv1.NodePool{}
	for _, np := range pools {
		byPool[np.Name] = np
		l.budgets[np.Name] = &budget{pool: np}
		l.hashes[np.Name] = nodepool.TemplateHash(np)
	}
	byNode := make(map[string]*v1.Node, len(nodes))
	for _, n := range nodes {
		byNode[n.Name] = n
		if n.DeletionTimestamp != nil || drain.HasDisruptedTaint(n) {
			l.leaving = append(l.leaving, n.Name)
		}
	}
	sort.Slice(claims, func(i, j int) bool { return claims[i].Name < claims[j].Name })
	for _, nc := range claims {
		np := byPool[nc.Labels[karpv1.NodePoolLabelKey]]
		if np == nil {
			continue // not ours, or its pool is gone
		}
		k := &candidate{claim: nc, pool: np, initialized: karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized)}
		k.node = byNode[k.nodeName()]
		deleting := nc.DeletionTimestamp != nil || c.recentlyDeleted(nc, now) || (k.node != nil && k.node.DeletionTimestamp != nil)
		if k.initialized {
			b := l.budgets[np.Name]
			b.total++
			if deleting || k.node == nil || !nodeutil.IsNodeReady(k.node) || drain.HasDisruptedTaint(k.node) {
				b.disrupting++
			}
		}
		if deleting {
			if k.node != nil && k.node.DeletionTimestamp == nil && !drain.HasDisruptedTaint(k.node) {
				l.leaving = append(l.leaving, k.node.Name)
			}
			continue
		}
		if k.node != nil {
			if k.pods, err = drain.PodsOnNode(c.pods, k.node.Name); err != nil {
				return nil, err
			}
			for _, p := range k.pods {
				if drain.IsReschedulable(p) {
					k.movable = append(k.movable, p)
				}
			}
			nominated, err := drain.PodsNominatedTo(c.pods, k.node.Name)
			if err != nil {
				return nil, err
			}
			k.nominated = len(nominated)
		}
		if k.node == nil || k.node.Name != nc.Name {
			nominated, err := drain.PodsNominatedTo(c.pods, nc.Name)
			if err != nil {
				return nil, err
			}
			k.nominated += len(nominated)
		}
		k.lastEvent = c.podEvents.LastPodEvent(nc)
		if t := transitionTime(nc, karpv1.ConditionTypeInitialized); t.After(k.lastEvent) {
			k.lastEvent = t
		}
		if k.initialized {
			var class *ec2v1.EC2NodeClass
			if ref := nc.Spec.NodeClassRef; ref != nil && ref.Kind == "EC2NodeClass" {
				class, _ = c.nodeClasses.Get(ref.Name)
			}
			k.driftReason, k.driftMsg = drift(nc, np, l.hashes[np.Name], class, c.machines.get(ctx, nc.Status.ProviderID, now))
		}
		l.cands = append(l.cands, k)
	}
	c.pruneDeleted(claims, now)
	return l, nil
}

func (l *loop) filter(keep func(*candidate) bool) []*candidate {
	var out []*candidate
	for _, k := range l.cands {
		if !k.acted && keep(k) {
			out = append(out, k)
		}
	}
	return out
}

func transitionTime(nc *karpv1.NodeClaim, conditionType string) time.Time {
	if c := nc.GetCondition(conditionType); c != nil && c.Status == metav1.ConditionTrue {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}
