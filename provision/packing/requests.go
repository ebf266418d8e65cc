package packing

import (
	v1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// PodRequests is what the pod asks of a node, as the scheduler counts it
// (init containers, sidecars and overhead included), plus one pod slot.
func PodRequests(pod *v1.Pod) *framework.Resource {
	r := framework.NewResource(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
	r.AllowedPodNumber = 1
	return r
}

// Sum adds every request into one total.
func Sum(rs ...*framework.Resource) *framework.Resource {
	total := &framework.Resource{}
	for _, r := range rs {
		Add(total, r)
	}
	return total
}

// Add adds r into total.
func Add(total, r *framework.Resource) {
	total.MilliCPU += r.MilliCPU
	total.Memory += r.Memory
	total.EphemeralStorage += r.EphemeralStorage
	total.AllowedPodNumber += r.AllowedPodNumber
	for name, q := range r.ScalarResources {
		total.AddScalar(name, q)
	}
}
