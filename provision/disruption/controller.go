// Package disruption is the scale-down loop. Every interval (10s by
// default), on the leader only, it looks at the initialized NodeClaims of
// every NodePool and removes, in this order, as Karpenter v1 does:
//
//   - expired nodes (spec.expireAfter since creation): forceful, past budgets
//     and do-not-disrupt;
//   - drifted nodes: the pool's template hash or the EC2NodeClass's spec
//     hash moved on, the claim's labels no longer satisfy the pool's
//     requirements, or the instance's AMI, subnet or security groups are
//     no longer those its EC2NodeClass resolves;
//   - empty nodes: no pod but DaemonSet and mirror pods, none on its way,
//     for the pool's consolidateAfter;
//   - underutilized nodes (consolidationPolicy WhenEmptyOrUnderutilized, or
//     Balanced when the move is worth its disruption): every pod fits on the
//     other nodes, as the scheduler's own PreFilter and Filter plugins judge
//     it.
//
// Voluntary disruption (all but expiry) respects the pool's disruption
// budgets, karpenter.sh/do-not-disrupt on pods, nodes and claims,
// PodDisruptionBudgets that allow no disruption, and consolidateAfter:
// Never. No node with pods nominated to it is ever disrupted: those pods
// are on their way to it.
//
// Disrupting a node marks its NodeClaim (condition DisruptionReason, an
// event, karpenter_nodeclaims_disrupted_total) and deletes the claim; the
// termination controller drains the node and terminates the instance. Why
// a node is not disrupted is recorded as an event on its claim and Node
// once per change. The claims also carry Consolidatable and Drifted
// conditions, written when they change.
//
// A node whose pods fit on no other node is replaced instead, when one new
// node holds them all: a cheaper one for consolidation, one made from the
// current template for drift (see replace.go). A drifted node that cannot
// be replaced that way is deleted and its pods provisioned for again.
package disruption

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Name is the disruption loop's controller name.
const Name = "disruption"

// loopKey is the one key the loop's controller queue carries.
const loopKey = "disruption"

// DefaultInterval is the loop's period when none is set.
const DefaultInterval = 10 * time.Second

// minGap keeps runs triggered by claim deletions at least this far apart.
const minGap = time.Second

// ReasonExpired is the DisruptionReason of an expired claim; the API's
// DisruptionReason values (Empty, Underutilized, Drifted) are the others.
const ReasonExpired = "Expired"

// Options configure the loop.
type Options struct {
	Karpenter versioned.Interface
	Kube      kubernetes.Interface
	// KarpenterInformers and KubeInformers are the operator's factories:
	// New asks them for the informers it reads (NodePools, NodeClaims,
	// EC2NodeClasses, Nodes, Pods with drain's indexes, PDBs) and the
	// scheduler plugins ask for theirs (PVCs, PVs, StorageClasses, CSI
	// nodes and drivers, namespaces...). Start them after New.
	KarpenterInformers externalversions.SharedInformerFactory
	KubeInformers      informers.SharedInformerFactory
	Recorder           events.EventRecorder
	// Pools plans replacement nodes; nil turns replacement off (nodes whose
	// pods fit nowhere else then stay, and drifted ones are deleted).
	Pools PoolSource
	// Machines lists the cluster's machines, for subnet and security-group
	// drift (at most once a minute); nil leaves those undetected.
	Machines MachineLister
	// Interval is the loop's period (the Provisioner args'
	// disruptionInterval); DefaultInterval when zero.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Controller is the disruption loop's reconciler (one key).
type Controller struct {
	karp        versioned.Interface
	kube        kubernetes.Interface
	pools       PoolSource
	interval    time.Duration
	now         func() time.Time
	nodePools   karplisters.NodePoolLister
	nodeClaims  karplisters.NodeClaimLister
	nodeClasses ec2listers.EC2NodeClassLister
	nodes       corelisters.NodeLister
	pods        cache.Indexer
	pdbs        policylisters.PodDisruptionBudgetLister
	claimInf    cache.SharedIndexInformer
	podInf      cache.SharedIndexInformer

	machines  *machineCache
	sim       *simulator
	podEvents *PodEvents
	report    *reporter

	mu        sync.Mutex
	lastRun   time.Time
	deleted   map[string]time.Time // claims this loop deleted, until the cache shows it
	replacing map[string]string    // claims this process began to replace -> their replacements
}

// New builds the loop and registers the informers it needs with the
// factories; nothing runs until the controllers do.
func New(ctx context.Context, o Options) (*Controller, error) {
	karp := o.KarpenterInformers.Karpenter().V1()
	core := o.KubeInformers.Core().V1()
	podInf := core.Pods().Informer()
	if err := drain.AddPodIndexers(podInf); err != nil {
		return nil, fmt.Errorf("pod indexes: %w", err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	interval := o.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	c := &Controller{
		karp:        o.Karpenter,
		kube:        o.Kube,
		pools:       o.Pools,
		interval:    interval,
		now:         now,
		nodePools:   karp.NodePools().Lister(),
		nodeClaims:  karp.NodeClaims().Lister(),
		nodeClasses: o.KarpenterInformers.EC2().V1().EC2NodeClasses().Lister(),
		nodes:       core.Nodes().Lister(),
		pods:        podInf.GetIndexer(),
		pdbs:        o.KubeInformers.Policy().V1().PodDisruptionBudgets().Lister(),
		claimInf:    karp.NodeClaims().Informer(),
		podInf:      podInf,
		report:      newReporter(o.Recorder),
		deleted:     map[string]time.Time{},
		replacing:   map[string]string{},
		machines:    &machineCache{lister: o.Machines},
	}
	c.podEvents = &PodEvents{Karpenter: o.Karpenter, NodeClaims: c.nodeClaims, Now: now}
	sim, err := newSimulator(ctx, o.KubeInformers, o.Kube)
	if err != nil {
		return nil, err
	}
	c.sim = sim
	return c, nil
}

// PodEvents is the reconciler that keeps status.lastPodEventTime; run it
// as its own controller (PodEventsName) beside the loop.
func (c *Controller) PodEvents() *PodEvents { return c.podEvents }

// Register starts the loop's schedule on its controller, runs it again as
// soon as a NodeClaim is gone (so the next node of a budget goes without
// waiting a whole interval), and feeds pod events to the podEvents
// controller.
func (c *Controller) Register(loop, podEvents *controller.Controller) error {
	loop.Enqueue(loopKey)
	if _, err := c.claimInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(any) { loop.Enqueue(loopKey) },
	}); err != nil {
		return err
	}
	return c.podEvents.Register(podEvents, c.podInf)
}

// Reconcile runs the loop once and schedules the next run.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	if key != loopKey {
		return controller.Result{}, nil
	}
	c.mu.Lock()
	since := c.now().Sub(c.lastRun)
	c.mu.Unlock()
	if since < minGap {
		return controller.Result{RequeueAfter: minGap - since}, nil
	}
	start := time.Now()
	err := c.Run(ctx)
	c.mu.Lock()
	c.lastRun = c.now()
	c.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Disruption loop ran", "took", time.Since(start))
	return controller.Result{RequeueAfter: c.interval}, err
}

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

// Run looks at every managed claim once and disrupts what may go.
func (c *Controller) Run(ctx context.Context) error {
	l, err := c.observe(ctx)
	if err != nil {
		return err
	}
	defer c.report.endLoop()
	defer func() {
		if l.sess != nil {
			l.sess.end()
		}
	}()
	l.progressReplacements(ctx)
	l.expire(ctx)
	l.syncConditions(ctx)
	l.drift(ctx)
	l.empty(ctx)
	l.underutilized(ctx)
	return nil
}

// observe builds the run's view from the caches.
func (c *Controller) observe(ctx context.Context) (*loop, error) {
	now := c.now()
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
		k.lastEvent = c.podEvents.lastPodEvent(nc)
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

// expire deletes claims older than their expireAfter. Expiry is forceful
// (Karpenter v1): budgets and do-not-disrupt do not hold it back; only pods
// on their way to the node do, for as long as they are.
func (l *loop) expire(ctx context.Context) {
	for _, k := range l.cands {
		d := k.claim.Spec.ExpireAfter
		if d.IsNever() || !karpv1.IsConditionTrue(k.claim.Status.Conditions, karpv1.ConditionTypeLaunched) {
			continue
		}
		age := l.now.Sub(k.claim.CreationTimestamp.Time)
		if age < *d.Duration {
			continue
		}
		if k.nominated > 0 {
			l.c.report.blocked(k.claim, k.node, "DisruptionBlocked",
				fmt.Sprintf("Not expiring yet: %d pod(s) nominated to the node are on their way to it", k.nominated))
			continue
		}
		l.disrupt(ctx, k, ReasonExpired, fmt.Sprintf("expireAfter %s reached (age %s)", d.String(), age.Round(time.Second)))
	}
}

// drift replaces drifted nodes within the budget, oldest first. A node
// whose pods fit on the other nodes is deleted; otherwise one node made
// from the current template is launched for them first, when one holds
// them all; failing that the node is deleted and its pods provisioned for
// again.
func (l *loop) drift(ctx context.Context) {
	drifted := l.filter(func(k *candidate) bool { return k.initialized && k.driftReason != "" })
	sort.SliceStable(drifted, func(i, j int) bool {
		return drifted[i].claim.CreationTimestamp.Before(&drifted[j].claim.CreationTimestamp)
	})
	for _, k := range drifted {
		if !l.mayDisrupt(k, karpv1.DisruptionReasonDrifted) {
			continue
		}
		message := k.driftReason + ": " + k.driftMsg
		if l.c.pools != nil && k.node != nil && len(k.movable) > 0 {
			if placed, why := l.relocateOrReplace(ctx, k, karpv1.DisruptionReasonDrifted, message, 0); placed == "" {
				klog.FromContext(ctx).V(2).Info("Drifted node not replaced ahead; deleting it", "nodeClaim", k.claim.Name, "why", why)
			} else if placed == replaced {
				continue
			} else {
				message += "; " + placed
			}
		}
		l.disrupt(ctx, k, string(karpv1.DisruptionReasonDrifted), message)
	}
}

// empty removes nodes with nothing to move and nothing on its way, that
// have been so for consolidateAfter, fewest-recently-used first.
func (l *loop) empty(ctx context.Context) {
	empty := l.filter(func(k *candidate) bool {
		return k.initialized && consolidationEnabled(k.pool) && len(k.movable) == 0 && l.consolidatable(k)
	})
	sort.SliceStable(empty, func(i, j int) bool { return empty[i].lastEvent.Before(empty[j].lastEvent) })
	for _, k := range empty {
		if !l.mayDisrupt(k, karpv1.DisruptionReasonEmpty) {
			continue
		}
		l.disrupt(ctx, k, string(karpv1.DisruptionReasonEmpty),
			fmt.Sprintf("no pods but DaemonSet and static pods since %s (consolidateAfter %s)",
				k.lastEvent.UTC().Format(time.RFC3339), k.pool.Spec.Disruption.ConsolidateAfter.String()))
	}
}

// underutilized removes nodes whose pods all fit on the other nodes, the
// nodes with the fewest pods first.
func (l *loop) underutilized(ctx context.Context) {
	under := l.filter(func(k *candidate) bool {
		return k.initialized && k.node != nil && len(k.movable) > 0 && underutilizedEnabled(k.pool) && l.consolidatable(k)
	})
	sort.SliceStable(under, func(i, j int) bool {
		if len(under[i].movable) != len(under[j].movable) {
			return len(under[i].movable) < len(under[j].movable)
		}
		return under[i].claim.CreationTimestamp.Before(&under[j].claim.CreationTimestamp)
	})
	for _, k := range under {
		if l.received[k.node.Name] {
			continue // judged again next run, with what it is now meant to hold
		}
		if !l.mayDisrupt(k, karpv1.DisruptionReasonUnderutilized) {
			continue
		}
		if p := claimsDevices(k.movable); p != nil {
			// The simulation runs without DynamicResources: it cannot tell
			// whether the devices exist elsewhere.
			l.c.report.blocked(k.claim, k.node, "Unconsolidatable",
				fmt.Sprintf("Not consolidating: pod %s/%s claims devices (resourceClaims), which the simulation cannot place", p.Namespace, p.Name))
			continue
		}
		price, priced := l.price(k)
		if !priced {
			price = 0 // no replacement: its price is unknown
		}
		if balanced(k.pool) {
			// Removing the node saves the most a move of it can: if that
			// is not worth it, no replacement is.
			if why := l.balancedVerdict(k, price); why != "" {
				l.c.report.blocked(k.claim, k.node, "Unconsolidatable", "Not consolidating: "+why)
				continue
			}
		}
		placed, why := l.relocateOrReplace(ctx, k, karpv1.DisruptionReasonUnderutilized, "", price)
		switch placed {
		case "":
			l.c.report.blocked(k.claim, k.node, "Unconsolidatable", "Not consolidating: "+why)
		case replaced:
		default:
			l.disrupt(ctx, k, string(karpv1.DisruptionReasonUnderutilized), placed)
		}
	}
}

// replaced is what relocateOrReplace returns when it launched a replacement.
const replaced = "replaced"

// relocateOrReplace places k's pods on the other nodes in the simulation
// and describes where they went; failing that, with a PoolSource, it
// launches a replacement for them (cheaper than maxPrice when maxPrice is
// positive; for consolidation without a known price, none) and returns
// replaced. It returns "" and why when the pods cannot go.
func (l *loop) relocateOrReplace(ctx context.Context, k *candidate, reason karpv1.DisruptionReason, message string, maxPrice float64) (string, string) {
	sess, err := l.session(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Starting the disruption simulation")
		return "", "the simulation could not start: " + err.Error()
	}
	moves, stuck, why := sess.relocate(ctx, k.node.Name, k.movable)
	if stuck == nil {
		targets := map[string]int{}
		for _, m := range moves {
			targets[m.to]++
			l.received[m.to] = true
		}
		k.placed = true
		return fmt.Sprintf("its %d pod(s) fit on other nodes (%s)", len(moves), describeTargets(targets)), ""
	}
	why = fmt.Sprintf("pod %s/%s fits on no other node: %s", stuck.Namespace, stuck.Name, why)
	if l.c.pools == nil || (reason == karpv1.DisruptionReasonUnderutilized && maxPrice <= 0) {
		return "", why
	}
	plan, planWhy := l.planReplacement(ctx, k, maxPrice)
	if plan == nil {
		return "", why + "; and no replacement: " + planWhy
	}
	if reason == karpv1.DisruptionReasonUnderutilized && balanced(k.pool) {
		if verdict := l.balancedVerdict(k, maxPrice-plan.options[0].Price); verdict != "" {
			l.sess.include(k.node.Name)
			return "", why + "; and a replacement is not worth it: " + verdict
		}
	}
	if message == "" {
		message = fmt.Sprintf("its %d pod(s) fit on no other node but on one node cheaper than its %s at $%.4f/h",
			len(k.movable), k.claim.Labels[v1.LabelInstanceTypeStable], maxPrice)
	}
	if !l.replace(ctx, k, plan, reason, message) {
		l.sess.include(k.node.Name)
		return "", why + "; and the replacement could not be started"
	}
	return replaced, ""
}

// session starts the run's simulation on first use: every node, the pods
// bound or nominated to them, and the pods of nodes already going away
// placed first.
func (l *loop) session(ctx context.Context) (*session, error) {
	if l.sess != nil {
		return l.sess, nil
	}
	var pods []*v1.Pod
	movable := map[string][]*v1.Pod{}
	for _, n := range l.nodes {
		bound, err := drain.PodsOnNode(l.c.pods, n.Name)
		if err != nil {
			return nil, err
		}
		for _, p := range bound {
			if drain.IsTerminal(p) {
				continue
			}
			pods = append(pods, p)
			if drain.IsReschedulable(p) {
				movable[n.Name] = append(movable[n.Name], p)
			}
		}
		nominated, err := drain.PodsNominatedTo(l.c.pods, n.Name)
		if err != nil {
			return nil, err
		}
		for _, p := range nominated {
			p = p.DeepCopy()
			p.Spec.NodeName = n.Name
			pods = append(pods, p)
		}
	}
	sess, err := l.c.sim.begin(ctx, l.nodes, pods)
	if err != nil {
		return nil, err
	}
	for _, name := range l.leaving {
		sess.displace(ctx, name, movable[name])
	}
	l.sess = sess
	return sess, nil
}

// mayDisrupt checks what holds back voluntary disruption of k for reason,
// records why when something does, and reports whether k may go.
func (l *loop) mayDisrupt(k *candidate, reason karpv1.DisruptionReason) bool {
	if why := l.voluntaryBlock(k); why != "" {
		l.c.report.blocked(k.claim, k.node, "DisruptionBlocked", fmt.Sprintf("Not disrupting (%s): %s", reason, why))
		return false
	}
	b := l.budgets[k.pool.Name]
	left, by, err := b.allowed(reason, l.now)
	if err != nil {
		l.c.report.blocked(k.claim, k.node, "DisruptionBlocked",
			fmt.Sprintf("Not disrupting (%s): NodePool %s's budgets cannot be read: %v", reason, k.pool.Name, err))
		return false
	}
	if left <= 0 {
		l.c.report.blocked(k.claim, k.node, "DisruptionBlocked",
			fmt.Sprintf("Not disrupting (%s): NodePool %s's disruption budget allows no more now: %s allows %s of %d node(s), %d disrupting",
				reason, k.pool.Name, by, budgetLimit(b, reason, l.now), b.total, b.disrupting))
		return false
	}
	return true
}

func budgetLimit(b *budget, reason karpv1.DisruptionReason, now time.Time) string {
	n, _, _ := poolAllows(b.pool, reason, b.total, now)
	return fmt.Sprint(n)
}

// voluntaryBlock says what keeps k from voluntary disruption, or "".
func (l *loop) voluntaryBlock(k *candidate) string {
	if k.claim.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true" {
		return "the NodeClaim has " + karpv1.DoNotDisruptAnnotationKey
	}
	if k.node != nil && k.node.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true" {
		return "the node has " + karpv1.DoNotDisruptAnnotationKey
	}
	if k.nominated > 0 {
		return fmt.Sprintf("%d pod(s) nominated to the node are on their way to it", k.nominated)
	}
	for _, p := range k.pods {
		if drain.BlocksVoluntaryDisruption(p) {
			return fmt.Sprintf("pod %s/%s has %s", p.Namespace, p.Name, karpv1.DoNotDisruptAnnotationKey)
		}
	}
	for _, p := range k.movable {
		if drain.ToleratesDisruptedTaint(p) {
			continue // the drain leaves it alone
		}
		if why := l.pdbs.blocking(p); why != "" {
			return why
		}
	}
	return ""
}

// consolidatable reports whether k's pool consolidates at all and k has had
// no pod bound or removed for consolidateAfter.
func (l *loop) consolidatable(k *candidate) bool {
	d := k.pool.Spec.Disruption.ConsolidateAfter
	if d.IsNever() || k.lastEvent.IsZero() {
		return false
	}
	return !l.now.Before(k.lastEvent.Add(*d.Duration))
}

// consolidationEnabled is false for static pools (replicas set), whose
// size is not consolidation's to change.
func consolidationEnabled(np *karpv1.NodePool) bool {
	return np.Spec.Replicas == nil && !np.Spec.Disruption.ConsolidateAfter.IsNever()
}

// underutilizedEnabled is true for WhenEmptyOrUnderutilized (the default)
// and Balanced, which weighs each move (balanced.go).
func underutilizedEnabled(np *karpv1.NodePool) bool {
	p := np.Spec.Disruption.ConsolidationPolicy
	return consolidationEnabled(np) && (p == "" || p == karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized || p == karpv1.ConsolidationPolicyBalanced)
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

// disrupt marks the claim with the reason and deletes it; the termination
// controller takes it from there.
func (l *loop) disrupt(ctx context.Context, k *candidate, reason, message string) {
	logger := klog.FromContext(ctx).WithValues("nodeClaim", k.claim.Name, "node", k.nodeName(), "reason", reason)
	nc := k.claim.DeepCopy()
	nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeDisruptionReason, Status: metav1.ConditionTrue, Reason: reason, Message: message})
	updated, err := l.c.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{})
	if err != nil {
		// Most likely a conflict: the claim changed since the cache saw it.
		// Judge it again next run.
		logger.V(2).Info("Not disrupting: marking the claim failed", "err", err)
		return
	}
	// Delete only the claim as judged: a pod event in between changes it.
	err = l.c.karp.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &updated.UID, ResourceVersion: &updated.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		logger.V(2).Info("Not disrupting: deleting the claim failed", "err", err)
		return
	}
	k.acted = true
	l.c.markDeleted(nc.Name, l.now)
	l.budgets[k.pool.Name].disrupting++
	if k.node != nil {
		l.leaving = append(l.leaving, k.node.Name)
		if l.sess != nil && !k.placed {
			l.sess.displace(ctx, k.node.Name, k.movable)
		}
	}
	l.c.report.decided(updated, k.node, reason, message)
	metrics.NodeClaimsDisrupted.WithLabelValues(strings.ToLower(reason), k.pool.Name).Inc()
	logger.Info("Disrupting node", "message", message, "pods", len(k.movable))
}

// syncConditions keeps Consolidatable and Drifted on the claims the run did
// not act on, and drops a DisruptionReason left by a deletion that failed.
// A claim is written only when one changes.
func (l *loop) syncConditions(ctx context.Context) {
	for _, k := range l.cands {
		if k.acted || !k.initialized {
			continue
		}
		nc := k.claim.DeepCopy()
		changed := false
		if consolidationEnabled(k.pool) && l.consolidatable(k) {
			changed = nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeConsolidatable, Status: metav1.ConditionTrue,
				Reason: "Consolidatable", Message: fmt.Sprintf("no pod bound or removed since %s", k.lastEvent.UTC().Format(time.RFC3339))}) || changed
		} else {
			changed = removeCondition(nc, karpv1.ConditionTypeConsolidatable) || changed
		}
		if k.driftReason != "" {
			changed = nc.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeDrifted, Status: metav1.ConditionTrue,
				Reason: k.driftReason, Message: k.driftMsg}) || changed
		} else {
			changed = removeCondition(nc, karpv1.ConditionTypeDrifted) || changed
		}
		changed = removeCondition(nc, karpv1.ConditionTypeDisruptionReason) || changed
		if !changed {
			continue
		}
		updated, err := l.c.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, nc, metav1.UpdateOptions{})
		if err != nil {
			klog.FromContext(ctx).V(3).Info("Updating disruption conditions", "nodeClaim", nc.Name, "err", err)
			continue
		}
		k.claim = updated
	}
}

func removeCondition(nc *karpv1.NodeClaim, conditionType string) bool {
	for i, c := range nc.Status.Conditions {
		if c.Type == conditionType {
			nc.Status.Conditions = append(nc.Status.Conditions[:i:i], nc.Status.Conditions[i+1:]...)
			return true
		}
	}
	return false
}

func (c *Controller) markDeleted(name string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted[name] = now
}

// recentlyDeleted is true for a claim this loop deleted that the cache
// still shows alive.
func (c *Controller) recentlyDeleted(nc *karpv1.NodeClaim, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.deleted[nc.Name]
	return ok && now.Sub(t) < time.Minute
}

// pruneDeleted forgets deletions the cache has caught up with.
func (c *Controller) pruneDeleted(claims []*karpv1.NodeClaim, now time.Time) {
	alive := map[string]bool{}
	for _, nc := range claims {
		if nc.DeletionTimestamp == nil {
			alive[nc.Name] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, t := range c.deleted {
		if !alive[name] || now.Sub(t) >= time.Minute {
			delete(c.deleted, name)
		}
	}
	for name := range c.replacing {
		if !alive[name] {
			delete(c.replacing, name)
		}
	}
}

// claimsDevices returns a pod with dynamic resource claims, or nil.
func claimsDevices(pods []*v1.Pod) *v1.Pod {
	for _, p := range pods {
		if len(p.Spec.ResourceClaims) > 0 {
			return p
		}
	}
	return nil
}

func transitionTime(nc *karpv1.NodeClaim, conditionType string) time.Time {
	if c := nc.GetCondition(conditionType); c != nil && c.Status == metav1.ConditionTrue {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func describeTargets(targets map[string]int) string {
	parts := make([]string, 0, len(targets))
	for _, n := range slices.Sorted(maps.Keys(targets)) {
		parts = append(parts, fmt.Sprintf("%s: %d", n, targets[n]))
	}
	if len(parts) > 5 {
		parts = append(parts[:5], fmt.Sprintf("and %d more nodes", len(parts)-5))
	}
	return strings.Join(parts, ", ")
}
