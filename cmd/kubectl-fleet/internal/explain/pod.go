package explain

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/fleet"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Pod explains where a pod stands: bound, waiting for the claim it is
// nominated to (the claim's phase, age and last launch error), or why no
// NodePool admitted it (the FailedProvisioning event's words, per pool)
// and which NodePool limits are in the way.
func Pod(ctx context.Context, c *cluster.Clients, namespace, name string, now time.Time, out io.Writer) error {
	pod, err := c.Kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s not found: check the name and the namespace (-n)", namespace, name)
	}
	if err != nil {
		return err
	}
	p := printer{out}
	id := pod.Namespace + "/" + pod.Name
	if pod.Spec.NodeName != "" {
		p.line(0, "Pod %s is scheduled on node %s (%s). Run `kubectl fleet explain node %s` for the node.", id, pod.Spec.NodeName, pod.Status.Phase, pod.Spec.NodeName)
		return nil
	}
	events, err := eventsFor(ctx, c.Kube, "Pod", pod.Namespace, pod.Name)
	if err != nil {
		return err
	}
	p.line(0, "Pod %s: Pending for %s; requests %s.", id, ago(now, pod.CreationTimestamp.Time), requests(pod))
	if n := pod.Status.NominatedNodeName; n != "" {
		return nominated(ctx, c, p, pod, n, now)
	}
	p.line(0, "Not nominated to any node or NodeClaim.")
	if e := latest(events, "FailedProvisioning"); e != nil {
		p.line(0, "Why no NodePool admitted it (FailedProvisioning, %s ago, %d time(s)):", ago(now, e.Last), e.Count)
		reasons := fleet.PoolReasons(e.Message)
		if len(reasons) == 0 {
			p.line(1, "%s", e.Message)
		}
		for _, pool := range sortedKeys(reasons) {
			p.line(1, "nodepool %q: %s", pool, reasons[pool])
		}
		if err := limits(ctx, c, p, reasons); err != nil {
			return err
		}
	} else {
		p.line(0, "No FailedProvisioning event: the provisioner has not judged the pod (yet). Is its schedulerName (%s) served by fleet-scheduler with the Provisioner enabled?", pod.Spec.SchedulerName)
	}
	if e := latest(events, "FailedScheduling"); e != nil {
		p.line(0, "Why no existing node took it (FailedScheduling, %s ago):", ago(now, e.Last))
		p.line(1, "%s", e.Message)
	}
	return nil
}

// nominated explains a pod nominated to a node or a claim.
func nominated(ctx context.Context, c *cluster.Clients, p printer, pod *v1.Pod, name string, now time.Time) error {
	nc, err := c.Karp.KarpenterV1().NodeClaims().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, nerr := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); nerr == nil {
			p.line(0, "Nominated to node %s: preemption is making room there (lower-priority pods are being evicted).", name)
			return nil
		}
		p.line(0, "Nominated to claim %s, which has no NodeClaim object yet: the claim is planned and is created when the batch window closes (1s idle, 10s at most). If this lasts, the claim was given up and the pod is provisioned for again.", name)
		return nil
	}
	if err != nil {
		return err
	}
	p.line(0, "Nominated to NodeClaim %s (nodepool %s), %s, created %s ago.", nc.Name, nc.Labels[karpv1.NodePoolLabelKey], phase(nc), ago(now, nc.CreationTimestamp.Time))
	if t := nc.Labels[v1.LabelInstanceTypeStable]; t != "" {
		p.line(1, "launched as %s, %s, in %s; provider ID %s", t, nc.Labels[karpv1.CapacityTypeLabelKey], nc.Labels[v1.LabelTopologyZone], nc.Status.ProviderID)
	} else {
		p.line(1, "may launch as %s", strings.Join(requirementValues(nc, v1.LabelInstanceTypeStable), ", "))
	}
	for _, cond := range nc.Status.Conditions {
		if cond.Status != metav1.ConditionTrue && cond.Message != "" {
			p.line(1, "%s=%s %s: %s (%s ago)", cond.Type, cond.Status, cond.Reason, cond.Message, ago(now, cond.LastTransitionTime.Time))
		}
	}
	events, err := eventsFor(ctx, c.Kube, "NodeClaim", "", nc.Name)
	if err != nil {
		return err
	}
	if e := latestWarning(events); e != nil {
		p.line(1, "last error: %s: %s (%s ago)", e.Reason, e.Message, ago(now, e.Last))
	}
	if nc.Status.NodeName == "" {
		p.line(0, "The pod binds as soon as the node registers and is Ready; its nomination holds the room on the claim meanwhile.")
	} else {
		p.line(0, "Node %s has registered; the pod binds once the node is initialized (Ready, startup taints gone).", nc.Status.NodeName)
	}
	return nil
}

// phase sums a NodeClaim's conditions up.
func phase(nc *karpv1.NodeClaim) string {
	cond := func(t string) *metav1.Condition {
		for i := range nc.Status.Conditions {
			if nc.Status.Conditions[i].Type == t {
				return &nc.Status.Conditions[i]
			}
		}
		return nil
	}
	isTrue := func(t string) bool { c := cond(t); return c != nil && c.Status == metav1.ConditionTrue }
	switch {
	case nc.DeletionTimestamp != nil:
		return "being deleted"
	case isTrue(karpv1.ConditionTypeInitialized):
		return "Initialized"
	case isTrue(karpv1.ConditionTypeRegistered):
		return "Registered, its node not initialized yet"
	case isTrue(karpv1.ConditionTypeLaunched):
		return "Launched, its node not registered yet"
	case cond(karpv1.ConditionTypeLaunched) != nil && cond(karpv1.ConditionTypeLaunched).Status == metav1.ConditionFalse:
		return "launch failed"
	default:
		return "launching"
	}
}

func latestWarning(events []event) *event {
	for i := range events {
		if events[i].Type == v1.EventTypeWarning {
			return &events[i]
		}
	}
	return nil
}

func requirementValues(nc *karpv1.NodeClaim, key string) []string {
	for _, r := range nc.Spec.Requirements {
		if r.Key == key && r.Operator == v1.NodeSelectorOpIn {
			if len(r.Values) > 5 {
				return append(slices.Clone(r.Values[:5]), fmt.Sprintf("and %d more", len(r.Values)-5))
			}
			return r.Values
		}
	}
	return []string{"any " + key}
}

// limits prints, for each NodePool with limits, what its NodeClaims hold
// against them, as the provisioner counts it (a claim's launched capacity,
// else what it asked for, and one node each); pools whose reason is their
// limits are marked.
func limits(ctx context.Context, c *cluster.Clients, p printer, reasons map[string]string) error {
	pools, err := c.Karp.KarpenterV1().NodePools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	claims, err := c.Karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	used := map[string]v1.ResourceList{}
	for i := range claims.Items {
		nc := &claims.Items[i]
		pool := nc.Labels[karpv1.NodePoolLabelKey]
		held := nc.Status.Capacity
		if len(held) == 0 {
			held = nc.Spec.Resources.Requests
		}
		total := used[pool]
		if total == nil {
			total = v1.ResourceList{}
			used[pool] = total
		}
		for name, q := range held {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
		n := total[packing.ResourceNodes]
		n.Add(resource.MustParse("1"))
		total[packing.ResourceNodes] = n
	}
	header := false
	for i := range pools.Items {
		np := &pools.Items[i]
		if len(np.Spec.Limits) == 0 {
			continue
		}
		if !header {
			p.line(0, "NodePool limits (in use by its NodeClaims / limit):")
			header = true
		}
		var parts []string
		for _, name := range sortedKeys(np.Spec.Limits) {
			limit := np.Spec.Limits[name]
			u := used[np.Name][name]
			mark := ""
			if u.Cmp(limit) >= 0 {
				mark = " (reached)"
			}
			parts = append(parts, fmt.Sprintf("%s %s/%s%s", name, u.String(), limit.String(), mark))
		}
		in := ""
		if strings.Contains(reasons[np.Name], "limits") {
			in = " <- in the way"
		}
		p.line(1, "%s: %s%s", np.Name, strings.Join(parts, ", "), in)
	}
	return nil
}

func requests(pod *v1.Pod) string {
	r := packing.ResourceList(packing.PodRequests(pod))
	var parts []string
	for _, name := range sortedKeys(r) {
		if q := r[name]; !q.IsZero() && name != v1.ResourcePods {
			parts = append(parts, string(name)+"="+q.String())
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
