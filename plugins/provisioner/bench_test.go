package provisioner

import (
	"context"
	"fmt"
	goruntime "runtime"
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
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/queuesort"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
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
	options, err := (&catalog.ClassOptions{Catalog: cat}).Options(benchNodeClass())
	if err != nil {
		b.Fatal(err)
	}
	pool := &packing.Pool{
		Name: "default", Labels: map[string]string{"karpenter.sh/nodepool": "default"},
		Options: packing.NewPoolOptions(options, map[string]string{"karpenter.sh/nodepool": "default"}, nil), DaemonRequests: packing.Sum(),
	}
	types, _ := cat.Get(ctx)
	b.Logf("catalogue: %d instance types, %d launch options", len(types), len(pool.Options))

	benchmarkDecisions(b, pool, mixedPods(1000))
}

// benchmarkDecisions runs each pod through a scheduling cycle's part in a
// decision, as the scheduler does for a pod that fits no node: every pod
// is in the scheduling queue first (the nominator finds nominated pods
// there), is popped, goes through PreFilter and the Provisioner's
// PostFilter with the default profile's Filter plugins, and its nomination
// is recorded in the queue's nominator before it goes back to the queue as
// unschedulable. It reports decisions per second, claims opened, pods left
// without a claim (must be 0) and bytes allocated per pod.
func benchmarkDecisions(b *testing.B, pool *packing.Pool, pods []*v1.Pod, inspect ...func(*decisionRun)) {
	b.ReportAllocs()
	var claims, unplaced int
	var elapsed time.Duration
	var allocated uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		run := newDecisionRun(b, pool, pods)
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		b.StartTimer()
		start := time.Now()
		run.decideAll()
		elapsed += time.Since(start)
		b.StopTimer()
		goruntime.ReadMemStats(&after)
		allocated += after.TotalAlloc - before.TotalAlloc
		claims, unplaced = run.claimCount(), run.unplaced
		if i == b.N-1 {
			for _, f := range inspect {
				f(run)
			}
		}
		run.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(pods)*b.N)/elapsed.Seconds(), "pods/s")
	b.ReportMetric(float64(claims), "nodes")
	b.ReportMetric(float64(unplaced), "unplaced")
	b.ReportMetric(float64(allocated)/float64(len(pods)*b.N), "B/pod")
	if unplaced > 0 {
		b.Errorf("%d of %d pods were not nominated", unplaced, len(pods))
	}
}

// decisionRun is one scheduler's worth of state for a benchmark pass.
type decisionRun struct {
	b        testing.TB
	ctx      context.Context
	cancel   context.CancelFunc
	queue    *internalqueue.PriorityQueue
	fw       framework.Framework
	p        *Provisioner
	pods     []*v1.Pod
	unplaced int
}

func newDecisionRun(b testing.TB, pool *packing.Pool, pods []*v1.Pod) *decisionRun {
	return newCluster(b, []*packing.Pool{pool}, pods, []*v1.Node{controlPlane()}, nil)
}

// newCluster is a scheduler's queue (holding pods), framework (the default
// profile over a snapshot of nodes and their assigned pods) and a
// Provisioner over pools.
func newCluster(b testing.TB, pools []*packing.Pool, pods []*v1.Pod, nodes []*v1.Node, assigned []*v1.Pod) *decisionRun {
	schedulermetrics.Register()
	ctx, cancel := context.WithCancel(context.Background())
	objs := make([]runtime.Object, len(pods))
	copies := make([]*v1.Pod, len(pods))
	for i, pod := range pods {
		copies[i] = pod.DeepCopy()
		objs[i] = copies[i]
	}
	// The nominator only records pods its lister knows.
	queue := internalqueue.NewTestQueueWithObjects(ctx, (&queuesort.PrioritySort{}).Less, objs)
	fw, err := frameworkruntime.NewFramework(ctx, plugins.NewInTreeRegistry(), defaultProfile(b),
		frameworkruntime.WithPodNominator(queue),
		frameworkruntime.WithSnapshotSharedLister(internalcache.NewSnapshot(assigned, nodes)),
		frameworkruntime.WithEventRecorder(&events.FakeRecorder{}),
		frameworkruntime.WithPodActivator(queue),
		// Plugins list Services and the like at start; nothing here needs a live cluster.
		frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(fake.NewClientset(), 0)),
	)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	for _, pod := range copies {
		queue.Add(ctx, pod)
	}
	p := &Provisioner{handle: fw, state: newState(ctx, fw, staticPools{pools}, nil, time.Hour, time.Hour)}
	return &decisionRun{b: b, ctx: ctx, cancel: cancel, queue: queue, fw: fw, p: p, pods: copies}
}

// decideAll pops every pod and decides it, in queue order, then retries
// the pods the Provisioner moved to make room for others (the scheduler
// would retry them when the Provisioner activates them) until none is left.
func (r *decisionRun) decideAll() {
	r.decide(len(r.pods))
	r.settle()
}

// settle retries moved pods until none is left.
func (r *decisionRun) settle() {
	for {
		moved := r.movedPods()
		if len(moved) == 0 {
			return
		}
		r.queue.Activate(klog.FromContext(r.ctx), moved)
		r.decide(len(moved))
	}
}

// movedPods are the pods moved to another claim and not retried since.
func (r *decisionRun) movedPods() map[string]*v1.Pod {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	out := map[string]*v1.Pod{}
	for _, c := range r.p.claims {
		for _, m := range c.pods {
			if m.moved {
				out[m.pod().Namespace+"/"+m.pod().Name] = m.pod()
				delete(r.p.waiting, m.pod().UID)
			}
		}
	}
	return out
}

// decide pops n pods and decides each.
func (r *decisionRun) decide(n int) {
	logger := klog.FromContext(r.ctx)
	for range n {
		entity, err := r.queue.Pop(logger)
		if err != nil {
			r.b.Fatal(err)
		}
		qpi := entity.(*framework.QueuedPodInfo)
		pod := qpi.Pod
		state := framework.NewCycleState()
		if _, st, _ := r.fw.RunPreFilterPlugins(r.ctx, state, pod); !st.IsSuccess() && !st.IsRejected() {
			r.b.Fatalf("prefilter: %v", st)
		}
		res, st := r.p.PostFilter(r.ctx, state, pod, nil)
		if st.IsSuccess() && res != nil && res.NominatingInfo != nil && res.NominatingInfo.NominatedNodeName != "" {
			r.queue.AddNominatedPod(logger, qpi.PodInfo, res.NominatingInfo)
		} else {
			r.unplaced++
		}
		r.queue.Done(pod.UID)
		if err := r.queue.AddUnschedulablePodIfNotPresent(logger, qpi, r.queue.SchedulingCycle()); err != nil {
			r.b.Fatal(err)
		}
	}
}

func (r *decisionRun) claimCount() int {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return len(r.p.claims)
}

func (r *decisionRun) close() { r.cancel() }

func defaultProfile(b testing.TB) *config.KubeSchedulerProfile {
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
