package nodepool

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// MaxInstanceTypes bounds the instance types a NodeClaim carries: the
// cheapest that hold its pods. It keeps the object and the fleet request
// small while leaving EC2 room to pick where capacity is.
const MaxInstanceTypes = 60

// Creator writes NodeClaim objects for closed planned claims.
type Creator struct {
	Client    versioned.Interface
	NodePools karplisters.NodePoolLister
}

// Create makes the NodeClaim for spec from its NodePool's template.
func (c *Creator) Create(ctx context.Context, spec packing.ClaimSpec) error {
	np, err := c.NodePools.Get(spec.NodePool)
	if err != nil {
		return fmt.Errorf("nodepool %q: %w", spec.NodePool, err)
	}
	_, err = c.Client.KarpenterV1().NodeClaims().Create(ctx, NewNodeClaim(np, spec), metav1.CreateOptions{})
	return err
}

// NewNodeClaim builds the NodeClaim a planned claim becomes: the NodePool's
// template, narrowed to the instance types, zones and capacity types of the
// options that hold the claim's pods.
func NewNodeClaim(np *karpv1.NodePool, spec packing.ClaimSpec) *karpv1.NodeClaim {
	nc := np.Spec.Template.ToNodeClaim()
	nc.Name = spec.Name
	if nc.Labels == nil {
		nc.Labels = map[string]string{}
	}
	nc.Labels[karpv1.NodePoolLabelKey] = np.Name
	nc.OwnerReferences = []metav1.OwnerReference{{
		APIVersion:         karpv1.SchemeGroupVersion.String(),
		Kind:               "NodePool",
		Name:               np.Name,
		UID:                np.UID,
		BlockOwnerDeletion: ptr.To(true),
	}}
	nc.Finalizers = []string{karpv1.TerminationFinalizer}
	// The template's hash, for drift: a claim made from an older template is replaced.
	if nc.Annotations == nil {
		nc.Annotations = map[string]string{}
	}
	nc.Annotations[karpv1.NodePoolHashAnnotationKey] = TemplateHash(np)
	nc.Annotations[karpv1.NodePoolHashVersionAnnotationKey] = NodePoolHashVersion
	nc.Spec.Resources.Requests = spec.Requests

	types, zones, capacityTypes := narrowed(spec.Options)
	nc.Spec.Requirements = append(withoutKeys(nc.Spec.Requirements, karpv1.NodePoolLabelKey, v1.LabelInstanceTypeStable, v1.LabelTopologyZone, karpv1.CapacityTypeLabelKey),
		karpv1.NodeSelectorRequirementWithMinValues{Key: karpv1.NodePoolLabelKey, Operator: v1.NodeSelectorOpIn, Values: []string{np.Name}},
		karpv1.NodeSelectorRequirementWithMinValues{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: types},
		karpv1.NodeSelectorRequirementWithMinValues{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: zones},
		karpv1.NodeSelectorRequirementWithMinValues{Key: karpv1.CapacityTypeLabelKey, Operator: v1.NodeSelectorOpIn, Values: capacityTypes},
	)
	return nc
}

// narrowed lists the distinct instance types (cheapest first, at most
// MaxInstanceTypes), and the zones and capacity types of their options.
func narrowed(options []*packing.PoolOption) (types, zones, capacityTypes []string) {
	seenType, seenZone, seenCT := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, o := range options {
		if !seenType[o.InstanceType] {
			if len(types) == MaxInstanceTypes {
				continue
			}
			seenType[o.InstanceType] = true
			types = append(types, o.InstanceType)
		}
		seenZone[o.Zone] = true
		seenCT[o.CapacityType] = true
	}
	for z := range seenZone {
		zones = append(zones, z)
	}
	for ct := range seenCT {
		capacityTypes = append(capacityTypes, ct)
	}
	sort.Strings(zones)
	sort.Strings(capacityTypes)
	return types, zones, capacityTypes
}

func withoutKeys(reqs []karpv1.NodeSelectorRequirementWithMinValues, keys ...string) []karpv1.NodeSelectorRequirementWithMinValues {
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	out := make([]karpv1.NodeSelectorRequirementWithMinValues, 0, len(reqs)+4)
	for _, r := range reqs {
		if !drop[r.Key] {
			out = append(out, r)
		}
	}
	return out
}
