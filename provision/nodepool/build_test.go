package nodepool

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

func opt(name, zone, arch string) *packing.Option {
	return &packing.Option{InstanceType: name, Zone: zone, Labels: map[string]string{
		v1.LabelInstanceTypeStable: name, v1.LabelTopologyZone: zone, v1.LabelArchStable: arch, "karpenter.k8s.aws/instance-cpu": "4"}}
}

func TestLaunchable(t *testing.T) {
	class := &ec2v1.EC2NodeClass{Status: ec2v1.EC2NodeClassStatus{
		Subnets: []ec2v1.Subnet{{ID: "subnet-a", Zone: "us-east-1a"}},
		AMIs: []ec2v1.AMI{{ID: "ami-1", Requirements: []v1.NodeSelectorRequirement{
			{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}}}}},
	}}
	got := launchable([]*packing.Option{
		opt("m5.large", "us-east-1a", "amd64"),
		opt("m5.large", "us-east-1b", "amd64"),  // no subnet in the zone
		opt("m6g.large", "us-east-1a", "arm64"), // no arm64 image
	}, class)
	if len(got) != 1 || got[0].InstanceType != "m5.large" || got[0].Zone != "us-east-1a" {
		t.Errorf("launchable = %v, want only m5.large in us-east-1a", got)
	}
}

func TestPoolLabels(t *testing.T) {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	np.Spec.Template.Labels = map[string]string{"managed-by": "karpenter"}
	np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
		{Key: "team", Operator: v1.NodeSelectorOpIn, Values: []string{"scan"}},
		{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}},
	}
	got := poolLabels(np, []*packing.Option{opt("m5.large", "us-east-1a", "amd64")})
	want := map[string]string{"managed-by": "karpenter", "team": "scan", karpv1.NodePoolLabelKey: "default"}
	if len(got) != len(want) {
		t.Fatalf("poolLabels = %v, want %v (arch is the offering's, not the pool's)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestRequirementsSelector(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"karpenter.k8s.aws/instance-cpu": "4"}}}
	for _, tc := range []struct {
		op    v1.NodeSelectorOperator
		value string
		match bool
	}{
		{karpv1.NodeSelectorOpGte, "4", true},
		{karpv1.NodeSelectorOpGte, "5", false},
		{karpv1.NodeSelectorOpLte, "4", true},
		{karpv1.NodeSelectorOpLte, "3", false},
		{v1.NodeSelectorOpGt, "4", false},
	} {
		sel, err := requirementsSelector([]karpv1.NodeSelectorRequirementWithMinValues{{Key: "karpenter.k8s.aws/instance-cpu", Operator: tc.op, Values: []string{tc.value}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Match(node); got != tc.match {
			t.Errorf("instance-cpu=4 %s %s: match %v, want %v", tc.op, tc.value, got, tc.match)
		}
	}
	if _, err := requirementsSelector([]karpv1.NodeSelectorRequirementWithMinValues{{Key: "k", Operator: karpv1.NodeSelectorOpGte, Values: []string{"x"}}}); err == nil {
		t.Error("Gte with a non-integer must be an error")
	}
}

// TestPausedPoolOffersNothing: a NodePool whose nodes did not register
// (NodeRegistrationHealthy=False, NodesDidNotRegister, for its generation)
// offers nothing and says why; after an edit (a new generation) it
// provisions again.
func TestPausedPoolOffersNothing(t *testing.T) {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "paused", Generation: 2}}
	np.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeNodeRegistrationHealthy, Status: metav1.ConditionFalse,
		Reason: launchhealth.ReasonNodesDidNotRegister, Message: "3 nodes in a row were launched and did not register"})
	s := &Source{}
	pool := s.build(np, nil, nil, nil)
	if !strings.Contains(pool.Unavailable, "its launches are paused: 3 nodes in a row") || len(pool.Options) != 0 {
		t.Errorf("paused pool: unavailable %q, %d options", pool.Unavailable, len(pool.Options))
	}
	np.Generation = 3 // edited since the pause
	if paused, _ := launchhealth.Paused(np); paused {
		t.Error("an edited pool is still paused")
	}
}
