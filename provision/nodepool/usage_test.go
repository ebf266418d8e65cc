package nodepool

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// TestRemainingCountsNodes: a pool's claims count against limits.nodes,
// launched or not, and an option is one node.
func TestRemainingCountsNodes(t *testing.T) {
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	launched := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{karpv1.NodePoolLabelKey: "capped"}}}
	launched.Status.Capacity = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}
	planned := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{karpv1.NodePoolLabelKey: "capped"}}}
	planned.Spec.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")}
	other := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{karpv1.NodePoolLabelKey: "other"}}}
	for _, nc := range []*karpv1.NodeClaim{launched, planned, other} {
		if err := claims.Add(nc); err != nil {
			t.Fatal(err)
		}
	}
	s := &Source{NodeClaims: karplisters.NewNodeClaimLister(claims)}
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "capped"}}
	np.Spec.Limits = karpv1.Limits{packing.ResourceNodes: resource.MustParse("3"), v1.ResourceCPU: resource.MustParse("10")}

	left := remaining(np, s.usage()["capped"])
	if q := left[packing.ResourceNodes]; q.Value() != 1 {
		t.Errorf("nodes left = %s, want 1 (3 less the pool's 2 claims)", q.String())
	}
	if q := left[v1.ResourceCPU]; q.MilliValue() != 7500 {
		t.Errorf("cpu left = %s, want 7500m", q.String())
	}
	opts := packing.NewPoolOptions([]*packing.Option{{InstanceType: "t3.large", Capacity: v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}}}, nil, nil)
	if got := packing.WithinLimits(opts, left); len(got) != 1 {
		t.Errorf("one node left: the option should fit")
	}
	np.Spec.Limits[packing.ResourceNodes] = resource.MustParse("2")
	if got := packing.WithinLimits(opts, remaining(np, s.usage()["capped"])); len(got) != 0 {
		t.Errorf("no node left: the option should not fit")
	}
}
