package interruption_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/testutil"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/interruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// queueName is the interruption queue, named after the cluster as the
// CloudFormation template names it.
const queueName = nct.ClusterName

// TestInterruption runs the real operator with the interruption controller
// against moto's SQS and EC2 and a real apiserver: each kind of message
// about a spot node, a message about an instance that is not ours, and
// messages that are no event at all.
func TestInterruption(t *testing.T) {
	e := nct.Start(t)
	client := sqs.NewFromConfig(e.Moto.AWSConfig())
	q, err := client.CreateQueue(e.Ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName)})
	if err != nil {
		t.Fatal(err)
	}
	op := e.StartOperator(t, nct.OperatorOptions{InterruptionQueue: queueName})
	e.CreatePool(t, nct.Pool{Name: "spot", Labels: map[string]string{"managed-by": "karpenter"}, Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		nct.Req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeSpot, karpv1.CapacityTypeOnDemand),
	}})
	h := &harness{e: e, op: op, sqs: client, url: aws.ToString(q.QueueUrl)}

	for _, tc := range []struct {
		name, body, event string
		// offeringGone: the claim's spot offering is marked unavailable.
		offeringGone bool
		kind         string
	}{
		{name: "spot interruption warning", body: spotWarning, event: "SpotInterrupted", offeringGone: true, kind: "spot_interrupted"},
		{name: "AWS Health scheduled change", body: scheduledChange, event: "InstanceUnhealthy", kind: "scheduled_change"},
		{name: "stopping", body: stateChange("stopping"), event: "InstanceStopping", kind: "instance_stopped"},
		{name: "stopped", body: stateChange("stopped"), event: "InstanceStopping", kind: "instance_stopped"},
		{name: "shutting-down", body: stateChange("shutting-down"), event: "InstanceTerminating", kind: "instance_terminated"},
		{name: "terminated", body: stateChange("terminated"), event: "InstanceTerminating", kind: "instance_terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) { h.interrupted(t, tc.body, tc.event, tc.kind, tc.offeringGone) })
	}
	t.Run("rebalance recommendation", h.rebalance)
	t.Run("unknown instance", h.unknownInstance)
	t.Run("malformed", h.malformed)
}

type harness struct {
	e   *nct.Env
	op  *nct.Operator
	sqs *sqs.Client
	url string
}

// spotNode launches a claim of the spot pool through the operator and
// registers its Node, with a pod bound to it; it returns the initialized
// claim and the instance id.
func (h *harness) spotNode(t *testing.T) (*karpv1.NodeClaim, string, *v1.Pod) {
	t.Helper()
	e := h.e
	nc := h.op.CreateClaim(t, e, "spot", "m5.large", "m5.xlarge", "c5.large", "c5.xlarge")
	nc = e.WaitLaunched(t, nc.Name)
	if ct := nc.Labels[karpv1.CapacityTypeLabelKey]; ct != karpv1.CapacityTypeSpot {
		t.Fatalf("claim launched as %q, want spot", ct)
	}
	_, id, err := ec2.ParseProviderID(nc.Status.ProviderID)
	if err != nil {
		t.Fatal(err)
	}
	e.RegisterNode(t, nc.Name, nil)
	e.SetNodeReady(t, nc.Name, true)
	nc = e.WaitClaim(t, nc.Name, "initialized", func(nc *karpv1.NodeClaim) bool {
		return karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeInitialized)
	})
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-" + nc.Name, Namespace: "default"},
		Spec:       v1.PodSpec{NodeName: nc.Status.NodeName, Containers: []v1.Container{{Name: "c", Image: "scan-worker"}}},
	}
	pod, err = e.Kube.CoreV1().Pods("default").Create(e.Ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = v1.PodRunning
	if _, err := e.Kube.CoreV1().Pods("default").UpdateStatus(e.Ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return nc, id, pod
}

// interrupted: the message names the claim's instance; the claim is marked
// Interrupted and deleted, its Node tainted and drained (the pod evicted),
// and once the pod is gone the Node, the instance and the claim go.
func (h *harness) interrupted(t *testing.T, body, event, kind string, offeringGone bool) {
	e := h.e
	nc, id, pod := h.spotNode(t)
	before := counters(t, kind)
	h.send(t, fmt.Sprintf(body, id))

	// The pod is evicted: it is terminating, and stays so (no kubelet
	// here) until this test removes it, which holds the drain.
	nct.Eventually(t, 30*time.Second, "the pod evicted", func() bool {
		p, err := e.Kube.CoreV1().Pods(pod.Namespace).Get(e.Ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.DeletionTimestamp != nil
	})
	got := e.Claim(t, nc.Name)
	if got.DeletionTimestamp == nil {
		t.Error("claim not deleted")
	}
	c := got.GetCondition(karpv1.ConditionTypeDisruptionReason)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != interruption.ReasonInterrupted || !strings.Contains(c.Message, id) {
		t.Errorf("DisruptionReason condition %+v, want True/Interrupted naming %s", c, id)
	}
	if !nct.HasTaint(e.Node(t, nc.Name).Spec.Taints, karpv1.DisruptedTaintKey, v1.TaintEffectNoSchedule) {
		t.Error("node not tainted karpenter.sh/disrupted:NoSchedule")
	}
	for _, reason := range []string{event, "TerminatingOnInterruption"} {
		for _, kind := range []string{"NodeClaim", "Node"} {
			if note := env.WaitEvent(t, e.Kube, kind, nc.Name, reason, id, 30*time.Second); note == "" {
				t.Errorf("no %s event on the %s", reason, kind)
			}
		}
	}

	// What a kubelet does once the container stopped.
	if err := e.Kube.CoreV1().Pods(pod.Namespace).Delete(e.Ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	e.WaitClaimGone(t, nc.Name, 60*time.Second)
	if _, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, nc.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node still there: %v", err)
	}
	for _, inst := range e.ClaimInstances(t, nc.Name) {
		if !nct.Gone(inst.State) {
			t.Errorf("instance %s is %s after its claim went", inst.ID, inst.State)
		}
	}

	it, zone := nc.Labels[v1.LabelInstanceTypeStable], nc.Labels[v1.LabelTopologyZone]
	if offered := h.offered(it, zone, karpv1.CapacityTypeSpot); offered == offeringGone {
		t.Errorf("spot %s in %s offered: %v, want %v", it, zone, offered, !offeringGone)
	}
	h.drained(t)
	after := counters(t, kind)
	want := counterSet{received: 1, deleted: 1, disrupted: 1, queued: 1}
	if d := after.minus(before); d != want {
		t.Errorf("metrics moved by %+v, want %+v", d, want)
	}
}

// rebalance: an event on the claim and its Node, a count; nothing else.
func (h *harness) rebalance(t *testing.T) {
	e := h.e
	nc, id, pod := h.spotNode(t)
	before := counters(t, "rebalance_recommendation")
	h.send(t, fmt.Sprintf(rebalance, id))
	for _, kind := range []string{"NodeClaim", "Node"} {
		env.WaitEvent(t, e.Kube, kind, nc.Name, "SpotRebalanceRecommendation", id, 30*time.Second)
	}
	h.drained(t)
	if d := counters(t, "rebalance_recommendation").minus(before); d != (counterSet{received: 1, deleted: 1, queued: 1}) {
		t.Errorf("metrics moved by %+v", d)
	}
	if got := e.Claim(t, nc.Name); got.DeletionTimestamp != nil || got.GetCondition(karpv1.ConditionTypeDisruptionReason) != nil {
		t.Errorf("claim disrupted on a rebalance recommendation: %+v", got.Status.Conditions)
	}
	if nct.HasTaint(e.Node(t, nc.Name).Spec.Taints, karpv1.DisruptedTaintKey, v1.TaintEffectNoSchedule) {
		t.Error("node tainted on a rebalance recommendation")
	}
	if p, err := e.Kube.CoreV1().Pods(pod.Namespace).Get(e.Ctx, pod.Name, metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("pod evicted on a rebalance recommendation: %v", err)
	}
	if !h.offered(nc.Labels[v1.LabelInstanceTypeStable], nc.Labels[v1.LabelTopologyZone], karpv1.CapacityTypeSpot) {
		t.Error("offering marked unavailable on a rebalance recommendation")
	}
}

// unknownInstance: a warning for an instance no claim owns is counted and
// deleted, and no claim is touched.
func (h *harness) unknownInstance(t *testing.T) {
	claims := h.claimNames(t)
	before := counters(t, "spot_interrupted")
	unknown := unknownCount(t, "spot_interrupted")
	h.send(t, fmt.Sprintf(spotWarning, "i-0123456789abcdef0"))
	h.drained(t)
	if d := counters(t, "spot_interrupted").minus(before); d != (counterSet{received: 1, deleted: 1, queued: 1}) {
		t.Errorf("metrics moved by %+v", d)
	}
	if got := unknownCount(t, "spot_interrupted") - unknown; got != 1 {
		t.Errorf("unknown-instance messages counted %v, want 1", got)
	}
	if got := h.claimNames(t); !slices.Equal(got, claims) {
		t.Errorf("claims %v, want %v untouched", got, claims)
	}
}

// malformed: bodies that are no event are counted, deleted, and the
// controller goes on with the next message.
func (h *harness) malformed(t *testing.T) {
	before := counters(t, "malformed")
	bodies := []string{
		"not json at all",
		`{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","version":"0","detail":{"instance-id":42}}`,
		`{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","version":"0","detail":{"instance-id":"node-1"}}`,
		`{"Type":"Notification","Message":"an SNS envelope"}`,
	}
	for _, b := range bodies {
		h.send(t, b)
	}
	h.drained(t)
	d := counters(t, "malformed").minus(before)
	if d.received != len(bodies) || d.deleted != len(bodies) || d.disrupted != 0 || d.queued != 0 {
		t.Errorf("metrics moved by %+v, want %d malformed received and deleted", d, len(bodies))
	}
	// Still polling: a well-formed message after them is handled.
	unknown := unknownCount(t, "instance_terminated")
	h.send(t, fmt.Sprintf(stateChange("terminated"), "i-0fedcba9876543210"))
	h.drained(t)
	if got := unknownCount(t, "instance_terminated") - unknown; got != 1 {
		t.Errorf("the message after the malformed ones was not handled (unknown count moved by %v)", got)
	}
}

func (h *harness) send(t *testing.T, body string) {
	t.Helper()
	if _, err := h.sqs.SendMessage(h.e.Ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.url), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
}

// drained waits until the queue holds no message, visible or in flight.
func (h *harness) drained(t *testing.T) {
	t.Helper()
	nct.Eventually(t, 30*time.Second, "the interruption queue empty", func() bool {
		out, err := h.sqs.GetQueueAttributes(h.e.Ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(h.url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			return false
		}
		return out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)] == "0" &&
			out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)] == "0"
	})
}

// offered reports whether the spot pool still offers the offering.
func (h *harness) offered(instanceType, zone, capacityType string) bool {
	for _, p := range h.op.Source.Pools() {
		if p.Name != "spot" {
			continue
		}
		for _, o := range p.Options {
			if o.InstanceType == instanceType && o.Zone == zone && o.CapacityType == capacityType {
				return true
			}
		}
	}
	return false
}

func (h *harness) claimNames(t *testing.T) []string {
	t.Helper()
	list, err := h.e.Karp.KarpenterV1().NodeClaims().List(h.e.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, nc := range list.Items {
		out = append(out, nc.Name+fmt.Sprint(nc.DeletionTimestamp != nil))
	}
	slices.Sort(out)
	return out
}

// counterSet is the interruption metrics that one message moves.
type counterSet struct{ received, deleted, disrupted, queued int }

func (a counterSet) minus(b counterSet) counterSet {
	return counterSet{a.received - b.received, a.deleted - b.deleted, a.disrupted - b.disrupted, a.queued - b.queued}
}

func counters(t *testing.T, kind string) counterSet {
	t.Helper()
	received, err1 := testutil.GetCounterMetricValue(metrics.InterruptionReceivedMessages.WithLabelValues(kind))
	deleted, err2 := testutil.GetCounterMetricValue(metrics.InterruptionDeletedMessages)
	disrupted, err3 := testutil.GetCounterMetricValue(metrics.NodeClaimsDisrupted.WithLabelValues("interruption", "spot"))
	queued, err4 := testutil.GetHistogramMetricCount(metrics.InterruptionMessageQueueDuration.ObserverMetric)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return counterSet{int(received), int(deleted), int(disrupted), int(queued)}
}

func unknownCount(t *testing.T, kind string) float64 {
	t.Helper()
	v, err := testutil.GetCounterMetricValue(metrics.InterruptionUnknownInstanceMessages.WithLabelValues(kind))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// EventBridge events as AWS sends them (the EC2 and AWS Health user
// guides' examples); %[1]s is the instance id.
const (
	spotWarning = `{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Spot Instance Interruption Warning",` +
		`"source":"aws.ec2","account":"123456789012","time":"2026-03-02T10:15:30Z","region":"us-east-1",` +
		`"resources":["arn:aws:ec2:us-east-1:123456789012:instance/%[1]s"],"detail":{"instance-id":"%[1]s","instance-action":"terminate"}}`
	rebalance = `{"version":"0","id":"26e7c7a9-6aa7-4bd1-b8a2-4aa1c5f2f0b0","detail-type":"EC2 Instance Rebalance Recommendation",` +
		`"source":"aws.ec2","account":"123456789012","time":"2026-03-02T10:14:00Z","region":"us-east-1",` +
		`"resources":["arn:aws:ec2:us-east-1:123456789012:instance/%[1]s"],"detail":{"instance-id":"%[1]s"}}`
	scheduledChange = `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"AWS Health Event","source":"aws.health",` +
		`"account":"123456789012","time":"2026-03-02T10:00:00Z","region":"us-east-1","resources":["%[1]s"],` +
		`"detail":{"eventArn":"arn:aws:health:us-east-1::event/EC2/EC2_INSTANCE_RETIREMENT_SCHEDULED/EC2_INSTANCE_RETIREMENT_SCHEDULED_123",` +
		`"service":"EC2","eventTypeCode":"EC2_INSTANCE_RETIREMENT_SCHEDULED","eventTypeCategory":"scheduledChange",` +
		`"startTime":"Mon, 09 Mar 2026 10:00:00 GMT","affectedEntities":[{"entityValue":"%[1]s"}]}}`
)

func stateChange(state string) string {
	return `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1603","detail-type":"EC2 Instance State-change Notification",` +
		`"source":"aws.ec2","account":"123456789012","time":"2026-03-02T10:20:00Z","region":"us-east-1",` +
		`"resources":["arn:aws:ec2:us-east-1:123456789012:instance/%[1]s"],"detail":{"instance-id":"%[1]s","state":"` + state + `"}}`
}
