package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

// Condition types. Ready is True when ValidationSucceeded is.
const (
	ConditionTypeReady               = "Ready"
	ConditionTypeValidationSucceeded = "ValidationSucceeded"
)

// Reasons of a False ValidationSucceeded, as Karpenter gives them.
const (
	// ReasonRuntimeValidation: the spec passed admission but cannot be
	// used (a requirement or capacity the CRD's rules cannot judge).
	ReasonRuntimeValidation = "RuntimeValidation"
	// ReasonConflict: an overlay of the same weight sets the same price or
	// capacity resource on an option this one selects.
	ReasonConflict = "Conflict"
)

// Annotations on a NodeClaim whose instance types were chosen with an
// overlaid price or capacity.
const (
	PriceOverlayAppliedAnnotationKey    = GroupName + "/price-overlay-applied"
	CapacityOverlayAppliedAnnotationKey = GroupName + "/capacity-overlay-applied"
)

// GetCondition returns the condition of the given type, or nil.
func (in *NodeOverlay) GetCondition(conditionType string) *metav1.Condition {
	return meta.FindStatusCondition(in.Status.Conditions, conditionType)
}

// SetCondition records c on the status, stamped with the overlay's
// generation; an empty reason becomes the condition type. It reports
// whether anything changed.
func (in *NodeOverlay) SetCondition(c metav1.Condition) bool {
	c.ObservedGeneration = in.Generation
	return conditions.Set(&in.Status.Conditions, c)
}

// WeightOrZero is the overlay's weight, 0 when unset.
func (in *NodeOverlay) WeightOrZero() int32 {
	if in.Spec.Weight == nil {
		return 0
	}
	return *in.Spec.Weight
}
