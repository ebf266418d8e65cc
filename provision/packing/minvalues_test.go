package packing

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestMinValuesUnmet(t *testing.T) {
	opts := NewPoolOptions(catalogue, nil, nil) // t3.large in two zones, m5.large, m5.xlarge
	for _, tc := range []struct {
		name string
		min  MinValues
		want string
	}{
		{name: "none", min: nil},
		{name: "three types", min: MinValues{v1.LabelInstanceTypeStable: 3}},
		{name: "four types", min: MinValues{v1.LabelInstanceTypeStable: 4}, want: "node.kubernetes.io/instance-type has 3 value(s) left, minValues is 4"},
		{name: "two zones", min: MinValues{v1.LabelTopologyZone: 2, v1.LabelInstanceTypeStable: 1}},
		{name: "a key no option has", min: MinValues{"karpenter.k8s.aws/instance-gpu-name": 1}, want: "instance-gpu-name has 0 value(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.min.Unmet(opts)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Unmet = %q, want %q", got, tc.want)
			}
		})
	}
	if got := (MinValues{v1.LabelTopologyZone: 2}).Unmet(PinnedTo(opts, v1.LabelTopologyZone, "us-east-1a")); got == "" {
		t.Error("pinned to one zone, two zones cannot be met")
	}
}
