package packing

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

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
		sel, err := KarpenterSelector([]karpv1.NodeSelectorRequirementWithMinValues{{Key: "karpenter.k8s.aws/instance-cpu", Operator: tc.op, Values: []string{tc.value}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Match(node); got != tc.match {
			t.Errorf("instance-cpu=4 %s %s: match %v, want %v", tc.op, tc.value, got, tc.match)
		}
	}
	if _, err := KarpenterSelector([]karpv1.NodeSelectorRequirementWithMinValues{{Key: "k", Operator: karpv1.NodeSelectorOpGte, Values: []string{"x"}}}); err == nil {
		t.Error("Gte with a non-integer must be an error")
	}
}

// TestClaimOptions: a claim's node carries its pool's labels (its own, and
// single-valued requirements on keys no offering defines) but never its
// offering labels over another offering's; once launched, the claim keeps
// to the instance type, zone and capacity type it launched as.
func TestClaimOptions(t *testing.T) {
	nc := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		karpv1.NodePoolLabelKey: "default", "managed-by": "karpenter"}}}
	nc.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
		{Key: "team", Operator: v1.NodeSelectorOpIn, Values: []string{"scan"}},
		{Key: karpv1.NodePoolLabelKey, Operator: v1.NodeSelectorOpIn, Values: []string{"default"}},
		{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3.large", "m5.large"}},
	}
	labels := ClaimLabels(nc, catalogue)
	want := map[string]string{karpv1.NodePoolLabelKey: "default", "managed-by": "karpenter", "team": "scan"}
	if len(labels) != len(want) {
		t.Fatalf("ClaimLabels = %v, want %v", labels, want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	all := NewPoolOptions(catalogue, labels, nil)
	if got := names(ClaimOptions(all, nc)); !equal(got, []string{"t3.large/us-east-1a", "t3.large/us-east-1b", "m5.large/us-east-1a"}) {
		t.Errorf("ClaimOptions = %v", got)
	}

	// Launched: the claim carries its offering's labels.
	nc.Labels[v1.LabelInstanceTypeStable] = "t3.large"
	nc.Labels[v1.LabelTopologyZone] = "us-east-1b"
	nc.Labels[v1.LabelArchStable] = "amd64"
	all = NewPoolOptions(catalogue, ClaimLabels(nc, catalogue), nil)
	if got := names(ClaimOptions(all, nc)); !equal(got, []string{"t3.large/us-east-1b"}) {
		t.Errorf("ClaimOptions of the launched claim = %v, want t3.large/us-east-1b", got)
	}
}
