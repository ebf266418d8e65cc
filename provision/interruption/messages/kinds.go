package messages

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The detail of each kind, with EventBridge's field names
// (aws.ec2@EC2SpotInstanceInterruptionWarning, ...@EC2InstanceRebalanceRecommendation,
// aws.health@AWSHealthEvent, aws.ec2@EC2InstanceStateChangeNotification).

// instanceDetail is the part of a spot, rebalance or state-change detail
// that names its one instance.
type instanceDetail struct {
	InstanceID string `json:"instance-id"`
}

func (d *instanceDetail) instance() *instanceDetail { return d }

// decodeInstanceDetail decodes raw into d, a detail about one instance, and
// returns that instance's id.
func decodeInstanceDetail(raw json.RawMessage, d interface{ instance() *instanceDetail }) ([]string, error) {
	if err := decodeDetail(raw, d); err != nil {
		return nil, err
	}
	return instanceID(d.instance().InstanceID)
}

type spotDetail struct {
	instanceDetail
	InstanceAction string `json:"instance-action"`
}

// parseSpot: the two-minute warning; the action is terminate, stop or
// hibernate, and the instance goes either way.
func parseSpot(msg *Message, raw json.RawMessage) error {
	var d spotDetail
	ids, err := decodeInstanceDetail(raw, &d)
	if err != nil {
		return err
	}
	msg.Kind, msg.InstanceIDs = SpotInterruption, ids
	msg.Detail = "instance-action " + orUnknown(d.InstanceAction)
	return nil
}

func parseRebalance(msg *Message, raw json.RawMessage) error {
	ids, err := decodeInstanceDetail(raw, &instanceDetail{})
	if err != nil {
		return err
	}
	msg.Kind, msg.InstanceIDs, msg.Detail = RebalanceRecommendation, ids, "elevated risk of spot interruption"
	return nil
}

type healthDetail struct {
	Service           string `json:"service"`
	EventTypeCategory string `json:"eventTypeCategory"`
	EventTypeCode     string `json:"eventTypeCode"`
	StartTime         string `json:"startTime"`
	AffectedEntities  []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// Health events are acted on only for EC2's scheduled changes (instance
// retirement, system maintenance, reboots); the rest is another service's
// or only informs.
const (
	healthServiceEC2        = "EC2"
	healthCategoryScheduled = "scheduledChange"
)

func parseHealth(msg *Message, raw json.RawMessage) error {
	var d healthDetail
	if err := decodeDetail(raw, &d); err != nil {
		return err
	}
	if d.Service != healthServiceEC2 || d.EventTypeCategory != healthCategoryScheduled {
		msg.Detail = fmt.Sprintf("service %s, category %s", orUnknown(d.Service), orUnknown(d.EventTypeCategory))
		return nil
	}
	for _, e := range d.AffectedEntities {
		// Entities are instance ids for instance events; a scheduled change
		// of something else (a dedicated host, a volume) names no node.
		if IsInstanceID(e.EntityValue) {
			msg.InstanceIDs = append(msg.InstanceIDs, e.EntityValue)
		}
	}
	if len(msg.InstanceIDs) == 0 {
		return fmt.Errorf(`"detail.affectedEntities" names no EC2 instance`)
	}
	msg.Kind = ScheduledChange
	msg.Detail = orUnknown(d.EventTypeCode)
	if d.StartTime != "" {
		msg.Detail += " starting " + d.StartTime
	}
	return nil
}

type stateChangeDetail struct {
	instanceDetail
	State string `json:"state"`
}

func parseStateChange(msg *Message, raw json.RawMessage) error {
	var d stateChangeDetail
	ids, err := decodeInstanceDetail(raw, &d)
	if err != nil {
		return err
	}
	state := strings.ToLower(d.State)
	msg.Detail = "state " + orUnknown(state)
	switch state {
	case "stopping", "stopped":
		msg.Kind = InstanceStopped
	case "shutting-down", "terminated":
		msg.Kind = InstanceTerminated
	case "":
		return fmt.Errorf(`"detail.state" is missing`)
	default: // pending, running: nothing to do
		return nil
	}
	msg.InstanceIDs = ids
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(not given)"
	}
	return s
}
