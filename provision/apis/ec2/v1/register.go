package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/internal/register"
)

// GroupName is the API group of EC2NodeClass.
const GroupName = "karpenter.k8s.aws"

// SchemeGroupVersion is karpenter.k8s.aws/v1.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

// Kind and resource.
const (
	EC2NodeClassKind     = "EC2NodeClass"
	EC2NodeClassResource = "ec2nodeclasses"
)

var (
	// SchemeBuilder collects the functions that add this group to a scheme.
	SchemeBuilder = register.SchemeBuilder(SchemeGroupVersion, &EC2NodeClass{}, &EC2NodeClassList{})
	// AddToScheme adds EC2NodeClass to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kind returns a group-qualified kind.
func Kind(kind string) schema.GroupKind { return SchemeGroupVersion.WithKind(kind).GroupKind() }

// Resource returns a group-qualified resource.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}
