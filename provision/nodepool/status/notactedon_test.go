package status

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// examplePool is the object in manifests/examples/nodepool.yaml.
func examplePool(t *testing.T) *karpv1.NodePool {
	t.Helper()
	np := &karpv1.NodePool{}
	env.ReadExample(t, "nodepool.yaml", np)
	return np
}

func TestNotActedOn(t *testing.T) {
	never := karpv1.MustParseNillableDuration("Never")
	for _, tc := range []struct {
		name   string
		modify func(*karpv1.NodePoolSpec)
		want   []string
	}{
		{"example", func(*karpv1.NodePoolSpec) {}, nil},
		{"nothing to do", func(s *karpv1.NodePoolSpec) {
			s.Disruption.ConsolidateAfter, s.Template.Spec.ExpireAfter = never, never
			s.Disruption.Budgets = []karpv1.Budget{{Nodes: "10%"}}
		}, nil},
		{"everything", func(s *karpv1.NodePoolSpec) {
			s.Disruption.ConsolidateAfter, s.Template.Spec.ExpireAfter = never, never
			s.Template.Spec.Requirements[2].MinValues = ptr.To(2)
			s.Template.Spec.Requirements[3].MinValues = ptr.To(1)
			s.Replicas = ptr.To[int64](3)
			s.Limits = karpv1.Limits{"nodes": resource.MustParse("5")}
			s.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyBalanced
			s.Disruption.Budgets = []karpv1.Budget{{Nodes: "0", Reasons: []karpv1.DisruptionReason{karpv1.DisruptionReasonDrifted}}}
			s.Template.Spec.TerminationGracePeriod = &metav1.Duration{}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := examplePool(t).Spec
			tc.modify(&spec)
			if got := NotActedOn(&spec); !slices.Equal(got, tc.want) {
				t.Errorf("NotActedOn =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
