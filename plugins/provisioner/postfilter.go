package provisioner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// PostFilter runs when the pod fits no node. It nominates the pod to a
// claim: the one it is already nominated to if that still holds it, else an
// in-flight or planned claim it packs onto, else a new claim on the best
// NodePool. It never waits on the cloud: launching happens when the batch
// closes, in the background.
func (p *Provisioner) PostFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, _ fwk.NodeToStatusReader) (*fwk.PostFilterResult, *fwk.Status) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	defer func() {
		d := time.Since(start).Seconds()
		metrics.ProvisionerSchedulingDuration.Observe(d)
		metrics.SchedulerSchedulingDuration.WithLabelValues("provisioner").Observe(d)
	}()
	need := packing.PodRequests(pod)

	p.mu.Lock()
	defer p.mu.Unlock()
	// One look at the pools per decision: in-flight claims and new ones both come from it.
	pools := p.pools.Pools()
	p.syncInFlight(pools)

	for _, c := range p.candidateClaims(pod) {
		if p.tryClaim(ctx, state, pod, need, c) {
			logger.V(4).Info("Pod packed onto claim", "pod", klog.KObj(pod), "claim", c.name, "options", len(c.options))
			p.forget(pod.UID)
			p.assign(pod, need, c)
			p.nominated(pod, c)
			return framework.NewPostFilterResultWithNominatedNode(c.name), fwk.NewStatus(fwk.Success)
		}
	}

	reasons := make([]string, 0, len(pools))
	for _, pool := range pools {
		c, reason := p.openClaim(ctx, state, pod, need, pool)
		if c == nil {
			reasons = append(reasons, fmt.Sprintf("nodepool %q: %s", pool.Name, reason))
			continue
		}
		p.addClaim(c)
		p.forget(pod.UID)
		p.assign(pod, need, c)
		logger.V(2).Info("Opened claim", "pod", klog.KObj(pod), "claim", c.name, "nodePool", pool.Name, "options", len(c.options))
		p.nominated(pod, c)
		p.batch.touch()
		return framework.NewPostFilterResultWithNominatedNode(c.name), fwk.NewStatus(fwk.Success)
	}
	msg := "no NodePool can provision the pod"
	if len(pools) == 0 {
		msg = "no NodePool exists"
	} else {
		msg += ": " + strings.Join(reasons, "; ")
	}
	p.remember(pod)
	p.notProvisionable(pod, msg)
	return nil, fwk.NewStatus(fwk.Unschedulable, msg)
}

// candidateClaims orders the claims a pod may pack onto: the one it is
// already nominated to (so a retried pod keeps its place and never flaps),
// then in-flight claims (capacity already being bought), then planned ones,
// oldest first.
func (p *Provisioner) candidateClaims(pod *v1.Pod) []*claim {
	out := make([]*claim, 0, len(p.claims))
	own := p.claims[pod.Status.NominatedNodeName]
	if own != nil {
		out = append(out, own)
	}
	rest := make([]*claim, 0, len(p.claims))
	for _, c := range p.claims {
		if c != own {
			rest = append(rest, c)
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].planned != rest[j].planned {
			return !rest[i].planned
		}
		if !rest[i].opened.Equal(rest[j].opened) {
			return rest[i].opened.Before(rest[j].opened)
		}
		return rest[i].name < rest[j].name
	})
	return append(out, rest...)
}

// tryClaim reports whether the pod packs onto c, and narrows a planned
// claim's options to those that hold everything on it.
func (p *Provisioner) tryClaim(ctx context.Context, state fwk.CycleState, pod *v1.Pod, need *framework.Resource, c *claim) bool {
	if !tolerates(pod, c.pool.Taints) {
		return false
	}
	used := c.requests(pod.UID)
	packing.Add(used, need)
	if !packing.Fits(used, c.max) {
		return false
	}
	options := packing.WithRoomFor(packing.AdmittingPod(c.options, pod), used)
	if len(options) == 0 || (!c.planned && len(options) != len(c.options)) {
		// A created claim cannot narrow: every option it may launch as must hold the pod.
		return false
	}
	if c.planned {
		if options = pin(options, topologyKeys(pod)); c.pool.MinValues.Unmet(options) != "" {
			return false // the claim would lose the choice minValues keeps
		}
	}
	if st := p.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, packing.NodeInfo(c.name, c.pool, options)); !st.IsSuccess() {
		return false
	}
	if c.planned {
		c.narrow(options)
		p.batch.touch()
	}
	return true
}

// openClaim opens a new planned claim on pool for the pod, or says which of
// the pool's constraints ruled the pod out.
func (p *Provisioner) openClaim(ctx context.Context, state fwk.CycleState, pod *v1.Pod, need *framework.Resource, pool *packing.Pool) (*claim, string) {
	if pool.Unavailable != "" {
		return nil, pool.Unavailable
	}
	if pool.Static {
		return nil, "it is a static NodePool: spec.replicas fixes its node count"
	}
	if taint, ok := untolerated(pod, pool.Taints); ok {
		return nil, fmt.Sprintf("the pod does not tolerate taint %s", taint.ToString())
	}
	options := packing.AdmittingPod(pool.Options, pod)
	if len(options) == 0 {
		return nil, fmt.Sprintf("none of its %d instance offerings satisfies the pod's node selector and required node affinity", len(pool.Options))
	}
	used := packing.Sum(pool.DaemonRequests, need)
	if options = packing.WithRoomFor(options, used); len(options) == 0 {
		return nil, fmt.Sprintf("no instance type has room for the pod's requests plus daemonset overhead (%s)", describe(used))
	}
	if options = packing.WithinLimits(options, p.remaining(pool)); len(options) == 0 {
		return nil, "its limits leave no room for another node"
	}
	if why := pool.MinValues.Unmet(options); why != "" {
		return nil, "the offerings left for the pod cannot meet minValues: " + why
	}
	name := p.newClaimName(pool.Name)
	if st := p.handle.RunFilterPluginsWithNominatedPods(ctx, state, pod, packing.NodeInfo(name, pool, options)); !st.IsSuccess() {
		return nil, fmt.Sprintf("%s rejects its nodes: %s", st.Plugin(), strings.Join(st.Reasons(), ", "))
	}
	options = pin(options, topologyKeys(pod))
	if why := pool.MinValues.Unmet(options); why != "" {
		return nil, "the offerings in the pod's topology domain cannot meet minValues: " + why
	}
	return newClaim(name, pool, options, true, p.now()), ""
}

// remaining is the pool's remaining limits less what its planned claims
// will take (at least the smallest option each).
func (p *state) remaining(pool *packing.Pool) v1.ResourceList {
	if pool.Remaining == nil {
		return nil
	}
	left := pool.Remaining.DeepCopy()
	for _, c := range p.claims {
		if !c.planned || c.pool.Name != pool.Name {
			continue
		}
		for name, q := range packing.MinCapacity(c.options) {
			if l, ok := left[name]; ok {
				l.Sub(q)
				left[name] = l
			}
		}
	}
	return left
}

func tolerates(pod *v1.Pod, taints []v1.Taint) bool {
	_, untol := untolerated(pod, taints)
	return !untol
}

func untolerated(pod *v1.Pod, taints []v1.Taint) (v1.Taint, bool) {
	return v1helper.FindMatchingUntoleratedTaint(klog.Background(), taints, pod.Spec.Tolerations, func(t *v1.Taint) bool {
		return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
	}, false)
}

func describe(r *framework.Resource) string {
	list := packing.ResourceList(r)
	parts := make([]string, 0, len(list))
	for _, n := range slices.Sorted(maps.Keys(list)) {
		q := list[n]
		parts = append(parts, string(n)+"="+q.String())
	}
	return strings.Join(parts, ", ")
}
