package bootstrap_test

import (
	"testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

func TestKubeletSettableLabels(t *testing.T) {
	tests := []struct {
		key      string
		settable bool
	}{
		// Outside the kubernetes.io and k8s.io namespaces: the kubelet's.
		{"managed-by", true},
		{"karpenter.sh/nodepool", true},
		{"karpenter.sh/capacity-type", true},
		{"karpenter.k8s.aws/instance-family", true},
		{"example.com/team", true},
		{"notkubernetes.io/x", true},
		// The well-known kubelet labels.
		{"kubernetes.io/hostname", true},
		{"kubernetes.io/arch", true},
		{"kubernetes.io/os", true},
		{"beta.kubernetes.io/arch", true},
		{"beta.kubernetes.io/os", true},
		{"beta.kubernetes.io/instance-type", true},
		{"node.kubernetes.io/instance-type", true},
		{"topology.kubernetes.io/zone", true},
		{"topology.kubernetes.io/region", true},
		{"failure-domain.beta.kubernetes.io/zone", true},
		{"failure-domain.beta.kubernetes.io/region", true},
		// The kubelet's namespaces, and their subdomains.
		{"kubelet.kubernetes.io/anything", true},
		{"node.kubernetes.io/anything", true},
		{"foo.node.kubernetes.io/x", true},
		{"foo.kubelet.kubernetes.io/x", true},
		// Everything else in kubernetes.io / k8s.io is a controller's.
		{"kubernetes.io/custom", false},
		{"node-role.kubernetes.io/worker", false},
		{"topology.kubernetes.io/other", false},
		{"k8s.io/x", false},
		{"foo.k8s.io/x", false},
		{"karpenter.k8s.io/x", false},
		// NodeRestriction's own namespace never.
		{"node-restriction.kubernetes.io/ok", false},
		{"foo.node-restriction.kubernetes.io/ok", false},
	}
	all := map[string]string{}
	for _, tt := range tests {
		all[tt.key] = "v"
		if got := bootstrap.IsKubeletSettableLabel(tt.key); got != tt.settable {
			t.Errorf("IsKubeletSettableLabel(%q) = %v, want %v", tt.key, got, tt.settable)
		}
	}
	settable, controllerOnly := bootstrap.KubeletSettableLabels(all)
	if len(settable)+len(controllerOnly) != len(all) {
		t.Fatalf("split lost labels: %d + %d != %d", len(settable), len(controllerOnly), len(all))
	}
	for _, tt := range tests {
		if _, ok := settable[tt.key]; ok != tt.settable {
			t.Errorf("KubeletSettableLabels put %q in settable = %v, want %v", tt.key, ok, tt.settable)
		}
	}
}
