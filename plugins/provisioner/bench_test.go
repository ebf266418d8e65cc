package provisioner

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	internalqueue "k8s.io/kubernetes/pkg/scheduler/backend/queue"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// staticPools serves one pool built once, the way nodepool.Source builds it.
type staticPools struct{ pools []*packing.Pool }

func (s staticPools) Pools() []*packing.Pool                      { return s.pools }
func (s staticPools) InFlight([]*packing.Pool) []packing.InFlight { return nil }

// BenchmarkPostFilter1000Pods measures PostFilter decisions for 1,000
// pending pods of mixed sizes against every instance type and offering
// moto serves, with the scheduler's default Filter plugins judging each
// claim and the scheduling queue's nominator as the ledger.
func BenchmarkPostFilter1000Pods(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	schedulermetrics.Register()
	m, err := env.StartMoto("us-east-1")
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	cat, err := catalog.New(ec2.NewEC2Client(m.AWSConfig(), ec2.RetryOptions{}), pricingProvider(b), catalog.Options{Region: "us-east-1"})
	if err != nil {
		b.Fatal(err)
	}
	if err := cat.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	options, err := (&nodepool.EC2Catalog{Catalog: cat}).Options(benchNodeClass())
	if err != nil {
		b.Fatal(err)
	}
	pool := &packing.Pool{
		Name: "default", Labels: map[string]string{"karpenter.sh/nodepool": "default"},
		Options: packing.NewPoolOptions(options, map[string]string{"karpenter.sh/nodepool": "default"}, nil), DaemonRequests: packing.Sum(),
	}
	types, _ := cat.Get(ctx)
	b.Logf("catalogue: %d instance types, %d launch options", len(types), len(pool.Options))

	pods := mixedPods(1000)
	b.ReportAllocs()
	b.ResetTimer()
	var claims int
	for i := 0; i < b.N; i++ {
		claims = runPostFilters(ctx, b, pool, pods)
	}
	elapsed := b.Elapsed()
	b.ReportMetric(float64(len(pods)*b.N)/elapsed.Seconds(), "pods/s")
	b.ReportMetric(float64(claims), "claims")
}

func runPostFilters(ctx context.Context, b *testing.B, pool *packing.Pool, pods []*v1.Pod) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	objs := make([]runtime.Object, len(pods))
	for i, pod := range pods {
		objs[i] = pod
	}
	// The nominator only records pods its lister knows.
	queue := internalqueue.NewTestQueueWithObjects(ctx, nil, objs)
	cp := controlPlane()
	fw, err := frameworkruntime.NewFramework(ctx, plugins.NewInTreeRegistry(), defaultProfile(b),
		frameworkruntime.WithPodNominator(queue),
		frameworkruntime.WithSnapshotSharedLister(internalcache.NewSnapshot(nil, []*v1.Node{cp})),
		frameworkruntime.WithEventRecorder(&events.FakeRecorder{}),
		frameworkruntime.WithPodActivator(queue),
		// Plugins list Services and the like at start; nothing here needs a live cluster.
		frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(fake.NewClientset(), 0)),
	)
	if err != nil {
		b.Fatal(err)
	}
	p := &Provisioner{handle: fw, state: newState(ctx, fw, staticPools{[]*packing.Pool{pool}}, nil, time.Hour, time.Hour)}
	for _, pod := range pods {
		pod := pod.DeepCopy()
		state := framework.NewCycleState()
		if _, st, _ := fw.RunPreFilterPlugins(ctx, state, pod); !st.IsSuccess() && !st.IsRejected() {
			b.Fatalf("prefilter: %v", st)
		}
		res, st := p.PostFilter(ctx, state, pod, nil)
		if !st.IsSuccess() || res == nil {
			b.Fatalf("pod %s not nominated: %v", pod.Name, st)
		}
		pod.Status.NominatedNodeName = res.NominatingInfo.NominatedNodeName
		pi, _ := framework.NewPodInfo(pod)
		queue.AddNominatedPod(klog.Background(), pi, res.NominatingInfo)
	}
	// No node holds more than 110 pods: fewer claims means the ledger lost pods.
	if min := (len(pods) + 109) / 110; len(p.claims) < min {
		b.Fatalf("%d pods packed onto %d claims; at least %d needed", len(pods), len(p.claims), min)
	}
	return len(p.claims)
}

func defaultProfile(b *testing.B) *config.KubeSchedulerProfile {
	// DynamicResources needs the DRA manager of a live scheduler; the
	// benchmark's pods ask only for CPU and memory.
	versioned := configv1.KubeSchedulerConfiguration{Profiles: []configv1.KubeSchedulerProfile{{SchedulerName: ptr.To("bench"),
		Plugins: &configv1.Plugins{MultiPoint: configv1.PluginSet{Disabled: []configv1.Plugin{{Name: "DynamicResources"}}}}}}}
	scheme.Scheme.Default(&versioned)
	internal := config.KubeSchedulerConfiguration{}
	if err := scheme.Scheme.Convert(&versioned, &internal, nil); err != nil {
		b.Fatal(err)
	}
	return &internal.Profiles[0]
}

func controlPlane() *v1.Node {
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "control-plane", Labels: map[string]string{v1.LabelHostname: "control-plane"}},
		Spec:       v1.NodeSpec{Taints: []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}},
		Status:     v1.NodeStatus{Capacity: rl, Allocatable: rl},
	}
}

// mixedPods are n pods cycling through small to large requests.
func mixedPods(n int) []*v1.Pod {
	sizes := []struct{ cpu, mem string }{{"100m", "128Mi"}, {"250m", "512Mi"}, {"500m", "1Gi"}, {"1", "2Gi"}, {"2", "4Gi"}, {"4", "8Gi"}}
	pods := make([]*v1.Pod, n)
	for i := range pods {
		s := sizes[i%len(sizes)]
		pods[i] = &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%d", i))},
			Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				v1.ResourceCPU: resource.MustParse(s.cpu), v1.ResourceMemory: resource.MustParse(s.mem)}}}}},
		}
	}
	return pods
}

var _ fwk.PostFilterPlugin = &Provisioner{}

func pricingProvider(b *testing.B) pricing.Provider {
	p, err := pricing.NewLive(nil)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func benchNodeClass() *ec2v1.EC2NodeClass {
	return &ec2v1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "bench", ResourceVersion: "1"}}
}
