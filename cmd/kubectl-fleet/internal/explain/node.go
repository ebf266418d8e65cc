package explain

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	nodeutil "k8s.io/kubernetes/pkg/util/node"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/fleet"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/drain"
)

// disruptionEvents are the reasons the scale-down loop records on a
// NodeClaim and its Node.
var disruptionEvents = []string{"DisruptionBlocked", "Unconsolidatable", "Disrupting", "DisruptionCancelled", "Replacing"}

// Node explains why a node is or is not being consolidated: its claim and
// pool, the pool's policy and consolidateAfter, what holds it (the loop's
// own checks: do-not-disrupt, nominated pods, PodDisruptionBudgets), the
// pool's disruption budget, under Balanced the worth-it figures, and the
// loop's last words on it (its events).
func Node(ctx context.Context, c *cluster.Clients, name string, now time.Time, out io.Writer) error {
	p := printer{out}
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = nil // a claim whose node has not registered
	} else if err != nil {
		return err
	}
	fl, err := fleet.Load(ctx, c, "")
	if err != nil {
		return err
	}
	nc := fl.ClaimOf(name)
	if nc == nil {
		if node == nil {
			return fmt.Errorf("no node and no NodeClaim named %s: check the name (kubectl get nodes, kubectl get nodeclaims)", name)
		}
		p.line(0, "Node %s is not managed by fleet-scheduler (no NodeClaim owns it): it is never consolidated or replaced.", name)
		return nil
	}
	nodeName := name
	if node != nil {
		nodeName = node.Name
	} else if nc.Status.NodeName != "" {
		nodeName = nc.Status.NodeName
	}
	pool := fl.Pool(nc.Labels[karpv1.NodePoolLabelKey])
	price, priced := fl.Price(nc)
	p.line(0, "Node %s: NodeClaim %s, nodepool %s, %s %s in %s, %s/hour.", nodeName, nc.Name, nc.Labels[karpv1.NodePoolLabelKey],
		nc.Labels[v1.LabelInstanceTypeStable], nc.Labels[karpv1.CapacityTypeLabelKey], nc.Labels[v1.LabelTopologyZone], fleet.FormatPrice(price, priced))
	if pool == nil {
		p.line(0, "Its NodePool %q does not exist any more: the claim is not disrupted by consolidation.", nc.Labels[karpv1.NodePoolLabelKey])
		return nil
	}
	pods, err := podsOn(ctx, c, nodeName)
	if err != nil {
		return err
	}
	nominatedPods, err := podsNominatedTo(ctx, c, nodeName, nc.Name)
	if err != nil {
		return err
	}
	movable := disruption.Movable(pods)
	p.line(0, "Pods: %d bound (%d would move elsewhere on a drain), %d nominated to it; requests %s.", len(pods), len(movable), nominatedPods, utilization(node, pods))

	d := pool.Spec.Disruption
	policy := string(d.ConsolidationPolicy)
	if policy == "" {
		policy = string(karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized)
	}
	p.line(0, "Consolidation: policy %s, consolidateAfter %s.", policy, d.ConsolidateAfter.String())
	switch {
	case pool.Spec.Replicas != nil:
		p.line(1, "a static NodePool (spec.replicas): consolidation leaves its nodes alone")
	case d.ConsolidateAfter.IsNever():
		p.line(1, "consolidateAfter Never: the pool is not consolidated")
	case policy == string(karpv1.ConsolidationPolicyWhenEmpty) && len(movable) > 0:
		p.line(1, "WhenEmpty: the node has pods, so it is not consolidated")
	}
	for _, t := range []string{karpv1.ConditionTypeConsolidatable, karpv1.ConditionTypeDrifted, karpv1.ConditionTypeDisruptionReason, karpv1.ConditionTypeInitialized} {
		if cond := condition(nc, t); cond != nil {
			p.line(1, "%s=%s %s %s (since %s ago)", cond.Type, cond.Status, cond.Reason, cond.Message, ago(now, cond.LastTransitionTime.Time))
		}
	}

	pdbs, err := c.Kube.PolicyV1().PodDisruptionBudgets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	list := make([]*policyv1.PodDisruptionBudget, len(pdbs.Items))
	for i := range pdbs.Items {
		list[i] = &pdbs.Items[i]
	}
	if why := disruption.NodeHold(nc, node, pods, nominatedPods, list); why != "" {
		p.line(0, "Held back: %s.", why)
	} else {
		p.line(0, "Nothing holds it back: no do-not-disrupt, no pod on its way to it, no PodDisruptionBudget at zero for its pods.")
	}
	if !karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized) {
		p.line(0, "Not initialized yet: the scale-down loop weighs initialized nodes only (expiry aside).")
	}
	total, disrupting := fl.BudgetCounts(pool.Name)
	left, by, limit, err := disruption.BudgetLeft(pool, karpv1.DisruptionReasonUnderutilized, total, disrupting, now)
	switch {
	case err != nil:
		p.line(0, "Disruption budget: cannot be read (%v): nothing is disrupted until it is fixed.", err)
	case by == "":
		p.line(0, "Disruption budget: unbounded; %d of the pool's %d initialized node(s) disrupting.", disrupting, total)
	default:
		p.line(0, "Disruption budget: %s allows %s of %d node(s), %d disrupting: %d more may go now.", by, limit, total, disrupting, left)
	}
	if d.ConsolidationPolicy == karpv1.ConsolidationPolicyBalanced {
		balanced(p, fl, pool, nc, movable, price, priced, now)
	}
	claimEvents, err := eventsFor(ctx, c.Kube, "NodeClaim", "", nc.Name)
	if err != nil {
		return err
	}
	var nodeEvents []event
	if node != nil {
		if nodeEvents, err = eventsFor(ctx, c.Kube, "Node", "", node.Name); err != nil {
			return err
		}
	}
	var words []event
	for _, e := range append(claimEvents, nodeEvents...) {
		if contains(disruptionEvents, e.Reason) && (len(words) == 0 || words[len(words)-1].Message != e.Message) {
			words = append(words, e)
		}
	}
	slices.SortFunc(words, func(a, b event) int { return b.Last.Compare(a.Last) })
	if len(words) == 0 {
		p.line(0, "The scale-down loop has recorded nothing on it.")
		return nil
	}
	p.line(0, "The scale-down loop's last words (events on the NodeClaim and the Node):")
	for _, e := range words[:min(len(words), 6)] {
		p.line(1, "%s ago %s: %s", ago(now, e.Last), e.Reason, e.Message)
	}
	return nil
}

// balanced prints the Balanced policy's verdict on removing the node.
func balanced(p printer, fl *fleet.Fleet, pool *karpv1.NodePool, nc *karpv1.NodeClaim, movable []*v1.Pod, price float64, priced bool, now time.Time) {
	var members []disruption.PoolNode
	for _, m := range fl.Initialized(pool.Name) {
		pr, ok := fl.Price(m.Claim)
		members = append(members, disruption.PoolNode{Claim: m.Claim, Pods: disruption.Movable(m.Pods), Price: pr, Priced: ok})
	}
	verdict := disruption.BalancedVerdict(pool, disruption.PoolNode{Claim: nc, Pods: movable, Price: price, Priced: priced}, members, now)
	if verdict == "" {
		p.line(0, "Balanced: removing it is worth its disruption (if its pods fit elsewhere).")
		return
	}
	p.line(0, "%s: removing it is not worth it.", verdict)
}

func condition(nc *karpv1.NodeClaim, t string) *metav1.Condition {
	for i := range nc.Status.Conditions {
		if nc.Status.Conditions[i].Type == t {
			return &nc.Status.Conditions[i]
		}
	}
	return nil
}

func podsOn(ctx context.Context, c *cluster.Clients, node string) ([]*v1.Pod, error) {
	list, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String()})
	if err != nil {
		return nil, err
	}
	var out []*v1.Pod
	for i := range list.Items {
		if drain.IsActive(&list.Items[i]) {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}

// podsNominatedTo counts the unbound pods nominated to the node or claim.
func podsNominatedTo(ctx context.Context, c *cluster.Clients, names ...string) (int, error) {
	list, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", "").String()})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		if nn := list.Items[i].Status.NominatedNodeName; nn != "" && contains(names, nn) {
			n++
		}
	}
	return n, nil
}

// utilization is the pods' requests against the node's allocatable.
func utilization(node *v1.Node, pods []*v1.Pod) string {
	if node == nil {
		return "(the node has not registered)"
	}
	var cpu, mem int64
	for _, p := range pods {
		r := fleet.Requests([]*v1.Pod{p})
		cpu += r.Cpu().MilliValue()
		mem += r.Memory().Value()
	}
	alloc := node.Status.Allocatable
	pct := func(used, of int64) string {
		if of == 0 {
			return "-"
		}
		return fmt.Sprintf("%d%%", used*100/of)
	}
	ready := ""
	if !nodeutil.IsNodeReady(node) {
		ready = "; the node is not Ready"
	}
	return fmt.Sprintf("cpu %dm of %dm (%s), memory %dMi of %dMi (%s)%s", cpu, alloc.Cpu().MilliValue(), pct(cpu, alloc.Cpu().MilliValue()),
		mem>>20, alloc.Memory().Value()>>20, pct(mem, alloc.Memory().Value()), ready)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
