package nodepool

import (
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// requirementsSelector turns NodePool or NodeClaim requirements into a node
// selector that component-helpers can match. Karpenter's Gte and Lte become
// Gt and Lt on the neighbouring integer. Nil requirements select everything.
func requirementsSelector(reqs []karpv1.NodeSelectorRequirementWithMinValues) (*nodeaffinity.NodeSelector, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	exprs := make([]v1.NodeSelectorRequirement, 0, len(reqs))
	for i, r := range reqs {
		req := r.NodeSelectorRequirement()
		switch r.Operator {
		case karpv1.NodeSelectorOpGte, karpv1.NodeSelectorOpLte:
			if len(r.Values) != 1 {
				return nil, fmt.Errorf("[%d] %s: %s needs exactly one value", i, r.Key, r.Operator)
			}
			n, err := strconv.ParseInt(r.Values[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("[%d] %s: %s needs an integer, got %q", i, r.Key, r.Operator, r.Values[0])
			}
			req.Operator, req.Values = v1.NodeSelectorOpGt, []string{strconv.FormatInt(n-1, 10)}
			if r.Operator == karpv1.NodeSelectorOpLte {
				req.Operator, req.Values = v1.NodeSelectorOpLt, []string{strconv.FormatInt(n+1, 10)}
			}
		}
		exprs = append(exprs, req)
	}
	return nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: exprs}}})
}
