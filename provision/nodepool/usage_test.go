package nodepool

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/fake"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
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

// TestUsageFollowsNodeClaimEvents: with Watch, usage follows NodeClaims as
// they are created, launched and deleted, without listing them.
func TestUsageFollowsNodeClaimEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewSimpleClientset()
	factory := externalversions.NewSharedInformerFactory(client, 0)
	informer := factory.Karpenter().V1().NodeClaims().Informer()
	s := &Source{NodeClaims: factory.Karpenter().V1().NodeClaims().Lister()}
	if err := s.Watch(informer); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	claims := client.KarpenterV1().NodeClaims()
	nc := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{karpv1.NodePoolLabelKey: "p"}}}
	nc.Spec.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m")}
	if _, err := claims.Create(ctx, nc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsage(t, s, "p", "500m", 1)
	nc.Status.Capacity = v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}
	if _, err := claims.Update(ctx, nc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsage(t, s, "p", "2", 1) // launched: its capacity, not its request, and still one node
	if err := claims.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUsage(t, s, "p", "0", 0)
}

func waitUsage(t *testing.T, s *Source, pool, cpu string, nodes int64) {
	t.Helper()
	want := resource.MustParse(cpu)
	var got v1.ResourceList
	for i := 0; i < 100; i++ {
		got = s.usage()[pool]
		q, n := got[v1.ResourceCPU], got[packing.ResourceNodes]
		if q.Cmp(want) == 0 && n.Value() == nodes {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("usage of %s = %v, want cpu %s and %d nodes", pool, got, cpu, nodes)
}
