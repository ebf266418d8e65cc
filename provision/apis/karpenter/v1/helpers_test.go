package v1

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestLimitsExceededBy(t *testing.T) {
	limits := Limits{corev1.ResourceCPU: resource.MustParse("100"), corev1.ResourceMemory: resource.MustParse("400Gi")}
	tests := []struct {
		name  string
		usage corev1.ResourceList
		want  []corev1.ResourceName
	}{
		{"under", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("99")}, nil},
		{"at", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100")}, nil},
		{"cpu over", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100500m")}, []corev1.ResourceName{corev1.ResourceCPU}},
		{"unlimited resource", corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("64")}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := limits.ExceededBy(tc.usage)
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("ExceededBy = %v, want %v", got, tc.want)
			}
		})
	}
	if got := Limits(nil).ExceededBy(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}); got != nil {
		t.Errorf("nil limits exceeded: %v", got)
	}
}

func TestSetCondition(t *testing.T) {
	nc := &NodeClaim{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	if !nc.SetCondition(metav1.Condition{Type: ConditionTypeLaunched, Status: metav1.ConditionTrue}) {
		t.Fatal("first SetCondition reported no change")
	}
	c := nc.GetCondition(ConditionTypeLaunched)
	if c == nil || c.Reason != ConditionTypeLaunched || c.ObservedGeneration != 3 || c.LastTransitionTime.IsZero() {
		t.Fatalf("condition = %+v", c)
	}
	if nc.SetCondition(metav1.Condition{Type: ConditionTypeLaunched, Status: metav1.ConditionTrue}) {
		t.Error("setting the same condition again reported a change")
	}
	if !nc.SetCondition(metav1.Condition{Type: ConditionTypeLaunched, Status: metav1.ConditionFalse, Reason: "InsufficientCapacity", Message: "no t3.large"}) {
		t.Error("status change reported no change")
	}
	if IsConditionTrue(nc.Status.Conditions, ConditionTypeLaunched) {
		t.Error("Launched still true")
	}
	if nc.GetCondition(ConditionTypeRegistered) != nil {
		t.Error("unset condition found")
	}
}

func TestToNodeClaimCopies(t *testing.T) {
	tmpl := &NodeClaimTemplate{
		ObjectMeta: ObjectMeta{Labels: map[string]string{"managed-by": "karpenter"}},
		Spec: NodeClaimTemplateSpec{
			Requirements: []NodeSelectorRequirementWithMinValues{{Key: CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{CapacityTypeSpot}}},
			NodeClassRef: &NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
			ExpireAfter:  MustParseNillableDuration("720h"),
		},
	}
	nc := tmpl.ToNodeClaim()
	nc.Labels["extra"] = "x"
	nc.Spec.Requirements[0].Values[0] = CapacityTypeOnDemand
	nc.Spec.NodeClassRef.Name = "other"
	if len(tmpl.Labels) != 1 || tmpl.Spec.Requirements[0].Values[0] != CapacityTypeSpot || tmpl.Spec.NodeClassRef.Name != "default" {
		t.Errorf("ToNodeClaim shares memory with the template: %+v", tmpl)
	}
	if nc.Spec.ExpireAfter.String() != "720h" {
		t.Errorf("expireAfter = %s", nc.Spec.ExpireAfter)
	}
}

func TestScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{NodePoolKind, NodeClaimKind, "NodePoolList", "NodeClaimList"} {
		if !s.Recognizes(SchemeGroupVersion.WithKind(kind)) {
			t.Errorf("scheme does not know %s", kind)
		}
	}
	if got := LabelDomain(NodePoolLabelKey); got != GroupName {
		t.Errorf("LabelDomain = %q", got)
	}
	if UnregisteredNoExecuteTaint().Effect != corev1.TaintEffectNoExecute || DisruptedNoScheduleTaint().Effect != corev1.TaintEffectNoSchedule {
		t.Error("taint effects")
	}
}
