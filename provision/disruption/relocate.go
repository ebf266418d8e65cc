package disruption

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
)

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
