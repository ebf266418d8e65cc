package provisioner

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestNodeOverlay: karpenter.sh/v1alpha1 NodeOverlays against the real
// apiserver (CRD validation, status) and the real scheduler running the
// Provisioner (the decision).
func TestNodeOverlay(t *testing.T) {
	s := startStack(t)
	s.run(t, "a price overlay makes the decision choose another instance type", s.testOverlayPrice)
	s.run(t, "overlays of one weight setting one price conflict", s.testOverlayConflict)
	s.run(t, "the CRD refuses what Karpenter's refuses", s.testOverlayAdmission)
}

func (s *stack) testOverlayPrice(t *testing.T) {
	// On demand, c5.large ($0.085/h) and m5.large ($0.096/h) both hold a
	// 1 cpu pod; by the catalogue's prices c5.large is chosen.
	s.createPool(poolSpec{name: "priced", labels: map[string]string{"overlay-test": "price"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "c5.large", "m5.large"),
		req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeOnDemand),
	}})
	sel := map[string]string{"overlay-test": "price"}
	s.createPod(podSpec{name: "before-overlay", cpu: "1", memory: "1Gi", nodeSelector: sel})
	before := s.launched(s.nominated("before-overlay"))
	if got := before.Labels[v1.LabelInstanceTypeStable]; got != "c5.large" {
		t.Fatalf("without an overlay the claim launched as %q, want the cheaper c5.large", got)
	}
	if first := requirementFirst(before, v1.LabelInstanceTypeStable); first != "c5.large" {
		t.Errorf("without an overlay the claim's cheapest type is %q, want c5.large", first)
	}
	if _, ok := before.Annotations[v1alpha1.PriceOverlayAppliedAnnotationKey]; ok {
		t.Errorf("annotations %v: no overlay was applied", before.Annotations)
	}

	// A Savings Plan on m5.large, in this pool only.
	s.createOverlay(&v1alpha1.NodeOverlay{ObjectMeta: metav1.ObjectMeta{Name: "m5-savings-plan"}, Spec: v1alpha1.NodeOverlaySpec{
		Requirements: []v1alpha1.NodeSelectorRequirement{
			{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"m5.large"}},
			{Key: karpv1.NodePoolLabelKey, Operator: v1.NodeSelectorOpIn, Values: []string{"priced"}},
		},
		Price: ptr.To("0.02"),
	}})
	ready := s.overlayCondition("m5-savings-plan", v1alpha1.ConditionTypeReady, metav1.ConditionTrue)
	if ready.ObservedGeneration != 1 {
		t.Errorf("Ready observedGeneration %d, want 1", ready.ObservedGeneration)
	}

	// A second pod does not fit the first node (c5.large: 1.93 cpu), so a
	// new claim is made, with the overlaid price.
	s.createPod(podSpec{name: "after-overlay", cpu: "1", memory: "1Gi", nodeSelector: sel})
	claim := s.nominated("after-overlay")
	if claim == before.Name {
		t.Fatalf("after-overlay joined %s, which has no room for it", claim)
	}
	after := s.launched(claim)
	if got := after.Labels[v1.LabelInstanceTypeStable]; got != "m5.large" {
		t.Errorf("with m5.large at $0.02/h the claim launched as %q, want m5.large", got)
	}
	if first := requirementFirst(after, v1.LabelInstanceTypeStable); first != "m5.large" {
		t.Errorf("with the overlay the claim's cheapest type is %q, want m5.large", first)
	}
	if after.Annotations[v1alpha1.PriceOverlayAppliedAnnotationKey] != "true" {
		t.Errorf("annotations %v, want %s=true", after.Annotations, v1alpha1.PriceOverlayAppliedAnnotationKey)
	}
	if _, ok := after.Annotations[v1alpha1.CapacityOverlayAppliedAnnotationKey]; ok {
		t.Errorf("annotations %v: no capacity overlay applies", after.Annotations)
	}
}

func (s *stack) testOverlayConflict(t *testing.T) {
	for _, name := range []string{"plan-a", "plan-b"} {
		s.createOverlay(&v1alpha1.NodeOverlay{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.NodeOverlaySpec{
			Requirements:    []v1alpha1.NodeSelectorRequirement{{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"c5.large"}}},
			PriceAdjustment: ptr.To("-10%"),
			Weight:          ptr.To[int32](50),
		}})
	}
	// Equal weights go in reverse name order: plan-b applies, plan-a conflicts.
	s.overlayCondition("plan-b", v1alpha1.ConditionTypeValidationSucceeded, metav1.ConditionTrue)
	c := s.overlayCondition("plan-a", v1alpha1.ConditionTypeValidationSucceeded, metav1.ConditionFalse)
	if c.Reason != v1alpha1.ReasonConflict || !strings.Contains(c.Message, `"plan-b"`) || !strings.Contains(c.Message, "c5.large") {
		t.Errorf("plan-a ValidationSucceeded %s: %s, want Conflict naming plan-b and c5.large", c.Reason, c.Message)
	}
	s.overlayCondition("plan-a", v1alpha1.ConditionTypeReady, metav1.ConditionFalse)
	env.WaitEvent(t, s.kube, "NodeOverlay", "plan-a", v1alpha1.ReasonConflict, "plan-b", 30*time.Second)

	// A higher weight ends the conflict for plan-a.
	o, err := s.karp.KarpenterV1alpha1().NodeOverlays().Get(s.ctx, "plan-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.Spec.Weight = ptr.To[int32](60)
	if _, err := s.karp.KarpenterV1alpha1().NodeOverlays().Update(s.ctx, o, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.overlayCondition("plan-a", v1alpha1.ConditionTypeReady, metav1.ConditionTrue)
}

func (s *stack) testOverlayAdmission(t *testing.T) {
	everyType := []v1alpha1.NodeSelectorRequirement{{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpExists}}
	for _, tc := range []struct {
		name string
		spec v1alpha1.NodeOverlaySpec
		want string
	}{
		{"price and adjustment", v1alpha1.NodeOverlaySpec{Requirements: everyType, Price: ptr.To("1"), PriceAdjustment: ptr.To("+1")}, "cannot set both 'price' and 'priceAdjustment'"},
		{"cpu capacity", v1alpha1.NodeOverlaySpec{Requirements: everyType, Capacity: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")}}, "invalid resource restricted"},
		{"hostname requirement", v1alpha1.NodeOverlaySpec{Requirements: []v1alpha1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpExists}}}, `label "kubernetes.io/hostname" is restricted`},
		{"adjustment below -100%", v1alpha1.NodeOverlaySpec{Requirements: everyType, PriceAdjustment: ptr.To("-150%")}, "spec.priceAdjustment"},
		{"no requirements", v1alpha1.NodeOverlaySpec{Price: ptr.To("1")}, "spec.requirements: Required value"},
	} {
		_, err := s.karp.KarpenterV1alpha1().NodeOverlays().Create(s.ctx, &v1alpha1.NodeOverlay{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: tc.spec}, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: create error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func (s *stack) createOverlay(o *v1alpha1.NodeOverlay) {
	s.t.Helper()
	if _, err := s.karp.KarpenterV1alpha1().NodeOverlays().Create(s.ctx, o, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("creating nodeoverlay %s: %v", o.Name, err)
	}
}

// overlayCondition waits until the overlay's condition has status and
// returns it.
func (s *stack) overlayCondition(name, conditionType string, status metav1.ConditionStatus) metav1.Condition {
	s.t.Helper()
	var got metav1.Condition
	s.eventually("nodeoverlay "+name+" "+conditionType+"="+string(status), func() bool {
		o, err := s.karp.KarpenterV1alpha1().NodeOverlays().Get(s.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		c := meta.FindStatusCondition(o.Status.Conditions, conditionType)
		if c == nil || c.Status != status {
			return false
		}
		got = *c
		return true
	})
	return got
}

// launched waits until the claim is Launched and returns it.
func (s *stack) launched(name string) *karpv1.NodeClaim {
	s.t.Helper()
	return s.nodeClaim(name, func(nc *karpv1.NodeClaim) bool {
		return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched)
	})
}

// requirementFirst is the first value of the claim's requirement on key:
// the cheapest, as the values are written cheapest first.
func requirementFirst(nc *karpv1.NodeClaim, key string) string {
	for _, r := range nc.Spec.Requirements {
		if r.Key == key && len(r.Values) > 0 {
			return r.Values[0]
		}
	}
	return ""
}
