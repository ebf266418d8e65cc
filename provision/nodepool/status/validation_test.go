package status

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

func TestValidate(t *testing.T) {
	req := func(key string, op v1.NodeSelectorOperator, values ...string) karpv1.NodeSelectorRequirementWithMinValues {
		return karpv1.NodeSelectorRequirementWithMinValues{Key: key, Operator: op, Values: values}
	}
	taint := func(key, value string, effect v1.TaintEffect) v1.Taint {
		return v1.Taint{Key: key, Value: value, Effect: effect}
	}
	for _, tc := range []struct {
		name          string
		labels        map[string]string
		taints        []v1.Taint
		startupTaints []v1.Taint
		reqs          []karpv1.NodeSelectorRequirementWithMinValues
		want          []string // substrings of the errors, in order; none means valid
	}{
		{name: "example pool", labels: map[string]string{"managed-by": "karpenter"}, reqs: []karpv1.NodeSelectorRequirementWithMinValues{
			req("kubernetes.io/arch", v1.NodeSelectorOpIn, "amd64"),
			req("karpenter.sh/capacity-type", v1.NodeSelectorOpIn, "on-demand"),
			req("karpenter.k8s.aws/instance-family", v1.NodeSelectorOpIn, "t3", "t3a"),
			req("karpenter.k8s.aws/instance-cpu", karpv1.NodeSelectorOpGte, "2"),
			req("node.kubernetes.io/instance-type", v1.NodeSelectorOpExists),
			req("example.com/team", v1.NodeSelectorOpNotIn, "a"),
		}},
		{name: "allowed subdomains", labels: map[string]string{"node.kubernetes.io/role": "x", "node-restriction.kubernetes.io/pool": "y"}},
		{name: "restricted label domain", labels: map[string]string{"kubernetes.io/team": "a", "example.k8s.io/x": "b"},
			want: []string{`labels[example.k8s.io/x]: Forbidden`, `labels[kubernetes.io/team]: Forbidden`}},
		{name: "nodepool label", labels: map[string]string{"karpenter.sh/nodepool": "x"}, want: []string{"labels[karpenter.sh/nodepool]: Forbidden"}},
		{name: "bad label value", labels: map[string]string{"team": "has space"}, want: []string{`labels[team]: Invalid value: "has space"`}},
		{name: "lookalike domain is not restricted", labels: map[string]string{"notk8s.io/x": "y"}},
		{name: "duplicate taint across taints and startupTaints",
			taints:        []v1.Taint{taint("dedicated", "gpu", v1.TaintEffectNoSchedule)},
			startupTaints: []v1.Taint{taint("dedicated", "other", v1.TaintEffectNoSchedule), taint("dedicated", "", v1.TaintEffectNoExecute)},
			want:          []string{`spec.template.spec.startupTaints[0]: Duplicate value: "dedicated:NoSchedule"`}},
		{name: "bad taint", taints: []v1.Taint{taint("a b", "c/d", "Sometimes")},
			want: []string{"taints[0].key: Invalid value", "taints[0].value: Invalid value", `taints[0].effect: Unsupported value: "Sometimes"`}},
		{name: "requirement key not qualified", reqs: []karpv1.NodeSelectorRequirementWithMinValues{req("a/b/c", v1.NodeSelectorOpExists)},
			want: []string{"requirements[0].key: Invalid value"}},
		{name: "requirement key restricted", reqs: []karpv1.NodeSelectorRequirementWithMinValues{
			req("kubernetes.io/hostname", v1.NodeSelectorOpExists), req("karpenter.sh/nodepool", v1.NodeSelectorOpIn, "x"),
			req("karpenter.k8s.aws/made-up", v1.NodeSelectorOpExists)},
			want: []string{"requirements[0].key: Forbidden", "requirements[1].key: Forbidden", "requirements[2].key: Forbidden"}},
		{name: "deprecated key is normalized", reqs: []karpv1.NodeSelectorRequirementWithMinValues{req("beta.kubernetes.io/arch", v1.NodeSelectorOpIn, "amd64")}},
		{name: "unknown capacity types", reqs: []karpv1.NodeSelectorRequirementWithMinValues{req("karpenter.sh/capacity-type", v1.NodeSelectorOpIn, "cheap")},
			want: []string{`requirements[0].values: Unsupported value: ["cheap"]`}},
		{name: "one known capacity type is enough", reqs: []karpv1.NodeSelectorRequirementWithMinValues{req("karpenter.sh/capacity-type", v1.NodeSelectorOpIn, "cheap", "spot")}},
		{name: "minValues over known values", reqs: []karpv1.NodeSelectorRequirementWithMinValues{{
			Key: "karpenter.sh/capacity-type", Operator: v1.NodeSelectorOpIn, Values: []string{"cheap", "spot"}, MinValues: ptr.To(2)}},
			want: []string{"only 1 known values, fewer than minValues (2)"}},
		{name: "operators", reqs: []karpv1.NodeSelectorRequirementWithMinValues{
			req("example.com/a", "Near", "x"), req("example.com/b", v1.NodeSelectorOpIn), req("example.com/c", v1.NodeSelectorOpExists, "x"),
			req("example.com/d", v1.NodeSelectorOpGt, "x"), req("example.com/e", karpv1.NodeSelectorOpLte, "1", "2")},
			want: []string{`requirements[0].operator: Unsupported value: "Near"`, "requirements[1].values: Required", "requirements[2].values: Forbidden",
				"requirements[3].values[0]: Invalid value", "requirements[4].values: Invalid value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			np := &karpv1.NodePool{}
			np.Spec.Template.Labels = tc.labels
			np.Spec.Template.Spec.Taints, np.Spec.Template.Spec.StartupTaints = tc.taints, tc.startupTaints
			np.Spec.Template.Spec.Requirements = tc.reqs
			errs := Validate(np)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tc.want), errs)
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tc.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, e.Error(), tc.want[i])
				}
			}
		})
	}
}
