package v1

import (
	"k8s.io/apimachinery/pkg/runtime"
	schedv1 "k8s.io/kube-scheduler/config/v1"
)

// SchemeGroupVersion is kube-scheduler's v1 config group version: plugin args
// are decoded as part of a KubeSchedulerConfiguration, so they share it.
var SchemeGroupVersion = schedv1.SchemeGroupVersion

var (
	// SchemeBuilder collects the functions that add these types, their
	// defaults and conversions to a scheme. The generated conversion file
	// registers itself here too.
	SchemeBuilder      runtime.SchemeBuilder
	localSchemeBuilder = &SchemeBuilder
	// AddToScheme adds the v1 plugin args types to a scheme.
	AddToScheme = localSchemeBuilder.AddToScheme
)

func init() {
	// Only hand-written functions are named here; the generated ones
	// register themselves, so this compiles while they are regenerated.
	localSchemeBuilder.Register(addKnownTypes, addDefaultingFuncs)
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &ProvisionerArgs{})
	return nil
}

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}
