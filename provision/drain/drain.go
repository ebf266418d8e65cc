// Package drain empties a node before its instance is terminated, the way
// Karpenter v1's termination controller does: the node is tainted
// karpenter.sh/disrupted:NoSchedule so nothing new lands on it, and its pods
// are evicted through the Eviction API so PodDisruptionBudgets hold. A pod a
// budget protects is retried until the budget allows it, and the blocking
// budget is named in an event. Pods annotated karpenter.sh/do-not-disrupt
// are never evicted: the drain waits for them to finish. Once the
// NodeClaim's terminationGracePeriod runs out, every remaining pod is
// deleted regardless, early enough to get its own grace period.
//
// The drain leaves DaemonSet pods, mirror (static) pods and pods that
// tolerate the disrupted taint on the node, and is done when no other pod
// remains. It is a step the NodeClaim termination controller calls on every
// reconcile until it reports done; it keeps no state between calls except
// which events it already recorded.
package drain

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
)

// Drainer drains nodes. It is safe for concurrent use on different nodes.
type Drainer struct {
	Kube kubernetes.Interface
	// Pods is the indexer of a pod informer prepared with AddPodIndexers.
	Pods cache.Indexer
	// Recorder records the drain's events on the Node, its NodeClaim and
	// the pods. Objects are given kind and version before they are recorded,
	// so a recorder whose scheme lacks the core types works.
	Recorder events.EventRecorder
	// Interval is how soon a drain that is not done should be called again;
	// 2s when zero.
	Interval time.Duration
	// Clock is the drain's clock; the real one when nil.
	Clock clock.PassiveClock

	mu       sync.Mutex
	reported map[string]string // node -> the last blocked message recorded
}

// Status is where a node's drain stands.
type Status struct {
	// Done is true when no pod the drain waits for remains on the node (or
	// the node is gone): the instance may be terminated.
	Done bool
	// Waiting is the number of pods the drain still waits for.
	Waiting int
	// Evicted is how many evictions the API accepted in this call.
	Evicted int
	// Deleted is how many pods this call deleted because the
	// terminationGracePeriod ran out.
	Deleted int
	// Blocked says, one entry per pod, why pods are not leaving: a
	// PodDisruptionBudget that allows no disruption, or do-not-disrupt.
	Blocked []string
	// RequeueAfter is when to call Drain again if not Done.
	RequeueAfter time.Duration
}

// Deadline is when the claim's terminationGracePeriod runs out: the
// karpenter.sh/nodeclaim-termination-timestamp annotation when set,
// otherwise the claim's deletion time plus the period. Nil when the claim
// has no period or is not being deleted: the drain then waits forever.
func Deadline(nc *karpv1.NodeClaim) *time.Time {
	if nc == nil {
		return nil
	}
	if s, ok := nc.Annotations[karpv1.NodeClaimTerminationTimestampAnnotationKey]; ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return &t
		}
	}
	if nc.Spec.TerminationGracePeriod == nil || nc.DeletionTimestamp == nil {
		return nil
	}
	t := nc.DeletionTimestamp.Add(nc.Spec.TerminationGracePeriod.Duration)
	return &t
}

// Drain moves the node one step towards empty: it taints the node, deletes
// the pods whose share of the grace period is up, evicts the others (the
// non-critical ones first), and reports what is left. nc is the node's
// NodeClaim, for its terminationGracePeriod and events; it may be nil (a
// Node deleted without a claim), and then the drain waits without a limit.
// A missing node is drained.
func (d *Drainer) Drain(ctx context.Context, nodeName string, nc *karpv1.NodeClaim) (Status, error) {
	logger := klog.FromContext(ctx).WithValues("node", nodeName)
	node, tainted, err := d.taint(ctx, nodeName)
	if apierrors.IsNotFound(err) {
		d.forget(nodeName)
		return Status{Done: true}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("tainting node %s: %w", nodeName, err)
	}
	now := d.now()
	deadline := Deadline(nc)
	pods, err := PodsOnNode(d.Pods, nodeName)
	if err != nil {
		return Status{}, err
	}
	st := d.step(ctx, node, nc, pods, now, deadline)
	if tainted {
		// A nil *time.Time panics in the logger's String call: log "none".
		until := "none"
		if deadline != nil {
			until = deadline.Format(time.RFC3339)
		}
		logger.V(2).Info("Draining node", "pods", st.Waiting, "deadline", until)
		d.record(node, nc, v1.EventTypeNormal, "Draining", fmt.Sprintf("Tainted %s:%s; evicting %d pod(s)%s",
			karpv1.DisruptedTaintKey, v1.TaintEffectNoSchedule, st.Waiting, deadlineNote(deadline)))
	}
	if st.Waiting == 0 {
		// The cache may lag a pod the scheduler bound just before the taint:
		// confirm with the API before calling the node empty.
		live, err := d.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.nodeName", nodeName).String(),
		})
		if err != nil {
			return Status{}, fmt.Errorf("listing pods on node %s: %w", nodeName, err)
		}
		livePods := make([]*v1.Pod, len(live.Items))
		for i := range live.Items {
			livePods[i] = &live.Items[i]
		}
		if st = d.step(ctx, node, nc, livePods, now, deadline); st.Waiting == 0 {
			st.Done = true
			if d.forget(nodeName) {
				d.record(node, nc, v1.EventTypeNormal, "Drained", "Every pod that had to leave the node is gone")
			}
			logger.V(2).Info("Drained node")
			return st, nil
		}
	}
	d.reportBlocked(node, nc, st)
	st.RequeueAfter = d.interval()
	if deadline != nil {
		if until := deadline.Sub(now); until > 0 && until < st.RequeueAfter {
			st.RequeueAfter = until
		}
	}
	return st, nil
}

// step deletes and evicts what is due among pods and counts what is left.
func (d *Drainer) step(ctx context.Context, node *v1.Node, nc *karpv1.NodeClaim, pods []*v1.Pod, now time.Time, deadline *time.Time) Status {
	var st Status
	var nonCritical, critical []*v1.Pod
	for _, pod := range pods {
		if isDrained(pod, now) {
			continue
		}
		st.Waiting++
		if IsTerminating(pod) {
			continue
		}
		if deadline != nil && !now.Before(deleteTime(pod, *deadline)) {
			if d.deleteExpiring(ctx, node, pod, now, *deadline) {
				st.Deleted++
			}
			continue
		}
		if HasDoNotDisrupt(pod) {
			st.Blocked = append(st.Blocked, fmt.Sprintf("pod %s/%s has %s; waiting for it to finish%s",
				pod.Namespace, pod.Name, karpv1.DoNotDisruptAnnotationKey, deadlineNote(deadline)))
			continue
		}
		if isEvictable(pod, now) {
			if IsCritical(pod) {
				critical = append(critical, pod)
			} else {
				nonCritical = append(nonCritical, pod)
			}
		}
	}
	// System-critical pods go last: they may serve the others while those
	// shut down.
	group := nonCritical
	if len(group) == 0 {
		group = critical
	}
	for _, pod := range group {
		ok, blocked := d.evict(ctx, node, nc, pod)
		if ok {
			st.Evicted++
		}
		if blocked != "" {
			st.Blocked = append(st.Blocked, blocked)
		}
	}
	sort.Strings(st.Blocked)
	return st
}

// deleteTime is when the pod must be deleted to get its whole
// terminationGracePeriodSeconds before the node's deadline.
func deleteTime(pod *v1.Pod, deadline time.Time) time.Time {
	grace := int64(v1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	return deadline.Add(-time.Duration(grace) * time.Second)
}

// deleteExpiring deletes a pod whose time on the node is up, with what is
// left of the node's grace period as its own.
func (d *Drainer) deleteExpiring(ctx context.Context, node *v1.Node, pod *v1.Pod, now, deadline time.Time) bool {
	grace := int64(deadline.Sub(now).Seconds())
	if grace < 0 {
		grace = 0
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil && *pod.Spec.TerminationGracePeriodSeconds < grace {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	err := d.Kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &grace, Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.FromContext(ctx).Error(err, "Deleting pod at the end of the node's terminationGracePeriod", "pod", klog.KObj(pod))
		return false
	}
	klog.FromContext(ctx).V(2).Info("Deleted pod: the node's terminationGracePeriod ends", "pod", klog.KObj(pod),
		"node", node.Name, "gracePeriodSeconds", grace, "deadline", deadline)
	d.Recorder.Eventf(controller.WithKind(pod), controller.WithKind(node), v1.EventTypeWarning, "Deleted", "Drain",
		"Deleted with %ds grace: node %s's terminationGracePeriod ends at %s", grace, node.Name, deadline.UTC().Format(time.RFC3339))
	return true
}

// evict asks the Eviction API to remove the pod. It reports whether the
// eviction was accepted and, if a budget refused it, why.
func (d *Drainer) evict(ctx context.Context, node *v1.Node, nc *karpv1.NodeClaim, pod *v1.Pod) (bool, string) {
	err := d.Kube.CoreV1().Pods(pod.Namespace).EvictV1(ctx, newEviction(pod))
	switch {
	case err == nil:
		reason := "the node is being terminated"
		if c := disruptionReason(nc); c != "" {
			reason = "the node is disrupted: " + c
		}
		klog.FromContext(ctx).V(2).Info("Evicted pod", "pod", klog.KObj(pod), "node", node.Name)
		d.Recorder.Eventf(controller.WithKind(pod), controller.WithKind(node), v1.EventTypeNormal, "Evicted", "Drain", "Evicted from node %s: %s", node.Name, reason)
		return true, ""
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone already, or a different pod of the same name now.
		return false, ""
	default:
		msg := evictionRefusal(pod, err)
		klog.FromContext(ctx).V(3).Info("Eviction refused", "pod", klog.KObj(pod), "node", node.Name, "reason", msg)
		return false, fmt.Sprintf("pod %s/%s: %s", pod.Namespace, pod.Name, msg)
	}
}

// reportBlocked records why the drain is stuck, once per change of reasons.
func (d *Drainer) reportBlocked(node *v1.Node, nc *karpv1.NodeClaim, st Status) {
	msg := ""
	if len(st.Blocked) > 0 {
		msg = summarize(st.Blocked, 3)
	}
	d.mu.Lock()
	if d.reported == nil {
		d.reported = map[string]string{}
	}
	prev, seen := d.reported[node.Name]
	d.reported[node.Name] = msg
	d.mu.Unlock()
	if msg == "" || (seen && prev == msg) {
		return
	}
	d.record(node, nc, v1.EventTypeWarning, "DrainBlocked", fmt.Sprintf("%d pod(s) still on the node: %s", st.Waiting, msg))
}

// forget drops what was recorded about the node and reports whether
// anything was.
func (d *Drainer) forget(nodeName string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.reported[nodeName]
	delete(d.reported, nodeName)
	return ok
}

// record puts an event on the node and on its claim.
func (d *Drainer) record(node *v1.Node, nc *karpv1.NodeClaim, eventType, reason, note string) {
	d.Recorder.Eventf(controller.WithKind(node), nil, eventType, reason, "Drain", "%s", note)
	if nc != nil {
		d.Recorder.Eventf(nc, controller.WithKind(node), eventType, reason, "Drain", "%s", note)
	}
	d.mu.Lock()
	if d.reported == nil {
		d.reported = map[string]string{}
	}
	if _, ok := d.reported[node.Name]; !ok {
		d.reported[node.Name] = ""
	}
	d.mu.Unlock()
}

// taint puts karpenter.sh/disrupted:NoSchedule on the node and reports
// whether it had to.
func (d *Drainer) taint(ctx context.Context, nodeName string) (*v1.Node, bool, error) {
	return TaintDisrupted(ctx, d.Kube, nodeName)
}

// HasDisruptedTaint reports whether the node carries karpenter.sh/disrupted:NoSchedule.
func HasDisruptedTaint(node *v1.Node) bool {
	want := karpv1.DisruptedNoScheduleTaint()
	for i := range node.Spec.Taints {
		if node.Spec.Taints[i].MatchTaint(&want) {
			return true
		}
	}
	return false
}

func (d *Drainer) now() time.Time { return controller.Now(d.Clock) }

func (d *Drainer) interval() time.Duration {
	if d.Interval > 0 {
		return d.Interval
	}
	return 2 * time.Second
}

func disruptionReason(nc *karpv1.NodeClaim) string {
	if nc == nil {
		return ""
	}
	if c := nc.GetCondition(karpv1.ConditionTypeDisruptionReason); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}

func deadlineNote(deadline *time.Time) string {
	if deadline == nil {
		return ""
	}
	return fmt.Sprintf(" (terminationGracePeriod ends at %s)", deadline.UTC().Format(time.RFC3339))
}

// summarize joins at most n messages and counts the rest.
func summarize(msgs []string, n int) string {
	if len(msgs) <= n {
		return strings.Join(msgs, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(msgs[:n], "; "), len(msgs)-n)
}
