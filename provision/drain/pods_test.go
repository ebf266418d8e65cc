package drain

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

func TestPodClasses(t *testing.T) {
	now := time.Now()
	pod := func(mod func(*v1.Pod)) *v1.Pod {
		p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: v1.PodSpec{NodeName: "n"}, Status: v1.PodStatus{Phase: v1.PodRunning}}
		mod(p)
		return p
	}
	for _, tc := range []struct {
		name                  string
		pod                   *v1.Pod
		drained, evict, moves bool
	}{
		{"plain", pod(func(*v1.Pod) {}), false, true, true},
		{"daemonset", pod(func(p *v1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "d"}}
		}), true, false, false},
		{"mirror", pod(func(p *v1.Pod) { p.Annotations = map[string]string{mirrorPodAnnotation: "h"} }), true, false, false},
		{"owned by node", pod(func(p *v1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "n"}}
		}), true, false, false},
		{"tolerates disrupted", pod(func(p *v1.Pod) {
			p.Spec.Tolerations = []v1.Toleration{{Key: karpv1.DisruptedTaintKey, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}
		}), true, false, true},
		{"tolerates everything", pod(func(p *v1.Pod) { p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}} }), true, false, true},
		{"succeeded", pod(func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }), true, false, false},
		{"do-not-disrupt", pod(func(p *v1.Pod) { p.Annotations = map[string]string{karpv1.DoNotDisruptAnnotationKey: "true"} }), false, false, true},
		{"terminating", pod(func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now.Add(10 * time.Second)} }), false, false, false},
		{"stuck terminating", pod(func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: now.Add(-2 * time.Minute)} }), true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isDrained(tc.pod, now); got != tc.drained {
				t.Errorf("isDrained = %v, want %v", got, tc.drained)
			}
			if got := isEvictable(tc.pod, now); got != tc.evict {
				t.Errorf("isEvictable = %v, want %v", got, tc.evict)
			}
			if got := IsReschedulable(tc.pod); got != tc.moves {
				t.Errorf("IsReschedulable = %v, want %v", got, tc.moves)
			}
		})
	}
}

func TestEvictionRefusal(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop"}}
	budget := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	budget.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause,
		Message: "The disruption budget web needs 2 healthy pods and has 2 currently"}}
	several := &apierrors.StatusError{ErrStatus: metav1.Status{Code: http.StatusInternalServerError,
		Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{budget, "PodDisruptionBudget shop/web allows no disruption now (needs 2 healthy pods and has 2 currently)"},
		{several, "more than one PodDisruptionBudget"},
		{errors.New("connection refused"), "connection refused"},
	} {
		if got := evictionRefusal(pod, tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("evictionRefusal(%v) = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
}

func TestDeadline(t *testing.T) {
	deleted := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	nc := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted},
		Spec: karpv1.NodeClaimSpec{TerminationGracePeriod: &metav1.Duration{Duration: time.Hour}}}
	if d := Deadline(nc); d == nil || !d.Equal(deleted.Add(time.Hour)) {
		t.Errorf("Deadline = %v, want deletion + 1h", d)
	}
	nc.Annotations = map[string]string{karpv1.NodeClaimTerminationTimestampAnnotationKey: "2025-01-01T00:30:00Z"}
	if d := Deadline(nc); d == nil || !d.Equal(deleted.Add(30*time.Minute)) {
		t.Errorf("Deadline with the annotation = %v, want the annotation", d)
	}
	if d := Deadline(&karpv1.NodeClaim{}); d != nil {
		t.Errorf("Deadline without a grace period = %v, want none", d)
	}
}
