package v1

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Well-known values of the capacity-type label and of architectures.
const (
	CapacityTypeOnDemand = "on-demand"
	CapacityTypeSpot     = "spot"
	CapacityTypeReserved = "reserved"

	ArchitectureAmd64 = "amd64"
	ArchitectureArm64 = "arm64"
)

// Labels fleet-scheduler puts on NodeClaims and Nodes.
const (
	// NodePoolLabelKey names the NodePool a NodeClaim or Node belongs to.
	NodePoolLabelKey = GroupName + "/nodepool"
	// CapacityTypeLabelKey is on-demand, spot or reserved.
	CapacityTypeLabelKey = GroupName + "/capacity-type"
	// NodeRegisteredLabelKey is set to "true" on a Node once it is linked to
	// its NodeClaim.
	NodeRegisteredLabelKey = GroupName + "/registered"
	// NodeInitializedLabelKey is set to "true" on a Node once it is Ready and
	// its startup taints are gone.
	NodeInitializedLabelKey = GroupName + "/initialized"
	// NodeDoNotSyncTaintsLabelKey on a Node stops taints being copied from
	// its NodeClaim at registration.
	NodeDoNotSyncTaintsLabelKey = GroupName + "/do-not-sync-taints"
)

// Annotations.
const (
	// DoNotDisruptAnnotationKey ("true") on a pod or Node keeps the node from
	// voluntary disruption (consolidation, drift).
	DoNotDisruptAnnotationKey = GroupName + "/do-not-disrupt"
	// NodePoolHashAnnotationKey on a NodeClaim is the hash of the pool's
	// template it was made from; a different hash means drift.
	NodePoolHashAnnotationKey = GroupName + "/nodepool-hash"
	// NodePoolHashVersionAnnotationKey is the version of that hash.
	NodePoolHashVersionAnnotationKey = GroupName + "/nodepool-hash-version"
	// NodeClaimTerminationTimestampAnnotationKey is when the claim's
	// terminationGracePeriod runs out (RFC 3339).
	NodeClaimTerminationTimestampAnnotationKey = GroupName + "/nodeclaim-termination-timestamp"
	// NodeClaimMinValuesRelaxedAnnotationKey ("true"/"false") tells whether
	// minValues had to be relaxed to launch the claim.
	NodeClaimMinValuesRelaxedAnnotationKey = GroupName + "/nodeclaim-min-values-relaxed"
)

// TerminationFinalizer holds NodeClaims and Nodes until the node is drained
// and the instance is gone.
const TerminationFinalizer = GroupName + "/termination"

// NodeClaimTagKey is the EC2 tag naming the NodeClaim an instance was
// launched for. (Karpenter uses it as a tag, not as a label.)
const NodeClaimTagKey = GroupName + "/nodeclaim"

// WellKnownLabels are the node labels, besides a pool's own template labels,
// that requirements may constrain and that instance types resolve.
func WellKnownLabels() []string {
	return []string{
		NodePoolLabelKey,
		CapacityTypeLabelKey,
		corev1.LabelTopologyZone,
		corev1.LabelTopologyRegion,
		corev1.LabelInstanceTypeStable,
		corev1.LabelArchStable,
		corev1.LabelOSStable,
		corev1.LabelWindowsBuild,
	}
}

// NormalizedLabels maps deprecated label keys to the keys used in their place.
func NormalizedLabels() map[string]string {
	return map[string]string{
		corev1.LabelFailureDomainBetaZone:   corev1.LabelTopologyZone,
		corev1.LabelFailureDomainBetaRegion: corev1.LabelTopologyRegion,
		"beta.kubernetes.io/arch":           corev1.LabelArchStable,
		"beta.kubernetes.io/os":             corev1.LabelOSStable,
		corev1.LabelInstanceType:            corev1.LabelInstanceTypeStable,
	}
}

// LabelDomain returns the domain (prefix) of a label key, or "".
func LabelDomain(key string) string {
	if domain, _, ok := strings.Cut(key, "/"); ok {
		return domain
	}
	return ""
}
