package disruption_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	karpfake "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/fake"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	"github.com/fleet-scheduler/fleet-scheduler/provision/disruption"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// BenchmarkConsolidation500Nodes times one run of the disruption loop over
// 500 managed nodes (4 CPU, 16Gi) with 20 pods each, the scheduler's
// PreFilter and Filter plugins judging every simulated placement. Writes
// are accepted but not stored, so every run sees the same cluster and
// makes the same decisions.
//
// Nodes are half full (20 pods of 100m on 4 CPU) unless said otherwise.
//
//   - budget10: the default budget (10%): the loop consolidates 50 nodes
//     and stops simulating once the budget is spent;
//   - budget100: every node is judged, each decision seen by the next;
//   - stuck: every node runs a pod with hostPort 8080, so no node's pods fit
//     elsewhere: 500 failed simulations, each running the Filter plugins on
//     all 499 other nodes (the worst case);
//   - zonespread: every pod has a zone topology spread constraint
//     (DoNotSchedule), which PreFilter computes over all 10,000 pods for
//     each placement;
//   - replace: stuck as above, but the pool offers a cheaper instance type
//     that holds a node's pods: each node is judged on the other 499, then
//     on a replacement node, until the 10% budget is spent.
func BenchmarkConsolidation500Nodes(b *testing.B) {
	for _, tc := range []struct {
		name   string
		budget string
		shape  podShape
	}{
		{"budget10", "10%", plain},
		{"budget100", "100%", plain},
		{"stuck", "100%", hostPort},
		{"zonespread", "10%", zoneSpread},
		{"replace", "10%", hostPort},
	} {
		var pools disruption.PoolSource
		if tc.name == "replace" {
			pools = benchPools{}
		}
		b.Run(tc.name, func(b *testing.B) { benchLoop(b, 500, 20, tc.shape, tc.budget, pools) })
	}
}

type podShape int

const (
	plain podShape = iota
	hostPort
	zoneSpread
)

func benchLoop(b *testing.B, nodes, podsPerNode int, shape podShape, budget string, pools disruption.PoolSource) {
	// The loop logs every decision; keep the benchmark's output to figures.
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logr.Discard()))
	defer cancel()
	kubeObjs, karpObjs := benchCluster(nodes, podsPerNode, shape, budget)
	kube := kubefake.NewClientset(kubeObjs...)
	karp := karpfake.NewSimpleClientset(karpObjs...)
	var decisions int
	karp.PrependReactor("update", "nodeclaims", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, a.(clienttesting.UpdateAction).GetObject(), nil
	})
	karp.PrependReactor("delete", "nodeclaims", func(clienttesting.Action) (bool, runtime.Object, error) {
		decisions++
		return true, nil, nil
	})
	// A replacement: counted, not stored; nor is the old node's taint.
	karp.PrependReactor("create", "nodeclaims", func(a clienttesting.Action) (bool, runtime.Object, error) {
		decisions++
		return true, a.(clienttesting.CreateAction).GetObject(), nil
	})
	kube.PrependReactor("update", "nodes", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, a.(clienttesting.UpdateAction).GetObject(), nil
	})
	kubeInf := informers.NewSharedInformerFactory(kube, 0)
	karpInf := externalversions.NewSharedInformerFactory(karp, 0)
	d, err := disruption.New(ctx, disruption.Options{Karpenter: karp, Kube: kube, KubeInformers: kubeInf, KarpenterInformers: karpInf,
		Recorder: &events.FakeRecorder{}, Pools: pools})
	if err != nil {
		b.Fatal(err)
	}
	kubeInf.Start(ctx.Done())
	karpInf.Start(ctx.Done())
	kubeInf.WaitForCacheSync(ctx.Done())
	karpInf.WaitForCacheSync(ctx.Done())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		decisions = 0
		d.ForgetDeletions()
		if err := d.Run(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/loop")
	b.ReportMetric(float64(decisions), "disrupted/loop")
}

// benchCluster is one pool, nodes initialized an hour ago, and pods of a
// ReplicaSet bound to them.
func benchCluster(nodes, podsPerNode int, shape podShape, budget string) ([]runtime.Object, []runtime.Object) {
	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", UID: "pool"},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{Spec: karpv1.NodeClaimTemplateSpec{
				NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
			}},
			Disruption: karpv1.Disruption{ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized,
				ConsolidateAfter: karpv1.MustParseNillableDuration("30s"), Budgets: []karpv1.Budget{{Nodes: budget}}},
		},
	}
	karpObjs := []runtime.Object{np}
	var kubeObjs []runtime.Object
	hourAgo := metav1.NewTime(time.Now().Add(-time.Hour))
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("16Gi"), v1.ResourcePods: resource.MustParse("110")}
	owner := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr.To(true)}
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("bench-%03d", i)
		labels := map[string]string{karpv1.NodePoolLabelKey: "bench", v1.LabelHostname: name, v1.LabelTopologyZone: fmt.Sprintf("us-east-1%c", 'a'+i%3),
			v1.LabelInstanceTypeStable: "m5.xlarge", karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand}
		nc := &karpv1.NodeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("claim-" + name), Labels: labels, CreationTimestamp: hourAgo},
			Status:     karpv1.NodeClaimStatus{NodeName: name},
		}
		for _, ct := range []string{karpv1.ConditionTypeLaunched, karpv1.ConditionTypeRegistered, karpv1.ConditionTypeInitialized} {
			nc.Status.Conditions = append(nc.Status.Conditions, metav1.Condition{Type: ct, Status: metav1.ConditionTrue, Reason: ct, LastTransitionTime: hourAgo})
		}
		karpObjs = append(karpObjs, nc)
		kubeObjs = append(kubeObjs, &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: v1.NodeStatus{Capacity: rl, Allocatable: rl,
				Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}},
		})
		for j := 0; j < podsPerNode; j++ {
			pod := &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%02d", name, j), Namespace: "default", UID: types.UID(fmt.Sprintf("pod-%s-%d", name, j)),
					Labels: map[string]string{"app": "web"}, OwnerReferences: []metav1.OwnerReference{owner}},
				Spec: v1.PodSpec{NodeName: name, Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
					v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("256Mi")}}}}},
				Status: v1.PodStatus{Phase: v1.PodRunning},
			}
			switch {
			case shape == hostPort && j == 0:
				// The largest pod, so it is placed first and fails first.
				pod.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: v1.ProtocolTCP}}
				pod.Spec.Containers[0].Resources.Requests[v1.ResourceCPU] = resource.MustParse("200m")
			case shape == zoneSpread:
				pod.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: v1.LabelTopologyZone,
					WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
			}
			kubeObjs = append(kubeObjs, pod)
		}
	}
	return kubeObjs, karpObjs
}

// benchPools offers the bench nodes' m5.xlarge and a cheaper c6a.xlarge
// (4 CPU, 8Gi) that holds one node's 20 pods, in each zone.
type benchPools struct{}

func (benchPools) Pools() []*packing.Pool {
	var options []*packing.Option
	for _, zone := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		for _, it := range []struct {
			name  string
			mem   string
			price float64
		}{{"m5.xlarge", "16Gi", 0.192}, {"c6a.xlarge", "8Gi", 0.153}} {
			rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse(it.mem), v1.ResourcePods: resource.MustParse("110")}
			options = append(options, &packing.Option{InstanceType: it.name, Zone: zone, CapacityType: karpv1.CapacityTypeOnDemand, Price: it.price,
				Labels:   map[string]string{v1.LabelInstanceTypeStable: it.name, v1.LabelTopologyZone: zone, karpv1.CapacityTypeLabelKey: karpv1.CapacityTypeOnDemand},
				Capacity: rl, Allocatable: rl})
		}
	}
	labels := map[string]string{karpv1.NodePoolLabelKey: "bench"}
	return []*packing.Pool{{Name: "bench", Labels: labels, Options: packing.NewPoolOptions(options, labels, nil), DaemonRequests: &framework.Resource{}}}
}
