package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/internal/register"
)

// GroupName is the API group of NodePool and NodeClaim.
const GroupName = "karpenter.sh"

// SchemeGroupVersion is karpenter.sh/v1.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

// Kinds and resources.
const (
	NodePoolKind      = "NodePool"
	NodeClaimKind     = "NodeClaim"
	NodePoolResource  = "nodepools"
	NodeClaimResource = "nodeclaims"
)

var (
	// SchemeBuilder collects the functions that add this group to a scheme.
	SchemeBuilder = register.SchemeBuilder(SchemeGroupVersion,
		&NodePool{}, &NodePoolList{},
		&NodeClaim{}, &NodeClaimList{},
	)
	// AddToScheme adds NodePool and NodeClaim to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kind returns a group-qualified kind.
func Kind(kind string) schema.GroupKind { return SchemeGroupVersion.WithKind(kind).GroupKind() }

// Resource returns a group-qualified resource.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}
