// Package register adds the API group versions of provision/apis to a
// runtime.Scheme, the same way for each of them.
package register

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// SchemeBuilder adds types, and the meta/v1 types every group version
// serves (ListOptions, WatchEvent, ...), to a scheme under gv.
func SchemeBuilder(gv schema.GroupVersion, types ...runtime.Object) runtime.SchemeBuilder {
	return runtime.NewSchemeBuilder(func(scheme *runtime.Scheme) error {
		scheme.AddKnownTypes(gv, types...)
		metav1.AddToGroupVersion(scheme, gv)
		return nil
	})
}
