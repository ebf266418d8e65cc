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
// current template for drift (see replace.go); a spot node only by a spot
// node chosen from at least 15 cheaper instance types (spot.go). A drifted
// node that cannot be replaced that way is deleted and its pods provisioned
// for again.
package disruption

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	ec2listers "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/ec2/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeclaim/podevents"
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
	// Clock is the loop's clock; the real one when nil.
	Clock clock.PassiveClock
}

// Controller is the disruption loop's reconciler (one key).
type Controller struct {
	karp        versioned.Interface
	kube        kubernetes.Interface
	pools       PoolSource
	interval    time.Duration
	clock       clock.PassiveClock
	nodePools   karplisters.NodePoolLister
	nodeClaims  karplisters.NodeClaimLister
	nodeClasses ec2listers.EC2NodeClassLister
	nodes       corelisters.NodeLister
	pods        cache.Indexer
	pdbs        policylisters.PodDisruptionBudgetLister

	machines  *machineCache
	sim       *simulator
	podEvents *podevents.Controller
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
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
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
		clock:       clk,
		nodePools:   karp.NodePools().Lister(),
		nodeClaims:  karp.NodeClaims().Lister(),
		nodeClasses: o.KarpenterInformers.EC2().V1().EC2NodeClasses().Lister(),
		nodes:       core.Nodes().Lister(),
		pods:        podInf.GetIndexer(),
		pdbs:        o.KubeInformers.Policy().V1().PodDisruptionBudgets().Lister(),
		report:      newReporter(o.Recorder),
		deleted:     map[string]time.Time{},
		replacing:   map[string]string{},
		machines:    &machineCache{lister: o.Machines},
	}
	c.podEvents = &podevents.Controller{Karpenter: o.Karpenter, NodeClaims: c.nodeClaims, Clock: clk}
	sim, err := newSimulator(ctx, o.KubeInformers, o.Kube)
	if err != nil {
		return nil, err
	}
	c.sim = sim
	return c, nil
}

// PodEvents is the reconciler that keeps status.lastPodEventTime, whose
// memory of pod events the loop reads; run it as its own controller
// (podevents.Name, podevents.Register) beside the loop.
func (c *Controller) PodEvents() *podevents.Controller { return c.podEvents }

// Register starts the loop's schedule on its controller and runs it again
// as soon as a NodeClaim is gone, so the next node of a budget goes
// without waiting a whole interval.
func Register(ctl *controller.Controller, nodeClaims cache.SharedIndexInformer) error {
	ctl.Enqueue(loopKey)
	_, err := nodeClaims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(any) { ctl.Enqueue(loopKey) },
	})
	return err
}

// Reconcile runs the loop once and schedules the next run.
func (c *Controller) Reconcile(ctx context.Context, key string) (controller.Result, error) {
	if key != loopKey {
		return controller.Result{}, nil
	}
	c.mu.Lock()
	since := c.clock.Now().Sub(c.lastRun)
	c.mu.Unlock()
	if since < minGap {
		return controller.Result{RequeueAfter: minGap - since}, nil
	}
	start := time.Now()
	err := c.Run(ctx)
	c.mu.Lock()
	c.lastRun = c.clock.Now()
	c.mu.Unlock()
	klog.FromContext(ctx).V(4).Info("Disruption loop ran", "took", time.Since(start))
	return controller.Result{RequeueAfter: c.interval}, err
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
