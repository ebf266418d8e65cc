package nodeclass

import (
	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

// ConditionTypeFieldsNotActedOn is True when the class sets Karpenter v1
// fields that fleet-scheduler accepts (they round-trip) but does not act on
// yet; its message lists them. Nothing is ignored silently.
const ConditionTypeFieldsNotActedOn = conditions.TypeFieldsNotActedOn

// NotActedOn lists the set fields of spec that launching does not use.
func NotActedOn(spec *ec2v1.EC2NodeClassSpec) []string {
	var out []string
	add := func(set bool, field string) {
		if set {
			out = append(out, "spec."+field)
		}
	}
	add(len(spec.CapacityReservationSelectorTerms) > 0, "capacityReservationSelectorTerms")
	add(spec.PlacementGroupSelector != nil, "placementGroupSelector")
	add(spec.InstanceStorePolicy != nil, "instanceStorePolicy")
	add(len(spec.NetworkInterfaces) > 0, "networkInterfaces")
	add(spec.CPUOptions != nil, "cpuOptions")
	add(spec.AMIFamily != nil && *spec.AMIFamily != ec2v1.AMIFamilyCustom, "amiFamily (nodes always join with kubeadm, as with Custom)")
	return out
}
