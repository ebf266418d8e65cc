package nodepool

import (
	"context"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
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

	min := minValues(np.Spec.Template.Spec.Requirements)
	types, zones, capacityTypes := narrowed(spec.Options, min)
	in := func(key string, values []string) karpv1.NodeSelectorRequirementWithMinValues {
		r := karpv1.NodeSelectorRequirementWithMinValues{Key: key, Operator: v1.NodeSelectorOpIn, Values: values}
		if n, ok := min[key]; ok {
			r.MinValues = &n // the template's, kept on the narrowed requirement
		}
		return r
	}
	overlayAnnotations(nc.Annotations, spec.Options, types)
	nc.Spec.Requirements = append(withoutKeys(nc.Spec.Requirements, karpv1.NodePoolLabelKey, v1.LabelInstanceTypeStable, v1.LabelTopologyZone, karpv1.CapacityTypeLabelKey),
		in(karpv1.NodePoolLabelKey, []string{np.Name}),
		in(v1.LabelInstanceTypeStable, types),
		in(v1.LabelTopologyZone, zones),
		in(karpv1.CapacityTypeLabelKey, capacityTypes),
	)
	return nc
}

// narrowed lists the distinct instance types (cheapest first, at most
// MaxInstanceTypes), and the zones and capacity types of their options.
// Past MaxInstanceTypes, a type is still taken when it brings a value that
// a minValues key is short of, so the claim keeps the choice the pool asks
// for.
func narrowed(options []*packing.PoolOption, min packing.MinValues) (types, zones, capacityTypes []string) {
	seenType, seenZone, seenCT := map[string]bool{}, map[string]bool{}, map[string]bool{}
	seenValue := map[string]map[string]bool{}
	for k := range min {
		seenValue[k] = map[string]bool{}
	}
	for _, o := range options {
		if !seenType[o.InstanceType] {
			if len(types) >= MaxInstanceTypes && !bringsMissing(o, min, seenValue) {
				continue
			}
			seenType[o.InstanceType] = true
			types = append(types, o.InstanceType)
			for k := range min {
				if v, ok := o.Node.Labels[k]; ok {
					seenValue[k][v] = true
				}
			}
		}
		seenZone[o.Zone] = true
		seenCT[o.CapacityType] = true
	}
	return types, slices.Sorted(maps.Keys(seenZone)), slices.Sorted(maps.Keys(seenCT))
}

// bringsMissing reports whether o has a value for a minValues key that is
// short of values and does not have it yet.
func bringsMissing(o *packing.PoolOption, min packing.MinValues, seen map[string]map[string]bool) bool {
	for k, n := range min {
		if v, ok := o.Node.Labels[k]; ok && len(seen[k]) < n && !seen[k][v] {
			return true
		}
	}
	return false
}

// overlayAnnotations marks a claim whose instance types were chosen with
// a NodeOverlay's price or capacity, as Karpenter marks it.
func overlayAnnotations(annotations map[string]string, options []*packing.PoolOption, types []string) {
	chosen := map[string]bool{}
	for _, t := range types {
		chosen[t] = true
	}
	for _, o := range options {
		if !chosen[o.InstanceType] {
			continue
		}
		if o.PriceOverlay != "" {
			annotations[v1alpha1.PriceOverlayAppliedAnnotationKey] = "true"
		}
		if len(o.CapacityOverlays) > 0 {
			annotations[v1alpha1.CapacityOverlayAppliedAnnotationKey] = "true"
		}
	}
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
