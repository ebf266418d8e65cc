package v1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

// NodePoolStatus is the observed state of a NodePool.
type NodePoolStatus struct {
	// Resources is the capacity of all nodes of the pool, summed.
	// +optional
	Resources corev1.ResourceList `json:"resources,omitempty"`
	// Nodes is how many nodes belong to the pool.
	// +kubebuilder:default:=0
	// +optional
	Nodes *int64 `json:"nodes"`
	// NodeClassObservedGeneration is the generation of the node class the
	// NodeRegistrationHealthy condition was last judged against.
	// +optional
	NodeClassObservedGeneration int64 `json:"nodeClassObservedGeneration,omitempty"`
	// Conditions of the pool; Ready sums them up.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NodeClaimStatus is the observed state of a NodeClaim.
type NodeClaimStatus struct {
	// NodeName is the name of the Node this claim became.
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// ProviderID of the instance, aws:///<zone>/<instance-id>.
	// +optional
	ProviderID string `json:"providerID,omitempty"`
	// ImageID is the image (AMI) the instance runs.
	// +optional
	ImageID string `json:"imageID,omitempty"`
	// Capacity is the expected full capacity of the node.
	// +optional
	Capacity corev1.ResourceList `json:"capacity,omitempty"`
	// Allocatable is the expected allocatable capacity of the node.
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`
	// Conditions of the claim; Ready sums up Launched, Registered and
	// Initialized.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastPodEventTime is when a pod was last bound to or removed from the
	// node; consolidateAfter counts from it.
	// +optional
	LastPodEventTime metav1.Time `json:"lastPodEventTime,omitempty"`
}

// GetCondition returns the condition of the given type, or nil.
func (in *NodePool) GetCondition(conditionType string) *metav1.Condition {
	return meta.FindStatusCondition(in.Status.Conditions, conditionType)
}

// SetCondition records c on the status, stamped with the pool's generation.
// It reports whether anything changed.
func (in *NodePool) SetCondition(c metav1.Condition) bool {
	c.ObservedGeneration = in.Generation
	return SetCondition(&in.Status.Conditions, c)
}

// GetCondition returns the condition of the given type, or nil.
func (in *NodeClaim) GetCondition(conditionType string) *metav1.Condition {
	return meta.FindStatusCondition(in.Status.Conditions, conditionType)
}

// SetCondition records c on the status, stamped with the claim's generation.
// It reports whether anything changed.
func (in *NodeClaim) SetCondition(c metav1.Condition) bool {
	c.ObservedGeneration = in.Generation
	return SetCondition(&in.Status.Conditions, c)
}

// SetCondition adds or updates c in conds with
// meta.SetStatusCondition. The API requires a reason, so an empty one is
// filled with the condition type. It reports whether anything changed.
func SetCondition(conds *[]metav1.Condition, c metav1.Condition) bool {
	return conditions.Set(conds, c)
}

// IsConditionTrue reports whether the condition of the given type is True.
func IsConditionTrue(conditions []metav1.Condition, conditionType string) bool {
	return meta.IsStatusConditionTrue(conditions, conditionType)
}
