package v1

import "github.com/fleet-scheduler/fleet-scheduler/provision/apis/spechash"

// EC2NodeClassHashVersion is the version of Hash. A NodeClaim annotated
// with another version is not judged by its hash, so changing the hash
// never rolls every node.
const EC2NodeClassHashVersion = "v1"

// Hash is the hash of what an instance is launched with and cannot change
// afterwards: the spec without its selector terms. Subnets, security
// groups, AMIs and capacity reservations are selected, resolved into the
// status and judged there; a new selector that resolves to the same things
// must not replace a node. A NodeClaim carries the hash of its class at
// launch in AnnotationEC2NodeClassHash; when the class's hash moves on,
// the claim has drifted.
func (in *EC2NodeClass) Hash() string {
	spec := in.Spec.DeepCopy()
	spec.SubnetSelectorTerms = nil
	spec.SecurityGroupSelectorTerms = nil
	spec.AMISelectorTerms = nil
	spec.CapacityReservationSelectorTerms = nil
	return spechash.Of(spec)
}
