package provisioner

import (
	v1 "k8s.io/api/core/v1"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

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
