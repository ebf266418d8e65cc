package packing

import (
	"fmt"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// Karpenter's node selector operators besides the core ones.
const (
	NodeSelectorOpGte v1.NodeSelectorOperator = "Gte"
	NodeSelectorOpLte v1.NodeSelectorOperator = "Lte"
)

// RequirementsSelector turns Karpenter label requirements (a NodePool's, a
// NodeClaim's, a NodeOverlay's: all of them must hold) into a node selector
// that component-helpers can match. Gte and Lte become Gt and Lt on the
// neighbouring integer. No requirements give a nil selector, which selects
// everything.
func RequirementsSelector(reqs []v1.NodeSelectorRequirement) (*nodeaffinity.NodeSelector, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	exprs := make([]v1.NodeSelectorRequirement, 0, len(reqs))
	for i, r := range reqs {
		req := *r.DeepCopy()
		switch r.Operator {
		case NodeSelectorOpGte, NodeSelectorOpLte:
			if len(r.Values) != 1 {
				return nil, fmt.Errorf("[%d] %s: %s needs exactly one value", i, r.Key, r.Operator)
			}
			n, err := strconv.ParseInt(r.Values[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("[%d] %s: %s needs an integer, got %q", i, r.Key, r.Operator, r.Values[0])
			}
			req.Operator, req.Values = v1.NodeSelectorOpGt, []string{strconv.FormatInt(n-1, 10)}
			if r.Operator == NodeSelectorOpLte {
				req.Operator, req.Values = v1.NodeSelectorOpLt, []string{strconv.FormatInt(n+1, 10)}
			}
		}
		exprs = append(exprs, req)
	}
	return nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: exprs}}})
}
