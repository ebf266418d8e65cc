package status

import (
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

// ConditionTypeFieldsNotActedOn is True when the pool sets Karpenter v1
// fields that fleet-scheduler accepts but does not act on yet; its message
// lists them. Nothing is ignored silently.
const ConditionTypeFieldsNotActedOn = conditions.TypeFieldsNotActedOn

// NotActedOn lists the fields of spec that are set but not acted on, one
// line each. Every NodePool field is acted on now; a field accepted before
// it is acted on gets a line here until it is.
func NotActedOn(spec *karpv1.NodePoolSpec) []string {
	_ = spec
	return nil
}
