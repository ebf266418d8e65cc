package metrics

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/testutil"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
)

func TestNodePoolCollector(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, p := range []*karpv1.NodePool{{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec:       karpv1.NodePoolSpec{Limits: karpv1.Limits{corev1.ResourceCPU: resource.MustParse("100"), corev1.ResourceMemory: resource.MustParse("400Gi")}},
		Status: karpv1.NodePoolStatus{Resources: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"), "nodes": resource.MustParse("2"),
		}},
	}, {
		// No limits: usage only, no limit series to divide by.
		ObjectMeta: metav1.ObjectMeta{Name: "unlimited"},
		Status:     karpv1.NodePoolStatus{Resources: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
	}} {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	c := &nodePoolCollector{pools: karplisters.NewNodePoolLister(idx)}
	want := `# HELP karpenter_nodepools_limit [ALPHA] Limits specified on the nodepool that restrict the quantity of resources provisioned, by nodepool and resource type.
# TYPE karpenter_nodepools_limit gauge
karpenter_nodepools_limit{nodepool="default",resource_type="cpu"} 100
karpenter_nodepools_limit{nodepool="default",resource_type="memory"} 4.294967296e+11
# HELP karpenter_nodepools_usage [ALPHA] The amount of resources that have been provisioned for a nodepool, by nodepool and resource type (cpu in cores, memory in bytes).
# TYPE karpenter_nodepools_usage gauge
karpenter_nodepools_usage{nodepool="default",resource_type="cpu"} 8
karpenter_nodepools_usage{nodepool="default",resource_type="memory"} 3.4359738368e+10
karpenter_nodepools_usage{nodepool="default",resource_type="nodes"} 2
karpenter_nodepools_usage{nodepool="unlimited",resource_type="cpu"} 0.5
`
	if err := testutil.CustomCollectAndCompare(c, strings.NewReader(want), NodePoolUsageName, NodePoolLimitName); err != nil {
		t.Error(err)
	}
}
