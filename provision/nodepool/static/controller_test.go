package static_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool/static"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	"github.com/fleet-scheduler/fleet-scheduler/test/disruptiontest"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// onePool offers t3.large for the pool "fixed" (as nodepool.Source would).
type onePool struct{}

func (onePool) Pools() []*packing.Pool {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("8Gi"), v1.ResourcePods: resource.MustParse("35")}
	labels := map[string]string{karpv1.NodePoolLabelKey: "fixed"}
	return []*packing.Pool{{Name: "fixed", Static: true, Labels: labels, DaemonRequests: &framework.Resource{},
		Options: packing.NewPoolOptions([]*packing.Option{{InstanceType: "t3.large", Zone: "us-east-1a", CapacityType: "on-demand", Price: 0.0832,
			Labels:   map[string]string{v1.LabelInstanceTypeStable: "t3.large", v1.LabelTopologyZone: "us-east-1a", karpv1.CapacityTypeLabelKey: "on-demand"},
			Capacity: rl, Allocatable: rl}}, labels, nil)}}
}

// TestStaticNodePool runs the controller against a real apiserver: claims
// follow spec.replicas up and down, within limits.nodes.
func TestStaticNodePool(t *testing.T) {
	c := disruptiontest.Start(t)
	ctx, karp := c.Ctx, c.Karp
	pools, claims := c.KarpInformers.Karpenter().V1().NodePools(), c.KarpInformers.Karpenter().V1().NodeClaims()
	ctl := controller.New(static.Name, &static.Controller{Karpenter: karp, NodePools: pools.Lister(), NodeClaims: claims.Lister(),
		Pools: onePool{}, Recorder: c.Recorder})
	if err := static.Register(ctl, pools.Informer(), claims.Informer()); err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	go ctl.Run(ctx, 2)

	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "fixed"}, Spec: karpv1.NodePoolSpec{
		Replicas: ptr.To[int64](3),
		Limits:   karpv1.Limits{packing.ResourceNodes: resource.MustParse("4")},
		Template: karpv1.NodeClaimTemplate{Spec: karpv1.NodeClaimTemplateSpec{
			Requirements: []karpv1.NodeSelectorRequirementWithMinValues{{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3.large"}}},
			NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
		}},
	}}
	if _, err := karp.KarpenterV1().NodePools().Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	live := func() (int, int) {
		list, err := karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{LabelSelector: labels.Set{karpv1.NodePoolLabelKey: "fixed"}.String()})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, nc := range list.Items {
			if nc.DeletionTimestamp == nil {
				n++
			}
		}
		return n, len(list.Items)
	}
	settle := func(what string, want, total int) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
			n, all := live()
			return n == want && all == total, nil
		})
		if err != nil {
			n, all := live()
			t.Fatalf("%s: %d live claims of %d, want %d of %d", what, n, all, want, total)
		}
		// And it stays so: no claim made twice from a stale cache.
		time.Sleep(time.Second)
		if n, all := live(); n != want || all != total {
			t.Fatalf("%s: then %d live claims of %d, want %d of %d", what, n, all, want, total)
		}
	}
	settle("replicas 3", 3, 3)
	list, _ := karp.KarpenterV1().NodeClaims().List(ctx, metav1.ListOptions{})
	nc := list.Items[0]
	if nc.Spec.NodeClassRef == nil || nc.Spec.NodeClassRef.Name != "default" || len(nc.Finalizers) == 0 ||
		fmt.Sprint(requirement(&nc, v1.LabelInstanceTypeStable)) != "[t3.large]" {
		t.Errorf("claim not made from the pool's template and options: %+v", nc.Spec)
	}

	// Down to 1: two claims deleted. Nothing terminates them here, so they
	// stay, deleting, and count against limits.nodes.
	scale(ctx, t, karp, `{"spec":{"replicas":1}}`)
	settle("replicas 1", 1, 3)

	// Up to 3: limits.nodes (4) counts the 3 claims that still exist; one
	// more fits.
	scale(ctx, t, karp, `{"spec":{"replicas":3}}`)
	settle("replicas 3 within limits.nodes 4", 2, 4)
	ev := env.WaitEvent(t, c.Kube, "NodePool", "fixed", "LimitReached", "", 20*time.Second)
	if !strings.Contains(ev, "limits.nodes (4) counts 4 claim(s)") {
		t.Errorf("LimitReached = %q", ev)
	}
}

func scale(ctx context.Context, t *testing.T, karp versioned.Interface, patch string) {
	t.Helper()
	if _, err := karp.KarpenterV1().NodePools().Patch(ctx, "fixed", "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func requirement(nc *karpv1.NodeClaim, key string) []string {
	for _, r := range nc.Spec.Requirements {
		if r.Key == key {
			return r.Values
		}
	}
	return nil
}
