package nodepool

import (
	"sort"

	v1 "k8s.io/api/core/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/spechash"
)

// NodePoolHashVersion is the version of TemplateHash. A claim annotated
// with another version is not judged by its hash (as Karpenter does when
// its hashing changes), so changing the hash never rolls every node.
const NodePoolHashVersion = "v1"

// TemplateHash is the hash of the parts of a NodePool's template that a
// node is made from and cannot change afterwards: the template's labels and
// annotations, taints, startup taints, node class, expireAfter and
// terminationGracePeriod. A claim made from the pool carries it in
// karpenter.sh/nodepool-hash (with karpenter.sh/nodepool-hash-version
// NodePoolHashVersion); when the pool's hash moves on, the claim has
// drifted. Requirements are left out: a claim drifts on them only when its
// labels no longer satisfy them (see requirementsDrift), so widening a
// pool's instance types does not replace its nodes.
func TemplateHash(np *karpv1.NodePool) string {
	t := np.Spec.Template
	hashed := struct {
		Labels                 map[string]string          `json:"labels,omitempty"`
		Annotations            map[string]string          `json:"annotations,omitempty"`
		Taints                 []v1.Taint                 `json:"taints,omitempty"`
		StartupTaints          []v1.Taint                 `json:"startupTaints,omitempty"`
		NodeClassRef           *karpv1.NodeClassReference `json:"nodeClassRef,omitempty"`
		ExpireAfter            string                     `json:"expireAfter"`
		TerminationGracePeriod string                     `json:"terminationGracePeriod,omitempty"`
	}{
		Labels:        t.Labels,
		Annotations:   t.Annotations,
		Taints:        sortedTaints(t.Spec.Taints),
		StartupTaints: sortedTaints(t.Spec.StartupTaints),
		NodeClassRef:  t.Spec.NodeClassRef,
		ExpireAfter:   canonicalDuration(t.Spec.ExpireAfter),
	}
	if t.Spec.TerminationGracePeriod != nil {
		hashed.TerminationGracePeriod = t.Spec.TerminationGracePeriod.Duration.String()
	}
	return spechash.Of(hashed)
}

func canonicalDuration(d karpv1.NillableDuration) string {
	if d.IsNever() {
		return karpv1.Never
	}
	return d.Duration.String()
}

// sortedTaints orders taints so that their order does not change the hash;
// a taint's TimeAdded is not part of what a node is made from.
func sortedTaints(taints []v1.Taint) []v1.Taint {
	if len(taints) == 0 {
		return nil
	}
	out := make([]v1.Taint, len(taints))
	for i, t := range taints {
		out[i] = v1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		if out[i].Effect != out[j].Effect {
			return out[i].Effect < out[j].Effect
		}
		return out[i].Value < out[j].Value
	})
	return out
}
