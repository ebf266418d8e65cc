package nodepool

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/daemon/util"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// placeDaemons counts the DaemonSets whose pods would run on the pool's
// nodes, judged the way the DaemonSet controller judges a node
// (NodeShouldRunDaemonPod): the pod template with the tolerations every
// daemon pod is given, against the pool's taints (NoSchedule and NoExecute;
// startup taints do not count, they go and the daemon pod comes), and its
// nodeSelector and required node affinity against the node each launch
// option would become (the option's labels and the pool's).
//
// The choice is made per option, not per pool. A DaemonSet that runs on
// every option goes into Pool.Daemons and Pool.DaemonRequests: the Filter
// plugins then see its pod on every claim's node, host ports and all. One
// that runs on some options only (a GPU driver on the GPU types, an agent
// for one zone or architecture) holds its requests back from those options
// alone (PoolOption.HoldForDaemons). Counting it on every option would rule
// out smaller types it never runs on; counting it nowhere would overfill
// the nodes it does run on. Karpenter decides the same way per instance
// type (its daemon overhead groups); an option here is finer (type, zone
// and capacity type), so zone- and capacity-type-pinned daemons count
// exactly too. What is lost for the partial ones is only what the Filter
// plugins would see besides requests (their host ports, their affinity).
func placeDaemons(daemonSets []*appsv1.DaemonSet, pool *packing.Pool) {
	for _, ds := range daemonSets {
		if ds.Spec.Template.Spec.NodeName != "" {
			continue // pinned to an existing node by name
		}
		pod := daemonPod(ds)
		if !toleratesPool(pod, pool.Taints) {
			continue
		}
		on := pool.Options
		if needsMatching(pod) {
			affinity := nodeaffinity.GetRequiredNodeAffinity(pod)
			on = make([]*packing.PoolOption, 0, len(pool.Options))
			for _, o := range pool.Options {
				if ok, _ := affinity.Match(o.Node); ok {
					on = append(on, o)
				}
			}
		}
		switch {
		case len(on) == 0:
		case len(on) == len(pool.Options):
			pool.Daemons = append(pool.Daemons, pod)
			packing.Add(pool.DaemonRequests, packing.PodRequests(pod))
		default:
			r := packing.PodRequests(pod)
			for _, o := range on {
				o.HoldForDaemons(r)
			}
		}
	}
}

// daemonPod is the pod the DaemonSet controller would create: the template
// with the default daemon tolerations (not-ready, unreachable, the
// pressure conditions, unschedulable), owned by the DaemonSet.
func daemonPod(ds *appsv1.DaemonSet) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: ds.Name + "-overhead", Namespace: ds.Namespace, Labels: ds.Spec.Template.Labels, UID: ds.UID + "-overhead",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr.To(true)}},
		},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	util.AddOrUpdateDaemonPodTolerations(&pod.Spec)
	return pod
}

func toleratesPool(pod *v1.Pod, taints []v1.Taint) bool {
	_, untolerated := v1helper.FindMatchingUntoleratedTaint(klog.Background(), taints, pod.Spec.Tolerations, func(t *v1.Taint) bool {
		return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
	}, utilfeature.DefaultFeatureGate.Enabled(features.TaintTolerationComparisonOperators))
	return !untolerated
}

// needsMatching reports whether the pod has a node selector or required
// node affinity; without either it runs on every option.
func needsMatching(pod *v1.Pod) bool {
	a := pod.Spec.Affinity
	return len(pod.Spec.NodeSelector) > 0 ||
		(a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil)
}
