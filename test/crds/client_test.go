package crds

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
)

// testClientInformer drives the generated clientset, informer and lister: a
// NodePool is created, seen by the informer, updated (spec and status),
// listed, watched and deleted.
func (c *cluster) testClientInformer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	pools := c.typed.KarpenterV1().NodePools()

	factory := externalversions.NewSharedInformerFactory(c.typed, 0)
	informer := factory.Karpenter().V1().NodePools()
	events := make(chan string, 16)
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if obj.(*karpv1.NodePool).Name == "typed" {
				events <- "add"
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			old, np := oldObj.(*karpv1.NodePool), obj.(*karpv1.NodePool)
			if np.Name == "typed" && *old.Spec.Weight != 20 && *np.Spec.Weight == 20 {
				events <- "update"
			}
		},
		DeleteFunc: func(obj any) {
			if np, ok := obj.(*karpv1.NodePool); ok && np.Name == "typed" {
				events <- "delete"
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() {
		cancel() // stops the informers; Shutdown waits for them
		factory.Shutdown()
	}()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache for %v did not sync", typ)
		}
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("informer event %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %q event from the informer", want)
		}
	}

	w, err := pools.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=typed"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "typed"},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{
				ObjectMeta: karpv1.ObjectMeta{Labels: map[string]string{"managed-by": "karpenter"}},
				Spec: karpv1.NodeClaimTemplateSpec{
					Requirements: []karpv1.NodeSelectorRequirementWithMinValues{
						{Key: karpv1.CapacityTypeLabelKey, Operator: "In", Values: []string{karpv1.CapacityTypeOnDemand}},
					},
					NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
					ExpireAfter:  karpv1.MustParseNillableDuration("720h"),
				},
			},
			Disruption: karpv1.Disruption{
				ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized,
				ConsolidateAfter:    karpv1.MustParseNillableDuration("30s"),
			},
			Weight: ptr(int32(10)),
		},
	}
	created, err := pools.Create(ctx, np, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect("add")
	if got := created.Spec.Template.Spec.ExpireAfter.String(); got != "720h" {
		t.Errorf("expireAfter read back as %q", got)
	}
	if got := created.Spec.Disruption.ConsolidateAfter.String(); got != "30s" {
		t.Errorf("consolidateAfter read back as %q", got)
	}

	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Added || ev.Object.(*karpv1.NodePool).Name != "typed" {
			t.Errorf("watch event %v %T, want ADDED NodePool", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}

	created.Spec.Weight = ptr(int32(20))
	updated, err := pools.Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expect("update")

	updated.SetCondition(metav1.Condition{Type: karpv1.ConditionTypeReady, Status: metav1.ConditionTrue})
	updated.Status.Nodes = ptr(int64(2))
	withStatus, err := pools.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cond := withStatus.GetCondition(karpv1.ConditionTypeReady); cond == nil || cond.Reason != karpv1.ConditionTypeReady || cond.ObservedGeneration != withStatus.Generation {
		t.Errorf("Ready condition = %+v", cond)
	}

	lister := informer.Lister()
	err = waitFor(ctx, func() bool {
		got, err := lister.Get("typed")
		return err == nil && got.Status.Nodes != nil && *got.Status.Nodes == 2
	})
	if err != nil {
		t.Fatalf("lister never saw the status update: %v", err)
	}
	listed, err := lister.List(labels.Everything())
	if err != nil || len(listed) == 0 {
		t.Fatalf("lister list: %v %v", listed, err)
	}
	list, err := pools.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, item := range list.Items {
		found = found || item.Name == "typed"
	}
	if !found {
		t.Errorf("clientset list has no NodePool typed")
	}

	if err := pools.Delete(ctx, "typed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("delete")
}

func waitFor(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
