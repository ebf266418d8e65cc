package status

import (
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// ConditionTypeFieldsNotActedOn is True when the pool sets Karpenter v1
// fields that fleet-scheduler accepts but does not act on yet; its message
// lists them. Nothing is ignored silently.
const ConditionTypeFieldsNotActedOn = "FieldsNotActedOn"

// NotActedOn lists the fields of spec that are set but not acted on. One
// line per field: when a feature lands, its line goes.
func NotActedOn(spec *karpv1.NodePoolSpec) []string {
	var out []string
	add := func(set bool, field string) {
		if set {
			out = append(out, field)
		}
	}
	add(spec.Replicas != nil, "spec.replicas (static NodePools)")
	return out
}
