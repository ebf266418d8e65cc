// Package conditions records the status conditions of the API types in
// provision/apis.
package conditions

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Set adds or updates c in conditions with meta.SetStatusCondition. The API
// requires a reason, so an empty one is filled with the condition type. It
// reports whether anything changed.
func Set(conditions *[]metav1.Condition, c metav1.Condition) bool {
	if c.Reason == "" {
		c.Reason = c.Type
	}
	return meta.SetStatusCondition(conditions, c)
}
