package packing

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// KarpenterSelector is RequirementsSelector for a NodePool's or a
// NodeClaim's requirements (minValues take no part in matching). Nil
// requirements select everything.
func KarpenterSelector(reqs []karpv1.NodeSelectorRequirementWithMinValues) (*nodeaffinity.NodeSelector, error) {
	plain := make([]v1.NodeSelectorRequirement, len(reqs))
	for i, r := range reqs {
		plain[i] = r.NodeSelectorRequirement()
	}
	return RequirementsSelector(plain)
}

// RequiredLabels are the labels that single-valued `In` requirements give
// every node, on keys no option defines: a requirement `team In [scan]`
// labels the node team=scan.
func RequiredLabels(reqs []karpv1.NodeSelectorRequirementWithMinValues, options []*Option) map[string]string {
	return requiredLabels(reqs, offeredKeys(options))
}

func requiredLabels(reqs []karpv1.NodeSelectorRequirementWithMinValues, offered map[string]bool) map[string]string {
	out := map[string]string{}
	for _, r := range reqs {
		if !offered[r.Key] && r.Operator == v1.NodeSelectorOpIn && len(r.Values) > 0 {
			out[r.Key] = r.Values[0]
		}
	}
	return out
}

// ClaimLabels are the labels a NodeClaim's node carries besides its
// offering's, as its NodePool gives them: the claim's RequiredLabels and its
// own labels (its pool's template labels and name). Keys an offering
// defines stay the offering's: a launched claim carries its offering's
// labels, which must not make every option look like it.
func ClaimLabels(nc *karpv1.NodeClaim, options []*Option) map[string]string {
	offered := offeredKeys(options)
	out := requiredLabels(nc.Spec.Requirements, offered)
	for k, v := range nc.Labels {
		if !offered[k] {
			out[k] = v
		}
	}
	return out
}

func offeredKeys(options []*Option) map[string]bool {
	offered := map[string]bool{}
	for _, o := range options {
		for k := range o.Labels {
			offered[k] = true
		}
	}
	return offered
}

// launchedLabels pin a launched claim to what it launched as.
var launchedLabels = []string{v1.LabelInstanceTypeStable, v1.LabelTopologyZone, karpv1.CapacityTypeLabelKey}

// ClaimOptions narrows options to those the NodeClaim may launch as: those
// its requirements select and, once it launched, those of the instance
// type, zone and capacity type its labels name. The Provisioner's view of
// an in-flight claim and the cloud provider's launch both narrow with it.
// Requirements that cannot be matched select nothing.
func ClaimOptions(options []*PoolOption, nc *karpv1.NodeClaim) []*PoolOption {
	selector, err := KarpenterSelector(nc.Spec.Requirements)
	if err != nil {
		return nil
	}
	var out []*PoolOption
	for _, o := range options {
		if selector != nil && !selector.Match(o.Node) {
			continue
		}
		match := true
		for _, k := range launchedLabels {
			if v, ok := nc.Labels[k]; ok && o.Node.Labels[k] != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, o)
		}
	}
	return out
}
