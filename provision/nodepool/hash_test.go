package nodepool

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

func hashTestPool() *karpv1.NodePool {
	return &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: karpv1.NodePoolSpec{Template: karpv1.NodeClaimTemplate{
			ObjectMeta: karpv1.ObjectMeta{Labels: map[string]string{"managed-by": "karpenter"}},
			Spec: karpv1.NodeClaimTemplateSpec{
				Taints: []v1.Taint{{Key: "a", Effect: v1.TaintEffectNoSchedule}, {Key: "b", Value: "x", Effect: v1.TaintEffectNoExecute}},
				Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
					{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3.medium", "t3.large"}},
					{Key: "karpenter.k8s.aws/instance-cpu", Operator: v1.NodeSelectorOpGt, Values: []string{"1"}},
				},
				NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
				ExpireAfter:  karpv1.MustParseNillableDuration("720h"),
			},
		}},
	}
}

func TestTemplateHash(t *testing.T) {
	base := TemplateHash(hashTestPool())
	if base == "" {
		t.Fatal("empty hash")
	}
	same := hashTestPool()
	same.Spec.Template.Spec.Taints = []v1.Taint{same.Spec.Template.Spec.Taints[1], same.Spec.Template.Spec.Taints[0]}
	same.Spec.Template.Spec.ExpireAfter = karpv1.MustParseNillableDuration("720h0m0s")
	same.Spec.Template.Spec.Requirements = nil // requirements are judged apart
	same.Spec.Weight = new(int32)
	if got := TemplateHash(same); got != base {
		t.Errorf("hash changed by taint order, duration spelling, requirements or weight: %s != %s", got, base)
	}
	for name, change := range map[string]func(*karpv1.NodePool){
		"label":      func(np *karpv1.NodePool) { np.Spec.Template.Labels["team"] = "x" },
		"annotation": func(np *karpv1.NodePool) { np.Spec.Template.Annotations = map[string]string{"a": "b"} },
		"taint":      func(np *karpv1.NodePool) { np.Spec.Template.Spec.Taints[0].Value = "v" },
		"startup": func(np *karpv1.NodePool) {
			np.Spec.Template.Spec.StartupTaints = []v1.Taint{{Key: "s", Effect: v1.TaintEffectNoSchedule}}
		},
		"node class":  func(np *karpv1.NodePool) { np.Spec.Template.Spec.NodeClassRef.Name = "other" },
		"expireAfter": func(np *karpv1.NodePool) { np.Spec.Template.Spec.ExpireAfter = karpv1.NillableDuration{} },
		"tgp": func(np *karpv1.NodePool) {
			np.Spec.Template.Spec.TerminationGracePeriod = &metav1.Duration{Duration: 1}
		},
	} {
		np := hashTestPool()
		change(np)
		if TemplateHash(np) == base {
			t.Errorf("%s: hash did not change", name)
		}
	}
}
