package disruption

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Replacement: a node whose pods fit on no other node may still go when one
// new node holds them all - cheaper than it (consolidation), or made from
// the pool's current template (drift). The new NodeClaim is created first,
// annotated with the claim it replaces, and the old node is tainted
// karpenter.sh/disrupted:NoSchedule so nothing new lands on it. Once the
// new claim is Initialized the old claim is deleted and drained, and its
// pods move to the new node. If the new claim goes away first (its launch
// failed, or it never registered), the disruption is given up and the taint
// removed. Everything the loop needs to carry on after a restart is on the
// objects: the annotation and the taint.

// ReplacesAnnotationKey on a NodeClaim names the NodeClaim it was launched
// to replace.
const ReplacesAnnotationKey = "fleet-scheduler.io/replaces"

// PoolSource gives the launch options replacements are planned from: every
// NodePool's options, cheapest first (nodepool.Source).
type PoolSource interface {
	Pools() []*packing.Pool
}

// replacementState links the claims of replacements in progress: the
// claims being replaced, by name, to their replacements.
func replacementState(claims []*karpv1.NodeClaim) map[string]*karpv1.NodeClaim {
	out := map[string]*karpv1.NodeClaim{}
	for _, nc := range claims {
		if old := nc.Annotations[ReplacesAnnotationKey]; old != "" && nc.DeletionTimestamp == nil {
			out[old] = nc
		}
	}
	return out
}

// progressReplacements moves every replacement on: the old node goes once
// its replacement is initialized; a node left tainted with no replacement
// gets its taint back off. Claims in a replacement, old or new, are not
// judged again in this run.
func (l *loop) progressReplacements(ctx context.Context) {
	for _, k := range l.cands {
		if old := k.claim.Annotations[ReplacesAnnotationKey]; old != "" {
			if l.exists[old] {
				k.acted = true // on its way to take the old node's pods
			} else {
				l.finishReplacement(ctx, k)
			}
			continue
		}
		if k.node == nil || !drain.HasDisruptedTaint(k.node) {
			continue
		}
		k.acted = true
		r := l.replacing[k.claim.Name]
		switch {
		case r != nil && karpv1.IsConditionTrue(r.Status.Conditions, karpv1.ConditionTypeInitialized):
			reason, msg := string(karpv1.DisruptionReasonUnderutilized), "replaced by "+r.Name
			if c := k.claim.GetCondition(karpv1.ConditionTypeDisruptionReason); c != nil {
				reason, msg = c.Reason, c.Message
			}
			l.disrupt(ctx, k, reason, msg+"; the replacement "+r.Name+" is initialized")
		case r != nil:
			// Still launching or joining.
		case l.replacementGone(ctx, k.claim.Name):
			l.abandon(ctx, k)
		}
	}
}

// finishReplacement drops the annotation of a replacement whose old claim
// is gone, and restarts its consolidateAfter clock: the old node's pods
// are on their way to it and it must not be judged empty before they land.
func (l *loop) finishReplacement(ctx context.Context, k *candidate) {
	nc := k.claim.DeepCopy()
	delete(nc.Annotations, ReplacesAnnotationKey)
	updated, err := l.c.karp.KarpenterV1().NodeClaims().Update(ctx, nc, metav1.UpdateOptions{})
	if err != nil {
		klog.FromContext(ctx).V(3).Info("Finishing a replacement", "nodeClaim", nc.Name, "err", err)
		k.acted = true
		return
	}
	updated.Status.LastPodEventTime = metav1.NewTime(l.now)
	if updated, err = l.c.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err == nil {
		k.claim = updated
	}
	k.lastEvent = l.now
}

// replacementGone tells whether the replacement of a claim whose node is
// tainted, which the cache does not show, is really gone. One this process
// created may be too new for the cache: the apiserver is asked. Without a
// record (another process tainted the node, or this one restarted) the
// synced cache is the answer.
func (l *loop) replacementGone(ctx context.Context, old string) bool {
	name, ok := l.c.replacementOf(old)
	if !ok {
		return true
	}
	_, err := l.c.karp.KarpenterV1().NodeClaims().Get(ctx, name, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

// abandon gives up a replacement whose new claim is gone: the old node
// keeps its pods and may take new ones again.
func (l *loop) abandon(ctx context.Context, k *candidate) {
	// The cache may not show yet that the claim is being deleted (an
	// interruption deletes it, then taints its node): that taint is the
	// termination's, not a replacement's, and stays. The live claim says.
	live, err := l.c.karp.KarpenterV1().NodeClaims().Get(ctx, k.claim.Name, metav1.GetOptions{})
	if err != nil || live.UID != k.claim.UID || live.DeletionTimestamp != nil {
		return
	}
	if err := drain.UntaintDisrupted(ctx, l.c.kube, k.node.Name); err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).V(2).Info("Removing the disrupted taint", "node", k.node.Name, "err", err)
		return
	}
	l.c.forgetReplacement(k.claim.Name)
	l.c.report.event(k.claim, k.node, v1.EventTypeWarning, "DisruptionCancelled",
		"The replacement node is gone before it was ready (its launch failed or it never joined); the node stays")
	klog.FromContext(ctx).Info("Replacement gone; keeping the node", "nodeClaim", k.claim.Name, "node", k.node.Name)
}

// replacement is a planned replacement node.
type replacement struct {
	pool    *packing.Pool
	options []*packing.PoolOption
	need    *framework.Resource
}

// planReplacement finds one node of k's pool that holds every pod that
// must leave k, in k's zone, as the scheduler's Filter plugins judge it;
// when cheaperThan is positive only options cheaper than that count. It
// returns the plan, or why there is none. k's node is left out of the
// simulation on success.
func (l *loop) planReplacement(ctx context.Context, k *candidate, cheaperThan float64) (*replacement, string) {
	pool := l.pool(k.pool.Name)
	switch {
	case pool == nil:
		return nil, "NodePool " + k.pool.Name + " offers no launch options"
	case pool.Unavailable != "":
		return nil, "NodePool " + k.pool.Name + " cannot launch now: " + pool.Unavailable
	case pool.Static:
		// Its replicas are kept by the static controller: a node launched
		// here would be surplus to it.
		return nil, "NodePool " + k.pool.Name + " is static: a node is made up for once the old one is gone"
	}
	opts, need := packing.Holding(pool.Options, pool.DaemonRequests, k.movable...)
	if pool.Remaining != nil {
		opts = packing.WithinLimits(opts, pool.Remaining)
	}
	// The pods ran in this zone; their volumes and spread stay right there.
	if zone, ok := k.node.Labels[v1.LabelTopologyZone]; ok {
		opts = packing.PinnedTo(opts, v1.LabelTopologyZone, zone)
	}
	if cheaperThan > 0 {
		cheaper := opts[:0:0]
		for _, o := range opts {
			if o.Price < cheaperThan {
				cheaper = append(cheaper, o)
			}
		}
		opts = cheaper
		if k.claim.Labels[karpv1.CapacityTypeLabelKey] == karpv1.CapacityTypeSpot {
			var why string
			if opts, why = spotReplacementOptions(pool, opts); why != "" {
				return nil, why
			}
		}
	}
	if why := pool.MinValues.Unmet(opts); why != "" && len(opts) > 0 {
		return nil, "the replacement's offerings cannot meet minValues: " + why
	}
	if len(opts) == 0 {
		if cheaperThan > 0 {
			return nil, fmt.Sprintf("no cheaper instance type (under $%.4f/h) in its zone holds its %d pod(s) within the NodePool's requirements and limits", cheaperThan, len(k.movable))
		}
		return nil, fmt.Sprintf("no instance type in its zone holds its %d pod(s) within the NodePool's requirements and limits", len(k.movable))
	}
	sess, err := l.session(ctx)
	if err != nil {
		return nil, "the simulation could not start: " + err.Error()
	}
	sess.exclude(k.node.Name)
	if why := sess.fitAll(ctx, packing.NodeInfo(k.claim.Name+"-replacement", pool, opts), k.movable); why != "" {
		sess.include(k.node.Name)
		return nil, why
	}
	return &replacement{pool: pool, options: opts, need: need}, ""
}

// replace launches r for k and taints k's node; the old claim goes when the
// replacement is initialized (progressReplacements).
func (l *loop) replace(ctx context.Context, k *candidate, r *replacement, reason karpv1.DisruptionReason, message string) bool {
	logger := klog.FromContext(ctx).WithValues("nodeClaim", k.claim.Name, "node", k.node.Name, "reason", reason)
	np, err := l.c.nodePools.Get(k.pool.Name)
	if err != nil {
		logger.V(2).Info("Not replacing: NodePool not found", "err", err)
		return false
	}
	nc := nodepool.NewNodeClaim(np, packing.ClaimSpec{
		Name: np.Name + "-" + utilrand.String(5), NodePool: np.Name, Options: r.options, Requests: packing.ResourceList(r.need),
	})
	nc.Annotations[ReplacesAnnotationKey] = k.claim.Name
	created, err := l.c.karp.KarpenterV1().NodeClaims().Create(ctx, nc, metav1.CreateOptions{})
	if err != nil {
		logger.Error(err, "Creating the replacement NodeClaim")
		return false
	}
	l.c.markReplacing(k.claim.Name, created.Name)
	if _, _, err := drain.TaintDisrupted(ctx, l.c.kube, k.node.Name); err != nil {
		// The old node stays usable; the replacement will be judged empty.
		logger.Error(err, "Tainting the node being replaced")
		return false
	}
	message = fmt.Sprintf("%s; replacing it with %s (%s)", message, created.Name, describeOptions(r.options))
	old := k.claim.DeepCopy()
	old.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeDisruptionReason, Status: metav1.ConditionTrue, Reason: string(reason), Message: message})
	if updated, err := l.c.karp.KarpenterV1().NodeClaims().UpdateStatus(ctx, old, metav1.UpdateOptions{}); err == nil {
		k.claim = updated
	}
	k.acted = true
	l.budgets[k.pool.Name].disrupting++
	l.leaving = append(l.leaving, k.node.Name)
	l.c.report.event(k.claim, k.node, v1.EventTypeNormal, "Replacing", string(reason)+": "+message)
	logger.Info("Replacing node", "replacement", created.Name, "message", message, "pods", len(k.movable))
	return true
}

// pool is the run's view of a NodePool's launch options; nil without a
// PoolSource or for an unknown pool.
func (l *loop) pool(name string) *packing.Pool {
	if l.c.pools == nil {
		return nil
	}
	if l.poolViews == nil {
		l.poolViews = map[string]*packing.Pool{}
		for _, p := range l.c.pools.Pools() {
			l.poolViews[p.Name] = p
		}
	}
	return l.poolViews[name]
}

// price is what k's node costs per hour, from its pool's options: the one
// of its instance type, zone and capacity type; false when the pool no
// longer offers it.
func (l *loop) price(k *candidate) (float64, bool) {
	pool := l.pool(k.pool.Name)
	if pool == nil {
		return 0, false
	}
	lbl := k.claim.Labels
	it, zone, ct := lbl[v1.LabelInstanceTypeStable], lbl[v1.LabelTopologyZone], lbl[karpv1.CapacityTypeLabelKey]
	for _, o := range pool.Options {
		if o.InstanceType == it && o.Zone == zone && o.CapacityType == ct {
			return o.Price, true
		}
	}
	return 0, false
}

// describeOptions names the cheapest options of a replacement.
func describeOptions(opts []*packing.PoolOption) string {
	seen := map[string]bool{}
	var names []string
	for _, o := range opts {
		if seen[o.InstanceType] {
			continue
		}
		seen[o.InstanceType] = true
		if len(names) < 3 {
			names = append(names, fmt.Sprintf("%s $%.4f/h", o.InstanceType, o.Price))
		}
	}
	s := fmt.Sprint(names)
	if more := len(seen) - len(names); more > 0 {
		s += fmt.Sprintf(" and %d more instance types", more)
	}
	return s
}

func (c *Controller) markReplacing(old, replacement string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replacing[old] = replacement
}

func (c *Controller) replacementOf(old string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name, ok := c.replacing[old]
	return name, ok
}

func (c *Controller) forgetReplacement(old string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.replacing, old)
}
