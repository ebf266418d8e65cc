package status

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// Validate runs the checks Karpenter makes in its NodePool controller rather
// than in CEL: label keys and values, taints, requirement keys, operators
// and values. A pool that fails them cannot produce a valid Node.
func Validate(np *karpv1.NodePool) field.ErrorList {
	tmpl := field.NewPath("spec", "template")
	errs := validateLabels(np.Spec.Template.Labels, tmpl.Child("metadata", "labels"))
	seen := map[string]bool{} // a key and effect once across taints and startupTaints
	errs = append(errs, validateTaints(np.Spec.Template.Spec.Taints, tmpl.Child("spec", "taints"), seen)...)
	errs = append(errs, validateTaints(np.Spec.Template.Spec.StartupTaints, tmpl.Child("spec", "startupTaints"), seen)...)
	for i, r := range np.Spec.Template.Spec.Requirements {
		path := tmpl.Child("spec", "requirements").Index(i)
		if r.Key == karpv1.NodePoolLabelKey {
			// A pool cannot ask for its own name.
			errs = append(errs, field.Forbidden(path.Child("key"), restrictedMessage(r.Key)))
		}
		errs = append(errs, ValidateRequirement(r, path)...)
	}
	return errs
}

func validateLabels(labels map[string]string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	// In key order: a stable message, so status is not rewritten for nothing.
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		p := path.Key(k)
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p, k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(labels[k]) {
			errs = append(errs, field.Invalid(p, labels[k], msg))
		}
		if k == karpv1.NodePoolLabelKey || restricted(k) {
			errs = append(errs, field.Forbidden(p, "label is restricted: use a well-known label or a domain other than "+strings.Join(restrictedDomains, ", ")))
		}
	}
	return errs
}

func validateTaints(taints []v1.Taint, path *field.Path, seen map[string]bool) field.ErrorList {
	var errs field.ErrorList
	for i, t := range taints {
		p := path.Index(i)
		for _, msg := range validation.IsQualifiedName(t.Key) {
			errs = append(errs, field.Invalid(p.Child("key"), t.Key, msg))
		}
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
		}
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect,
				[]v1.TaintEffect{v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute}))
		}
		if id := t.Key + ":" + string(t.Effect); seen[id] {
			errs = append(errs, field.Duplicate(p, id))
		} else {
			seen[id] = true
		}
	}
	return errs
}

var supportedOperators = []v1.NodeSelectorOperator{
	v1.NodeSelectorOpIn, v1.NodeSelectorOpNotIn, v1.NodeSelectorOpExists, v1.NodeSelectorOpDoesNotExist,
	v1.NodeSelectorOpGt, v1.NodeSelectorOpLt, karpv1.NodeSelectorOpGte, karpv1.NodeSelectorOpLte,
}

// wellKnownValues are the only values some keys can take.
var wellKnownValues = map[string][]string{
	karpv1.CapacityTypeLabelKey: {karpv1.CapacityTypeOnDemand, karpv1.CapacityTypeSpot, karpv1.CapacityTypeReserved},
}

// ValidateRequirement checks one requirement (of a NodePool, or a
// NodeOverlay's as one without minValues) as Karpenter's runtime
// validation does: a qualified key outside the reserved label domains
// unless well-known, a supported operator, label values, and the values
// the operator needs.
func ValidateRequirement(r karpv1.NodeSelectorRequirementWithMinValues, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	key := r.Key
	if normalized, ok := karpv1.NormalizedLabels()[key]; ok {
		key = normalized
	}
	for _, msg := range validation.IsQualifiedName(key) {
		errs = append(errs, field.Invalid(path.Child("key"), r.Key, msg))
	}
	if key != karpv1.NodePoolLabelKey && restricted(key) {
		errs = append(errs, field.Forbidden(path.Child("key"), restrictedMessage(r.Key)))
	}
	if !slices.Contains(supportedOperators, r.Operator) {
		errs = append(errs, field.NotSupported(path.Child("operator"), r.Operator, supportedOperators))
	}
	for i, v := range r.Values {
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(path.Child("values").Index(i), v, msg))
		}
	}
	values := path.Child("values")
	switch r.Operator {
	case v1.NodeSelectorOpIn:
		if len(r.Values) == 0 {
			errs = append(errs, field.Required(values, "In needs at least one value"))
		}
		if r.MinValues != nil && len(r.Values) < *r.MinValues {
			errs = append(errs, field.Invalid(values, r.Values, fmt.Sprintf("fewer than minValues (%d)", *r.MinValues)))
		}
		errs = append(errs, validateKnownValues(key, r, values)...)
	case v1.NodeSelectorOpExists, v1.NodeSelectorOpDoesNotExist:
		if len(r.Values) > 0 {
			errs = append(errs, field.Forbidden(values, fmt.Sprintf("%s takes no values", r.Operator)))
		}
	case v1.NodeSelectorOpGt, v1.NodeSelectorOpLt, karpv1.NodeSelectorOpGte, karpv1.NodeSelectorOpLte:
		if len(r.Values) != 1 {
			errs = append(errs, field.Invalid(values, r.Values, fmt.Sprintf("%s needs a single non-negative integer", r.Operator)))
		} else if n, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil || n < 0 {
			errs = append(errs, field.Invalid(values.Index(0), r.Values[0], fmt.Sprintf("%s needs a non-negative integer", r.Operator)))
		}
	}
	return errs
}

func restrictedMessage(key string) string {
	return fmt.Sprintf("%s is restricted: use a well-known label or a domain other than %s", key, strings.Join(restrictedDomains, ", "))
}

// validateKnownValues fails a requirement on a key with known values only
// when none of its values is one of them (or fewer than minValues are), as
// Karpenter does: the unknown ones simply never match.
func validateKnownValues(key string, r karpv1.NodeSelectorRequirementWithMinValues, path *field.Path) field.ErrorList {
	known, ok := wellKnownValues[key]
	if !ok {
		return nil
	}
	n := 0
	for _, v := range r.Values {
		if slices.Contains(known, v) {
			n++
		}
	}
	switch {
	case n == 0 && len(r.Values) > 0:
		return field.ErrorList{field.NotSupported(path, r.Values, known)}
	case r.MinValues != nil && n < *r.MinValues:
		return field.ErrorList{field.Invalid(path, r.Values, fmt.Sprintf("only %d known values, fewer than minValues (%d)", n, *r.MinValues))}
	}
	return nil
}

// Label domains reserved for Kubernetes and Karpenter, and the subdomains
// of them users may still use.
var (
	restrictedDomains = []string{"kubernetes.io", "k8s.io", karpv1.GroupName, ec2v1.GroupName}
	allowedSubdomains = []string{v1.LabelNamespaceSuffixNode, v1.LabelNamespaceNodeRestriction, "kops.k8s.io"}
)

// restricted reports whether key is in a reserved domain and not one of
// the well-known labels.
func restricted(key string) bool {
	if slices.Contains(karpv1.WellKnownLabels(), key) || slices.Contains(ec2v1.WellKnownLabels(), key) {
		return false
	}
	domain := karpv1.LabelDomain(key)
	in := func(d string) bool { return domain == d || strings.HasSuffix(domain, "."+d) }
	return !slices.ContainsFunc(allowedSubdomains, in) && slices.ContainsFunc(restrictedDomains, in)
}
