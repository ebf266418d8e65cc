package nodepool

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// requirementsSelector turns NodePool or NodeClaim requirements into a node
// selector that component-helpers can match (packing.RequirementsSelector:
// Karpenter's Gte and Lte included). Nil requirements select everything.
func requirementsSelector(reqs []karpv1.NodeSelectorRequirementWithMinValues) (*nodeaffinity.NodeSelector, error) {
	plain := make([]v1.NodeSelectorRequirement, len(reqs))
	for i, r := range reqs {
		plain[i] = r.NodeSelectorRequirement()
	}
	return packing.RequirementsSelector(plain)
}
