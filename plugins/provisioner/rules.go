package provisioner

import (
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// ruleKind says how a rule counts the pods its term selects.
type ruleKind int

const (
	affinity     ruleKind = iota // go where the selected pods are
	antiAffinity                 // go where they are not
	spread                       // keep the count per domain within maxSkew
	avoidOwners                  // keep off the pods whose anti-affinity selects this pod
)

// rule is one pod-to-pod constraint of a pending pod, required or a
// preference treated as required until relaxed.
type rule struct {
	kind ruleKind
	term fwk.AffinityTerm
	// spread only
	maxSkew      int32
	minDomains   int32
	selfMatch    bool
	honorTaints  bool
	ignoreAffine bool // nodeAffinityPolicy: Ignore
	// owner is the group of pods carrying the term, for avoidOwners.
	owner *group
}

func (r *rule) hostname() bool { return r.term.TopologyKey == v1.LabelHostname }

// preference is a soft constraint held as a requirement until relaxed.
type preference struct {
	order  int // kind first: pod affinity, pod anti-affinity, node affinity, spread
	weight int32
	rule   *rule                      // a pod-to-pod preference
	node   *nodeaffinity.NodeSelector // a preferred node affinity term
	what   string                     // for events: which field was relaxed
}

// spreadRule turns a topology spread constraint into a rule: its selector
// (with matchLabelKeys) in the pod's namespace.
func spreadRule(pod *v1.Pod, c *v1.TopologySpreadConstraint) (*rule, error) {
	sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
	if err != nil {
		return nil, err
	}
	if c.LabelSelector == nil {
		sel = labels.Nothing()
	}
	for _, key := range c.MatchLabelKeys {
		if v, ok := pod.Labels[key]; ok {
			req, err := labels.NewRequirement(key, selection.In, []string{v})
			if err != nil {
				return nil, err
			}
			sel = sel.Add(*req)
		}
	}
	r := &rule{kind: spread, maxSkew: c.MaxSkew, term: fwk.AffinityTerm{
		Namespaces: sets.New(pod.Namespace), Selector: sel, TopologyKey: c.TopologyKey, NamespaceSelector: labels.Nothing(),
	}}
	if c.MinDomains != nil {
		r.minDomains = *c.MinDomains
	}
	r.selfMatch = sel.Matches(labels.Set(pod.Labels))
	r.honorTaints = c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor
	r.ignoreAffine = c.NodeAffinityPolicy != nil && *c.NodeAffinityPolicy == v1.NodeInclusionPolicyIgnore
	return r, nil
}

// podRules are the pod's required pod-to-pod constraints, and its
// preferences ordered for relaxation: by kind, then lowest weight first.
func podRules(pi *framework.PodInfo) (required []*rule, prefs []*preference, err error) {
	pod := pi.Pod
	for _, t := range pi.RequiredAffinityTerms {
		required = append(required, &rule{kind: affinity, term: t, selfMatch: t.Matches(pod, nil)})
	}
	for _, t := range pi.RequiredAntiAffinityTerms {
		required = append(required, &rule{kind: antiAffinity, term: t})
	}
	for i := range pod.Spec.TopologySpreadConstraints {
		c := &pod.Spec.TopologySpreadConstraints[i]
		r, err := spreadRule(pod, c)
		if err != nil {
			return nil, nil, err
		}
		if c.WhenUnsatisfiable == v1.DoNotSchedule {
			required = append(required, r)
		} else {
			prefs = append(prefs, &preference{order: 3, rule: r, what: "topologySpreadConstraints[" + c.TopologyKey + "] ScheduleAnyway"})
		}
	}
	for _, t := range pi.PreferredAffinityTerms {
		prefs = append(prefs, &preference{order: 0, weight: t.Weight, what: "preferred pod affinity on " + t.TopologyKey,
			rule: &rule{kind: affinity, term: t.AffinityTerm, selfMatch: t.Matches(pod, nil)}})
	}
	for _, t := range pi.PreferredAntiAffinityTerms {
		prefs = append(prefs, &preference{order: 1, weight: t.Weight, what: "preferred pod anti-affinity on " + t.TopologyKey,
			rule: &rule{kind: antiAffinity, term: t.AffinityTerm}})
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil {
		for _, t := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			sel, err := nodeaffinity.NewNodeSelector(&v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{t.Preference}})
			if err != nil {
				return nil, nil, err
			}
			prefs = append(prefs, &preference{order: 2, weight: t.Weight, node: sel, what: "preferred node affinity"})
		}
	}
	slices.SortStableFunc(prefs, func(a, b *preference) int {
		if a.order != b.order {
			return a.order - b.order
		}
		return int(a.weight - b.weight)
	})
	return required, prefs, nil
}
