// Package conditions holds what the API types and their controllers share
// about status conditions: setting one, Ready summed up from dependents, and
// FieldsNotActedOn listing what is accepted but not acted on yet.
package conditions

import (
	"strings"

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

// TypeFieldsNotActedOn is True when an object sets Karpenter v1 fields that
// fleet-scheduler accepts but does not act on yet; its message lists them.
// Nothing is ignored silently.
const TypeFieldsNotActedOn = "FieldsNotActedOn"

// Ready is the condition of type readyType with the status summed up from
// the dependents: reason Ready when True, else NotReady with the
// dependents' messages.
func Ready(readyType string, status metav1.ConditionStatus, messages []string) metav1.Condition {
	if status == metav1.ConditionTrue {
		return metav1.Condition{Type: readyType, Status: status, Reason: "Ready"}
	}
	return metav1.Condition{Type: readyType, Status: status, Reason: "NotReady", Message: strings.Join(messages, "; ")}
}

// FieldsNotActedOn is the FieldsNotActedOn condition for the set fields
// that are not acted on: False when there are none.
func FieldsNotActedOn(fields []string) metav1.Condition {
	if len(fields) == 0 {
		return metav1.Condition{Type: TypeFieldsNotActedOn, Status: metav1.ConditionFalse, Reason: "AllFieldsActedOn"}
	}
	return metav1.Condition{Type: TypeFieldsNotActedOn, Status: metav1.ConditionTrue, Reason: "FieldsNotActedOn",
		Message: "accepted but not acted on by fleet-scheduler: " + strings.Join(fields, ", ")}
}
