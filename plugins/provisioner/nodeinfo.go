package provisioner

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// nodeInfo builds the node a claim would become, for the scheduler's own
// Filter plugins: the cheapest option's labels, the pool's taints, the
// smallest allocatable among the options and the pool's daemon pods. The
// pods nominated to the claim are added by RunFilterPluginsWithNominatedPods.
func nodeInfo(name string, pool *packing.Pool, options []*packing.PoolOption) *framework.NodeInfo {
	rep := options[0]
	labels := make(map[string]string, len(rep.Node.Labels)+1)
	for k, v := range rep.Node.Labels {
		labels[k] = v
	}
	labels[v1.LabelHostname] = name
	allocatable := packing.ResourceList(packing.MinAllocatable(options))
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       v1.NodeSpec{Taints: pool.Taints},
		Status: v1.NodeStatus{
			Capacity:    allocatable,
			Allocatable: allocatable,
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	ni := framework.NewNodeInfo(pool.Daemons...)
	ni.SetNode(node)
	return ni
}

// topologyKeys are the node labels the pod's spread constraints and pod
// (anti-)affinity judge it by. A claim is pinned to the representative's
// value of each, so the node launched is in the domain the filters saw.
func topologyKeys(pod *v1.Pod) []string {
	var keys []string
	for _, c := range pod.Spec.TopologySpreadConstraints {
		keys = append(keys, c.TopologyKey)
	}
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil {
			for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				keys = append(keys, t.TopologyKey)
			}
		}
		if a.PodAntiAffinity != nil {
			for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				keys = append(keys, t.TopologyKey)
			}
		}
	}
	out := keys[:0]
	for _, k := range keys {
		if k != v1.LabelHostname && k != "" {
			out = append(out, k)
		}
	}
	return out
}

// pin narrows options to the representative's value of every topology key.
func pin(options []*packing.PoolOption, keys []string) []*packing.PoolOption {
	if len(keys) == 0 || len(options) == 0 {
		return options
	}
	rep := options[0]
	for _, k := range keys {
		if v, ok := rep.Node.Labels[k]; ok {
			options = packing.PinnedTo(options, k, v)
		}
	}
	return options
}
