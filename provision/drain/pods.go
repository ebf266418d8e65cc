package drain

import (
	"time"

	v1 "k8s.io/api/core/v1"
	corev1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// How a node's pods are classed for draining and for disruption decisions,
// after Karpenter v1 (sigs.k8s.io/karpenter pkg/utils/pod), with one
// deliberate difference: DaemonSet pods are never evicted (Karpenter evicts
// them last). They run the node's agents until the instance goes, and the
// DaemonSet controller would not put them back on a tainted node anyway;
// `kubectl drain --ignore-daemonsets` does the same.

// mirrorPodAnnotation marks the API copy of a kubelet's static pod.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// stuckTerminating is how long past its deletion timestamp a terminating pod
// may stay before the drain stops waiting for it (its kubelet is likely gone).
const stuckTerminating = time.Minute

// IsTerminal reports whether the pod has finished (Succeeded or Failed).
func IsTerminal(pod *v1.Pod) bool {
	return pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed
}

// IsTerminating reports whether the pod is being deleted.
func IsTerminating(pod *v1.Pod) bool { return pod.DeletionTimestamp != nil }

// IsActive reports whether the pod is neither finished nor being deleted.
func IsActive(pod *v1.Pod) bool { return !IsTerminal(pod) && !IsTerminating(pod) }

// IsMirror reports whether the pod is a static pod's mirror, which the API
// cannot remove.
func IsMirror(pod *v1.Pod) bool {
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return true
	}
	return isOwnedBy(pod, "v1", "Node")
}

// IsDaemonSetPod reports whether a DaemonSet owns the pod.
func IsDaemonSetPod(pod *v1.Pod) bool { return isOwnedBy(pod, "apps/v1", "DaemonSet") }

func isOwnedBy(pod *v1.Pod, apiVersion, kind string) bool {
	for _, o := range pod.OwnerReferences {
		if o.APIVersion == apiVersion && o.Kind == kind {
			return true
		}
	}
	return false
}

// HasDoNotDisrupt reports whether the pod carries karpenter.sh/do-not-disrupt: "true".
func HasDoNotDisrupt(pod *v1.Pod) bool {
	return pod.Annotations[karpv1.DoNotDisruptAnnotationKey] == "true"
}

// ToleratesDisruptedTaint reports whether the pod tolerates
// karpenter.sh/disrupted:NoSchedule; such pods are left on a draining node.
func ToleratesDisruptedTaint(pod *v1.Pod) bool {
	taint := karpv1.DisruptedNoScheduleTaint()
	return corev1helper.TolerationsTolerateTaint(klog.Background(), pod.Spec.Tolerations, &taint, true)
}

// IsCritical reports whether the pod runs at a system-critical priority
// class; such pods are evicted after every other.
func IsCritical(pod *v1.Pod) bool {
	return pod.Spec.PriorityClassName == "system-cluster-critical" || pod.Spec.PriorityClassName == "system-node-critical"
}

// IsReschedulable reports whether the pod must find another node when its
// node goes: it is active and neither a DaemonSet pod nor a mirror pod.
func IsReschedulable(pod *v1.Pod) bool {
	return IsActive(pod) && !IsDaemonSetPod(pod) && !IsMirror(pod)
}

// BlocksVoluntaryDisruption reports whether the pod keeps its node from
// voluntary disruption (emptiness, consolidation, drift): it is active and
// annotated karpenter.sh/do-not-disrupt. Finished and terminating pods do
// not block, as in Karpenter.
func BlocksVoluntaryDisruption(pod *v1.Pod) bool { return IsActive(pod) && HasDoNotDisrupt(pod) }

// isDrained reports whether the drain no longer waits for the pod: it
// finished, it is a DaemonSet or mirror pod, it tolerates the disrupted
// taint, or it has been terminating for over a minute past its deletion
// timestamp.
func isDrained(pod *v1.Pod, now time.Time) bool {
	return IsTerminal(pod) || IsDaemonSetPod(pod) || IsMirror(pod) || ToleratesDisruptedTaint(pod) ||
		(IsTerminating(pod) && now.Sub(pod.DeletionTimestamp.Time) > stuckTerminating)
}

// isEvictable reports whether the drain evicts the pod: it is waited for,
// active, and not do-not-disrupt (those wait for the grace period).
func isEvictable(pod *v1.Pod, now time.Time) bool {
	return !isDrained(pod, now) && IsActive(pod) && !HasDoNotDisrupt(pod)
}
