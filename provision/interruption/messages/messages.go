// Package messages reads the EventBridge events an interruption queue
// carries: EC2 Spot Instance Interruption Warning, EC2 Instance Rebalance
// Recommendation, AWS Health Event (EC2 scheduled changes) and EC2 Instance
// State-change Notification. It only parses; what to do about a message is
// the interruption controller's business.
package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kind is what a message means for the instances it names. The values are
// the message_type label of karpenter_interruption_received_messages_total,
// Karpenter's own.
type Kind string

// The kinds of message.
const (
	SpotInterruption        Kind = "spot_interrupted"
	RebalanceRecommendation Kind = "rebalance_recommendation"
	ScheduledChange         Kind = "scheduled_change"
	InstanceStopped         Kind = "instance_stopped"
	InstanceTerminated      Kind = "instance_terminated"
	// NoOp is a well-formed event that asks for nothing: another source or
	// detail type, a Health event of another service or category, a state
	// change to pending or running.
	NoOp Kind = "no_op"
)

// EventBridge sources and detail types of the events acted on.
const (
	SourceEC2    = "aws.ec2"
	SourceHealth = "aws.health"

	DetailTypeSpotInterruption = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance        = "EC2 Instance Rebalance Recommendation"
	DetailTypeHealth           = "AWS Health Event"
	DetailTypeStateChange      = "EC2 Instance State-change Notification"
)

// Message is one event as the controller needs it.
type Message struct {
	Kind Kind
	// ID is the event's id (not the SQS message id).
	ID         string
	Source     string
	DetailType string
	// Time is when the event happened; zero when the event does not say.
	Time time.Time
	// InstanceIDs are the EC2 instances the event is about.
	InstanceIDs []string
	// Detail says in a few words what the event reports, for events and
	// logs: "instance-action terminate", "state stopping", ...
	Detail string
}

// envelope is the part of every EventBridge event the parser reads first.
type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

// Parse reads one message body. An error means the body is not an
// EventBridge event, or is one of the kinds acted on whose detail cannot be
// read (no or a bad instance id, fields of the wrong type): the caller
// should count it, log it and delete it. Events of other kinds parse to
// NoOp.
func Parse(body string) (Message, error) {
	var env envelope
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return Message{}, fmt.Errorf("not a JSON EventBridge event: %w", err)
	}
	if dec.More() {
		return Message{}, fmt.Errorf("not a JSON EventBridge event: data after the object")
	}
	if env.Source == "" || env.DetailType == "" {
		return Message{}, fmt.Errorf("not an EventBridge event: it has no %s", missing(env))
	}
	msg := Message{Kind: NoOp, ID: env.ID, Source: env.Source, DetailType: env.DetailType}
	if t, err := time.Parse(time.RFC3339, env.Time); err == nil {
		msg.Time = t
	}
	// Every event of these types is version 0 (EventBridge's schema
	// registry: aws.ec2@EC2SpotInstanceInterruptionWarning and friends).
	if env.Version != "0" {
		msg.Detail = fmt.Sprintf("event version %q", env.Version)
		return msg, nil
	}
	var err error
	switch {
	case env.Source == SourceEC2 && env.DetailType == DetailTypeSpotInterruption:
		err = parseSpot(&msg, env.Detail)
	case env.Source == SourceEC2 && env.DetailType == DetailTypeRebalance:
		err = parseRebalance(&msg, env.Detail)
	case env.Source == SourceHealth && env.DetailType == DetailTypeHealth:
		err = parseHealth(&msg, env.Detail)
	case env.Source == SourceEC2 && env.DetailType == DetailTypeStateChange:
		err = parseStateChange(&msg, env.Detail)
	}
	if err != nil {
		return Message{}, fmt.Errorf("%s event %s: %w", env.DetailType, env.ID, err)
	}
	return msg, nil
}

func missing(env envelope) string {
	var m []string
	if env.Source == "" {
		m = append(m, `"source"`)
	}
	if env.DetailType == "" {
		m = append(m, `"detail-type"`)
	}
	return strings.Join(m, " or ")
}

// instanceIDPattern is an EC2 instance id: i- and 8 or 17 hex digits.
var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// IsInstanceID reports whether s is an EC2 instance id.
func IsInstanceID(s string) bool { return instanceIDPattern.MatchString(s) }

func decodeDetail(raw json.RawMessage, into any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fmt.Errorf(`it has no "detail"`)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf(`reading "detail": %w`, err)
	}
	return nil
}

func instanceID(id string) ([]string, error) {
	switch {
	case id == "":
		return nil, fmt.Errorf(`"detail.instance-id" is missing`)
	case !IsInstanceID(id):
		return nil, fmt.Errorf(`"detail.instance-id" %q is not an EC2 instance id`, id)
	}
	return []string{id}, nil
}
