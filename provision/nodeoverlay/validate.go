package nodeoverlay

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool/status"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// wellKnownResources are what a capacity overlay may not touch.
var wellKnownResources = []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, v1.ResourcePods}

// Validate runs the checks Karpenter makes on a NodeOverlay at run time,
// beyond what the CRD's rules catch: each requirement as a NodePool's
// (qualified key outside the reserved domains unless well-known, label
// values, the values its operator needs; NotIn needs one), no well-known
// resource in capacity, and a price or adjustment that parses. It returns
// the selector of the requirements (nil: every option).
func Validate(o *v1alpha1.NodeOverlay) (*nodeaffinity.NodeSelector, error) {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	reqs := make([]v1.NodeSelectorRequirement, 0, len(o.Spec.Requirements))
	for i, r := range o.Spec.Requirements {
		path := spec.Child("requirements").Index(i)
		errs = append(errs, status.ValidateRequirement(karpv1.NodeSelectorRequirementWithMinValues{Key: r.Key, Operator: r.Operator, Values: r.Values}, path)...)
		if r.Operator == v1.NodeSelectorOpNotIn && len(r.Values) == 0 {
			errs = append(errs, field.Required(path.Child("values"), "NotIn needs at least one value"))
		}
		reqs = append(reqs, v1.NodeSelectorRequirement{Key: r.Key, Operator: r.Operator, Values: r.Values})
	}
	for _, name := range slices.Sorted(maps.Keys(o.Spec.Capacity)) {
		if slices.Contains(wellKnownResources, name) {
			errs = append(errs, field.Forbidden(spec.Child("capacity").Key(string(name)), "only extended resources can be added"))
		}
	}
	if o.Spec.Price != nil && o.Spec.PriceAdjustment != nil {
		errs = append(errs, field.Forbidden(spec.Child("price"), "cannot set both price and priceAdjustment"))
	}
	if o.Spec.Price != nil {
		if _, err := parsePrice(*o.Spec.Price); err != nil {
			errs = append(errs, field.Invalid(spec.Child("price"), *o.Spec.Price, err.Error()))
		}
	}
	if o.Spec.PriceAdjustment != nil {
		if _, err := AdjustedPrice(1, *o.Spec.PriceAdjustment); err != nil {
			errs = append(errs, field.Invalid(spec.Child("priceAdjustment"), *o.Spec.PriceAdjustment, err.Error()))
		}
	}
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	sel, err := packing.RequirementsSelector(reqs)
	if err != nil {
		return nil, fmt.Errorf("spec.requirements%v", err)
	}
	return sel, nil
}

// AdjustedPrice is price changed by an overlay's price or priceAdjustment,
// as Karpenter reads them: an unsigned number replaces the price; a signed
// one is added to it; a signed percentage scales it. The result is never
// below zero.
func AdjustedPrice(price float64, change string) (float64, error) {
	if change == "" {
		return price, nil
	}
	if !strings.HasPrefix(change, "+") && !strings.HasPrefix(change, "-") {
		return parsePrice(change)
	}
	pct, isPct := strings.CutSuffix(change, "%")
	v, err := strconv.ParseFloat(pct, 64)
	if err != nil {
		return 0, fmt.Errorf("not a signed number or percentage: %q", change)
	}
	out := price + v
	if isPct {
		out = price * (1 + v/100)
	}
	return max(out, 0), nil
}

func parsePrice(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("not a non-negative number: %q", s)
	}
	return v, nil
}
