package nodepool

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

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
	if why := launchhealth.Held(np); why != "" {
		pool.Unavailable = why
		return pool
	}
	if classErr != nil {
		pool.Unavailable = classErr.Error()
		return pool
	}
	options, err := s.Catalog.Launchable(class)
	if err != nil {
		pool.Unavailable = err.Error()
		return pool
	}
	pool.Labels = poolLabels(np, options)
	selector, err := packing.KarpenterSelector(tmpl.Spec.Requirements)
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

// poolLabels are the labels every node of the pool carries: the template's,
// the pool's name, and single-valued requirements on keys no instance
// offering defines (a requirement `team In [scan]` labels the node team=scan).
func poolLabels(np *karpv1.NodePool, options []*packing.Option) map[string]string {
	out := packing.RequiredLabels(np.Spec.Template.Spec.Requirements, options)
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
