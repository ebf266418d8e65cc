package nodepool

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

func opt(name, zone, arch string) *packing.Option {
	return &packing.Option{InstanceType: name, Zone: zone, Labels: map[string]string{
		v1.LabelInstanceTypeStable: name, v1.LabelTopologyZone: zone, v1.LabelArchStable: arch, "karpenter.k8s.aws/instance-cpu": "4"}}
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
