package messages

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// Events as EventBridge delivers them (the examples of the EC2 and AWS
// Health user guides, with this test's instance ids).
const (
	spotWarning = `{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Spot Instance Interruption Warning",
"source":"aws.ec2","account":"123456789012","time":"2026-03-02T10:15:30Z","region":"us-east-1",
"resources":["arn:aws:ec2:us-east-1b:instance/i-1234567890abcdef0"],
"detail":{"instance-id":"i-1234567890abcdef0","instance-action":"terminate"}}`
	rebalance = `{"version":"0","id":"26e7c7a9-6aa7-4bd1-b8a2-4aa1c5f2f0b0","detail-type":"EC2 Instance Rebalance Recommendation",
"source":"aws.ec2","account":"123456789012","time":"2026-03-02T10:14:00Z","region":"us-east-1",
"resources":["arn:aws:ec2:us-east-1b:instance/i-1234567890abcdef0"],"detail":{"instance-id":"i-1234567890abcdef0"}}`
	healthScheduled = `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"AWS Health Event","source":"aws.health",
"account":"123456789012","time":"2026-03-02T10:00:00Z","region":"us-east-1","resources":["i-1234567890abcdef0","i-0abcdef1234567890"],
"detail":{"eventArn":"arn:aws:health:us-east-1::event/EC2/EC2_INSTANCE_RETIREMENT_SCHEDULED/EC2_INSTANCE_RETIREMENT_SCHEDULED_123",
"service":"EC2","eventTypeCode":"EC2_INSTANCE_RETIREMENT_SCHEDULED","eventTypeCategory":"scheduledChange",
"startTime":"Mon, 09 Mar 2026 10:00:00 GMT","endTime":"Mon, 09 Mar 2026 12:00:00 GMT",
"eventDescription":[{"language":"en_US","latestDescription":"EC2 has detected degradation of the underlying hardware."}],
"affectedEntities":[{"entityValue":"i-1234567890abcdef0"},{"entityValue":"i-0abcdef1234567890"},{"entityValue":"vol-0123456789abcdef0"}]}}`
	stateChange = `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"EC2 Instance State-change Notification",
"source":"aws.ec2","account":"123456789012","time":"2026-03-02T10:20:00Z","region":"us-east-1",
"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"],
"detail":{"instance-id":"i-1234567890abcdef0","state":"%s"}}`
)

func state(s string) string { return strings.Replace(stateChange, "%s", s, 1) }

func TestParse(t *testing.T) {
	const id = "i-1234567890abcdef0"
	for _, tc := range []struct {
		name   string
		body   string
		kind   Kind
		ids    []string
		detail string
	}{
		{name: "spot interruption warning", body: spotWarning, kind: SpotInterruption, ids: []string{id}, detail: "instance-action terminate"},
		{name: "rebalance recommendation", body: rebalance, kind: RebalanceRecommendation, ids: []string{id}},
		{name: "health scheduled change", body: healthScheduled, kind: ScheduledChange, ids: []string{id, "i-0abcdef1234567890"},
			detail: "EC2_INSTANCE_RETIREMENT_SCHEDULED starting Mon, 09 Mar 2026 10:00:00 GMT"},
		{name: "stopping", body: state("stopping"), kind: InstanceStopped, ids: []string{id}, detail: "state stopping"},
		{name: "stopped", body: state("stopped"), kind: InstanceStopped, ids: []string{id}},
		{name: "shutting-down", body: state("shutting-down"), kind: InstanceTerminated, ids: []string{id}},
		{name: "terminated", body: state("terminated"), kind: InstanceTerminated, ids: []string{id}},
		{name: "state in capitals", body: state("Terminated"), kind: InstanceTerminated, ids: []string{id}},
		{name: "running: nothing to do", body: state("running"), kind: NoOp},
		{name: "pending: nothing to do", body: state("pending"), kind: NoOp},
		{name: "health event of another service", body: strings.Replace(healthScheduled, `"service":"EC2"`, `"service":"RDS"`, 1), kind: NoOp},
		{name: "health event that only informs", body: strings.Replace(healthScheduled, `"eventTypeCategory":"scheduledChange"`, `"eventTypeCategory":"accountNotification"`, 1), kind: NoOp},
		{name: "another detail type", body: strings.Replace(spotWarning, "EC2 Spot Instance Interruption Warning", "EC2 Spot Instance Request Fulfillment", 1), kind: NoOp},
		{name: "another source", body: strings.Replace(spotWarning, `"source":"aws.ec2"`, `"source":"custom.app"`, 1), kind: NoOp},
		{name: "another event version", body: strings.Replace(spotWarning, `"version":"0"`, `"version":"1"`, 1), kind: NoOp},
		{name: "short instance id", body: strings.Replace(spotWarning, `"instance-id":"i-1234567890abcdef0"`, `"instance-id":"i-12345678"`, 1),
			kind: SpotInterruption, ids: []string{"i-12345678"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Parse(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Kind != tc.kind || !slices.Equal(msg.InstanceIDs, tc.ids) {
				t.Errorf("got %s %v, want %s %v", msg.Kind, msg.InstanceIDs, tc.kind, tc.ids)
			}
			if tc.detail != "" && msg.Detail != tc.detail {
				t.Errorf("detail %q, want %q", msg.Detail, tc.detail)
			}
			if msg.ID == "" || msg.Source == "" || msg.DetailType == "" {
				t.Errorf("envelope not read: %+v", msg)
			}
		})
	}
	msg, _ := Parse(spotWarning)
	if want := time.Date(2026, 3, 2, 10, 15, 30, 0, time.UTC); !msg.Time.Equal(want) {
		t.Errorf("time %v, want %v", msg.Time, want)
	}
	// A bad time is no reason to drop a warning.
	msg, err := Parse(strings.Replace(spotWarning, "2026-03-02T10:15:30Z", "yesterday", 1))
	if err != nil || !msg.Time.IsZero() || msg.Kind != SpotInterruption {
		t.Errorf("bad time: %+v, %v", msg, err)
	}
}

func TestParseMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{name: "empty", body: "", want: "not a JSON EventBridge event"},
		{name: "not JSON", body: "hello", want: "not a JSON EventBridge event"},
		{name: "truncated", body: spotWarning[:80], want: "not a JSON EventBridge event"},
		{name: "JSON array", body: `[1,2]`, want: "not a JSON EventBridge event"},
		{name: "two objects", body: spotWarning + spotWarning, want: "data after the object"},
		{name: "no envelope", body: `{"instance-id":"i-1234567890abcdef0"}`, want: `it has no "source" or "detail-type"`},
		{name: "no detail", body: `{"version":"0","id":"x","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning"}`, want: `it has no "detail"`},
		{name: "detail of the wrong type", body: strings.Replace(spotWarning, `{"instance-id":"i-1234567890abcdef0","instance-action":"terminate"}`, `"i-1234567890abcdef0"`, 1), want: `reading "detail"`},
		{name: "instance id of the wrong type", body: strings.Replace(rebalance, `"i-1234567890abcdef0"}`, `42}`, 1), want: `reading "detail"`},
		{name: "no instance id", body: strings.Replace(spotWarning, `"instance-id":"i-1234567890abcdef0",`, "", 1), want: `"detail.instance-id" is missing`},
		{name: "not an instance id", body: strings.Replace(state("terminated"), `"instance-id":"i-1234567890abcdef0"`, `"instance-id":"node-1"`, 1), want: `"detail.instance-id" "node-1" is not an EC2 instance id`},
		{name: "no state", body: strings.Replace(state(""), `,"state":""`, "", 1), want: `"detail.state" is missing`},
		{name: "scheduled change for no instance", body: strings.NewReplacer(`{"entityValue":"i-1234567890abcdef0"},`, "", `{"entityValue":"i-0abcdef1234567890"},`, "").Replace(healthScheduled),
			want: `"detail.affectedEntities" names no EC2 instance`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := Parse(tc.body)
			if err == nil {
				t.Fatalf("parsed as %+v", msg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// FuzzParse: whatever the queue holds, Parse returns a message or an error,
// and a message it acts on always names well-formed instance ids.
func FuzzParse(f *testing.F) {
	for _, s := range []string{spotWarning, rebalance, healthScheduled, state("stopping"), "", "{}", "null", `{"source":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		msg, err := Parse(body)
		if err != nil {
			return
		}
		if msg.Kind != NoOp && len(msg.InstanceIDs) == 0 {
			t.Fatalf("%s message without instances from %q", msg.Kind, body)
		}
		for _, id := range msg.InstanceIDs {
			if !IsInstanceID(id) {
				t.Fatalf("instance id %q from %q", id, body)
			}
		}
	})
}

// BenchmarkParse: one spot warning, as the controller reads ten per poll.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(spotWarning); err != nil {
			b.Fatal(err)
		}
	}
}
