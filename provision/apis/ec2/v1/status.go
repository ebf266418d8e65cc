package v1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

// EC2NodeClassStatus is what the selectors of an EC2NodeClass resolved to.
type EC2NodeClassStatus struct {
	// Subnets the subnet selector terms match.
	// +optional
	Subnets []Subnet `json:"subnets,omitempty"`
	// SecurityGroups the security group selector terms match.
	// +optional
	SecurityGroups []SecurityGroup `json:"securityGroups,omitempty"`
	// CapacityReservations the capacity reservation selector terms match.
	// +optional
	CapacityReservations []CapacityReservation `json:"capacityReservations,omitempty"`
	// AMIs the image selector terms match, with the instance requirements
	// each image fits (architecture, GPU, ...).
	// +optional
	AMIs []AMI `json:"amis,omitempty"`
	// InstanceProfile is the instance profile the nodes launch with.
	// +optional
	InstanceProfile string `json:"instanceProfile,omitempty"`
	// Conditions of the class; Ready sums them up.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Subnet is a resolved subnet.
type Subnet struct {
	// ID of the subnet.
	// +required
	ID string `json:"id"`
	// Zone (availability zone name) of the subnet.
	// +required
	Zone string `json:"zone"`
	// ZoneID of the subnet's availability zone.
	// +optional
	ZoneID string `json:"zoneID,omitempty"`
}

// SecurityGroup is a resolved security group.
type SecurityGroup struct {
	// ID of the security group.
	// +required
	ID string `json:"id"`
	// Name of the security group.
	// +optional
	Name string `json:"name,omitempty"`
}

// AMI is a resolved image.
type AMI struct {
	// ID of the image.
	// +required
	ID string `json:"id"`
	// Deprecated is true when the image is past its deprecation time.
	// +optional
	Deprecated bool `json:"deprecated,omitempty"`
	// Name of the image.
	// +optional
	Name string `json:"name,omitempty"`
	// Requirements an instance type must meet to boot the image.
	// +required
	Requirements []corev1.NodeSelectorRequirement `json:"requirements"`
}

// CapacityReservation is a resolved capacity reservation.
type CapacityReservation struct {
	// AvailabilityZone of the reservation.
	// +required
	AvailabilityZone string `json:"availabilityZone"`
	// EndTime is when the reservation ends, if it does.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// ID of the reservation.
	// +kubebuilder:validation:Pattern:="^cr-[0-9a-z]+$"
	// +required
	ID string `json:"id"`
	// InstanceMatchCriteria of the reservation: open or targeted.
	// +kubebuilder:validation:Enum:={open,targeted}
	// +required
	InstanceMatchCriteria string `json:"instanceMatchCriteria"`
	// InstanceType the reservation holds.
	// +required
	InstanceType string `json:"instanceType"`
	// OwnerID is the AWS account that owns the reservation.
	// +kubebuilder:validation:Pattern:="^[0-9]{12}$"
	// +required
	OwnerID string `json:"ownerID"`
	// ReservationType is default or capacity-block.
	// +kubebuilder:validation:Enum:={default,capacity-block}
	// +kubebuilder:default=default
	// +optional
	ReservationType CapacityReservationType `json:"reservationType"`
	// Interruptible is true for a reservation EC2 may reclaim.
	// +optional
	Interruptible bool `json:"interruptible"`
	// State is active, or expiring for a capacity block about to end.
	// +kubebuilder:validation:Enum:={active,expiring}
	// +kubebuilder:default=active
	// +optional
	State CapacityReservationState `json:"state"`
}

// CapacityReservationType is the kind of a capacity reservation.
type CapacityReservationType string

// Capacity reservation types.
const (
	CapacityReservationTypeDefault       CapacityReservationType = "default"
	CapacityReservationTypeCapacityBlock CapacityReservationType = "capacity-block"
)

// CapacityReservationState is the state of a capacity reservation.
type CapacityReservationState string

// Capacity reservation states.
const (
	CapacityReservationStateActive   CapacityReservationState = "active"
	CapacityReservationStateExpiring CapacityReservationState = "expiring"
)

// Condition types of an EC2NodeClass. Ready is True when the others (all
// but CapacityReservationsReady unless reservations are in use) are.
const (
	ConditionTypeReady                     = "Ready"
	ConditionTypeSubnetsReady              = "SubnetsReady"
	ConditionTypeSecurityGroupsReady       = "SecurityGroupsReady"
	ConditionTypeAMIsReady                 = "AMIsReady"
	ConditionTypeInstanceProfileReady      = "InstanceProfileReady"
	ConditionTypeCapacityReservationsReady = "CapacityReservationsReady"
	ConditionTypeValidationSucceeded       = "ValidationSucceeded"
	ConditionTypePlacementGroupReady       = "PlacementGroupReady"
	// ConditionTypeBootstrapTokenReady is fleet-scheduler's: whether the
	// kubeadm join credentials nodes of the class get (a token in SSM)
	// are accepted by the API server. Karpenter on EKS has no such token.
	ConditionTypeBootstrapTokenReady = "BootstrapTokenReady"
)

// GetCondition returns the condition of the given type, or nil.
func (in *EC2NodeClass) GetCondition(conditionType string) *metav1.Condition {
	return meta.FindStatusCondition(in.Status.Conditions, conditionType)
}

// SetCondition records c on the status, stamped with the class's generation;
// an empty reason is filled with the condition type, as the API requires
// one. It reports whether anything changed.
func (in *EC2NodeClass) SetCondition(c metav1.Condition) bool {
	c.ObservedGeneration = in.Generation
	return conditions.Set(&in.Status.Conditions, c)
}
