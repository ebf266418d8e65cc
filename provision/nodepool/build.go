package nodepool

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// build computes one pool from its NodePool, node class and the DaemonSets.
func (s *Source) build(np *karpv1.NodePool, class *ec2v1.EC2NodeClass, classErr error, daemonSets []*appsv1.DaemonSet) *packing.Pool {
	tmpl := np.Spec.Template
	pool := &packing.Pool{
		Name:           np.Name,
		Weight:         weight(np),
		Taints:         tmpl.Spec.Taints,
		StartupTaints:  tmpl.Spec.StartupTaints,
		DaemonRequests: packing.Sum(),
		MinValues:      minValues(tmpl.Spec.Requirements),
		Static:         np.Spec.Replicas != nil,
	}
	if c := meta.FindStatusCondition(np.Status.Conditions, karpv1.ConditionTypeValidationSucceeded); c != nil && c.Status == metav1.ConditionFalse {
		pool.Unavailable = "it is invalid: " + c.Message
		return pool
	}
	if paused, why := launchhealth.Paused(np); paused {
		pool.Unavailable = "its launches are paused: " + why
		return pool
	}
	if classErr != nil {
		pool.Unavailable = classErr.Error()
		return pool
	}
	options, err := s.Catalog.Options(class)
	if err != nil {
		pool.Unavailable = err.Error()
		return pool
	}
	options = launchable(options, class)
	pool.Labels = poolLabels(np, options)
	selector, err := requirementsSelector(tmpl.Spec.Requirements)
	if err != nil {
		pool.Unavailable = fmt.Sprintf("spec.template.spec.requirements: %v", err)
		return pool
	}
	pool.Options = packing.NewPoolOptions(options, pool.Labels, selector)
	if len(pool.Options) == 0 {
		// Offerings EC2 just refused for capacity or quota are left out of
		// the catalogue for a while: say so, or a quota storm reads as a
		// misconfigured pool.
		pool.Unavailable = fmt.Sprintf("no instance offering in the zones and architectures of EC2NodeClass %q satisfies its requirements now "+
			"(offerings EC2 recently refused for capacity or quota stay out until their mark expires; see the NodePool's Launchable condition)", class.Name)
		return pool
	}
	if why := pool.MinValues.Unmet(pool.Options); why != "" {
		pool.Unavailable = "its offerings cannot meet the requirements' minValues: " + why
		return pool
	}
	placeDaemons(daemonSets, pool)
	return pool
}

// launchable keeps the options the node class can launch: in a zone where
// it has a subnet, of an architecture it has an image for.
func launchable(options []*packing.Option, class *ec2v1.EC2NodeClass) []*packing.Option {
	zones, arches := map[string]bool{}, map[string]bool{}
	for _, s := range class.Status.Subnets {
		zones[s.Zone] = true
	}
	for _, ami := range class.Status.AMIs {
		for _, r := range ami.Requirements {
			if r.Key == v1.LabelArchStable && r.Operator == v1.NodeSelectorOpIn {
				for _, a := range r.Values {
					arches[a] = true
				}
			}
		}
	}
	out := make([]*packing.Option, 0, len(options))
	for _, o := range options {
		if zones[o.Zone] && arches[o.Labels[v1.LabelArchStable]] {
			out = append(out, o)
		}
	}
	return out
}

// poolLabels are the labels every node of the pool carries: the template's,
// the pool's name, and single-valued requirements on keys no instance
// offering defines (a requirement `team In [scan]` labels the node team=scan).
func poolLabels(np *karpv1.NodePool, options []*packing.Option) map[string]string {
	offered := map[string]bool{}
	for _, o := range options {
		for k := range o.Labels {
			offered[k] = true
		}
	}
	out := map[string]string{}
	for _, r := range np.Spec.Template.Spec.Requirements {
		if !offered[r.Key] && r.Operator == v1.NodeSelectorOpIn && len(r.Values) > 0 {
			out[r.Key] = r.Values[0]
		}
	}
	for k, v := range np.Spec.Template.Labels {
		out[k] = v
	}
	out[karpv1.NodePoolLabelKey] = np.Name
	return out
}

// minValues gathers the requirements' minValues; nil when none is set.
func minValues(reqs []karpv1.NodeSelectorRequirementWithMinValues) packing.MinValues {
	var out packing.MinValues
	for _, r := range reqs {
		if r.MinValues == nil {
			continue
		}
		if out == nil {
			out = packing.MinValues{}
		}
		if *r.MinValues > out[r.Key] {
			out[r.Key] = *r.MinValues
		}
	}
	return out
}
