package disruption

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// pdbIndex holds the run's PodDisruptionBudgets by namespace, selectors
// parsed once.
type pdbIndex map[string][]pdbEntry

type pdbEntry struct {
	name     string
	selector labels.Selector
	allowed  int32
}

func (c *Controller) pdbIndex() (pdbIndex, error) {
	all, err := c.pdbs.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	return indexPDBs(all), nil
}

// indexPDBs parses the budgets' selectors once, by namespace.
func indexPDBs(all []*policyv1.PodDisruptionBudget) pdbIndex {
	idx := pdbIndex{}
	for _, pdb := range all {
		sel := labels.Nothing()
		if pdb.Spec.Selector != nil {
			s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				continue
			}
			sel = s
		}
		idx[pdb.Namespace] = append(idx[pdb.Namespace], pdbEntry{name: pdb.Name, selector: sel, allowed: pdb.Status.DisruptionsAllowed})
	}
	return idx
}

// blocking names a budget that allows no disruption of the pod now, or "".
// Such a node is not chosen: its drain could not finish.
func (idx pdbIndex) blocking(pod *v1.Pod) string {
	for _, e := range idx[pod.Namespace] {
		if e.allowed <= 0 && e.selector.Matches(labels.Set(pod.Labels)) {
			return fmt.Sprintf("PodDisruptionBudget %s/%s allows no disruption of pod %s/%s now", pod.Namespace, e.name, pod.Namespace, pod.Name)
		}
	}
	return ""
}
