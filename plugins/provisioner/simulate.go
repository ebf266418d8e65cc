package provisioner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	internalqueue "k8s.io/kubernetes/pkg/scheduler/backend/queue"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Simulation decides where pods would go without a cluster to write to:
// the real kube-scheduler (scheduler.New: its cache, queue and nominator,
// ScheduleOne with the default profile's plugins and their scoring) runs
// over an in-memory copy of the cluster (a fake clientset holding the
// objects), with this package's PostFilter over Pools after
// DefaultPreemption, as the shipped configuration orders them. Pods are
// created in the copy in the order given, as a controller creates them,
// and every pod is scheduled until none is left to try. Nothing reaches
// the cloud or the cluster: claims stay planned (no batch closes), binding
// is recorded by the fake clientset only, and the copy is dropped.
type Simulation struct {
	// Pools are the NodePools and the NodeClaims in flight, as the
	// scheduler's plugin sees them (nodepool.Source).
	Pools PoolSource
	// Cluster is what the scheduler would see: nodes, the pods bound to
	// them, pods already nominated to a claim or node, and what the
	// plugins read (namespaces, volumes and claims, storage classes,
	// CSINodes, PodDisruptionBudgets, Services, ReplicaSets, StatefulSets).
	Cluster []runtime.Object
}

// SimulationResult is where each pod went.
type SimulationResult struct {
	// Claims hold at least one pod, in the order they were opened or, for
	// NodeClaims in flight, by name.
	Claims []SimulatedClaim
	// OnNodes are pods the scheduler placed on existing nodes (or would
	// preempt for, Preempting).
	OnNodes []Placement
	// Unplaced are the pods nothing placed, with the scheduler's and the
	// provisioner's reasons.
	Unplaced []UnplacedPod
}

// SimulatedClaim is a claim as the decision left it.
type SimulatedClaim struct {
	Name     string
	NodePool string
	// Options are the launch options left, cheapest first.
	Options []*packing.PoolOption
	// InFlight is set for a NodeClaim that exists already.
	InFlight bool
	Pods     []*v1.Pod
	// Requests are what the node must hold: the pool's DaemonSet pods and
	// the claim's pods, as the NodeClaim asks for them.
	Requests v1.ResourceList
}

// Placement is a pod on an existing node.
type Placement struct {
	Pod        *v1.Pod
	Node       string
	Preempting bool
}

// UnplacedPod is a pod nothing placed: Scheduling is the scheduler's
// FailedScheduling message, Provisioning the provisioner's
// FailedProvisioning one (empty when it was not asked).
type UnplacedPod struct {
	Pod          *v1.Pod
	Scheduling   string
	Provisioning string
}

// placeholderNode stands in for a cluster with no node. kube-scheduler
// never runs PostFilter when there is no node at all (a kubeadm cluster
// always has its control plane); this node takes no pod (no pod slot), so
// every pod reaches PostFilter as on a cluster with a full control plane.
const placeholderNode = "no-node-placeholder"

// simulationSettleRounds bounds the retries of pods moved between claims
// to make room (each retry moves fewer).
const simulationSettleRounds = 10

// simulationCreateBatch is how many pods are created before waiting for
// the informers and the queue to take them in.
const simulationCreateBatch = 50

// Run schedules pods (unbound, not in Cluster) and reports where each went.
// Pods without a UID get one.
func (s *Simulation) Run(ctx context.Context, pods []*v1.Pod) (*SimulationResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := klog.FromContext(ctx)
	cluster := s.Cluster
	if !hasNode(cluster) {
		cluster = append(slices.Clip(cluster), emptyClusterNode())
	}
	// The tracker without field management: NewClientset's builds a REST
	// mapper on every write, which was nine tenths of a plan's memory.
	client := fake.NewSimpleClientset(cluster...) //nolint:staticcheck // no server-side apply is needed

	factory := informers.NewSharedInformerFactory(client, 0)
	rec := &simulationRecorder{byPod: map[types.UID]map[string]string{}}

	var st *state
	plugin := func(_ context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		if st == nil {
			// A done context: no batch window closes (nothing is created)
			// and no requeue loop runs (Run retries the pods itself).
			done, stop := context.WithCancel(ctx)
			stop()
			st = newState(done, h, s.Pools, nil, 24*time.Hour, 24*time.Hour)
		}
		return &Provisioner{handle: h, state: st}, nil
	}
	profiles, err := simulationProfiles(pods)
	if err != nil {
		return nil, err
	}
	sched, err := scheduler.New(ctx, client, factory, nil, func(string) events.EventRecorderLogger { return rec },
		scheduler.WithProfiles(profiles...),
		scheduler.WithFrameworkOutOfTreeRegistry(frameworkruntime.Registry{Name: plugin}))
	if err != nil {
		return nil, fmt.Errorf("building the scheduler: %w", err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	if err := sched.WaitForHandlersSync(ctx); err != nil {
		return nil, err
	}

	// Create the pods in order, as a controller does: each enters the
	// queue after the one before it. The fake clientset's watches hold
	// 100 events, so pods go in batches the informers have taken in.
	queue := sched.SchedulingQueue
	planned := map[types.UID]*v1.Pod{}
	created := make([]*v1.Pod, 0, len(pods))
	unbound := 0
	for i, pod := range pods {
		pod = pod.DeepCopy()
		if pod.UID == "" {
			pod.UID = uuid.NewUUID()
		}
		if pod.Spec.SchedulerName == "" {
			pod.Spec.SchedulerName = v1.DefaultSchedulerName // the API's default
		}
		if pod.CreationTimestamp.IsZero() {
			pod.CreationTimestamp = metav1.Now()
		}
		if _, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		planned[pod.UID] = pod
		created = append(created, pod)
		if pod.Spec.NodeName == "" {
			unbound++
		}
		if (i+1)%simulationCreateBatch == 0 || i == len(pods)-1 {
			if err := waitQueued(ctx, queue, planned, unbound); err != nil {
				return nil, err
			}
		}
	}

	for round := 0; ; round++ {
		for len(queue.PodsInActiveQ()) > 0 {
			sched.ScheduleOne(ctx)
		}
		moved := st.takeMoved()
		if len(moved) == 0 || round == simulationSettleRounds {
			break
		}
		queue.Activate(logger, moved)
	}
	return s.result(st, sched, rec, created, planned), nil
}

// waitQueued waits until n of the planned pods are in the scheduling
// queue (the unbound ones created so far).
func waitQueued(ctx context.Context, queue internalqueue.SchedulingQueue, planned map[types.UID]*v1.Pod, n int) error {
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		pending, _ := queue.PendingPods()
		have := 0
		for _, p := range pending {
			if planned[p.UID] != nil {
				have++
			}
		}
		return have >= n, nil
	})
	if err != nil {
		return fmt.Errorf("the pods did not reach the scheduling queue (is their schedulerName one this plan serves?): %w", err)
	}
	return nil
}

// takeMoved returns the pods moved to another claim to make room and not
// retried since, as the requeue loop would activate them.
func (p *state) takeMoved() map[string]*v1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]*v1.Pod{}
	for _, c := range p.claims {
		for _, m := range c.pods {
			if m.moved {
				out[m.pod().Namespace+"/"+m.pod().Name] = m.pod()
				delete(p.waiting, m.pod().UID)
			}
		}
	}
	return out
}

// result reads where the pods went: claims from the claim set, existing
// nodes from the scheduler's cache (assumed pods), the rest from the
// events the scheduler and the provisioner recorded.
func (s *Simulation) result(st *state, sched *scheduler.Scheduler, rec *simulationRecorder, order []*v1.Pod, planned map[types.UID]*v1.Pod) *SimulationResult {
	out := &SimulationResult{}
	placed := map[types.UID]bool{}
	st.mu.Lock()
	claims := make([]*claim, 0, len(st.claims))
	for _, c := range st.claims {
		if len(c.pods) > 0 {
			claims = append(claims, c)
		}
	}
	slices.SortFunc(claims, func(a, b *claim) int {
		if a.planned != b.planned {
			if a.planned {
				return 1
			}
			return -1
		}
		if c := a.opened.Compare(b.opened); c != 0 && a.planned {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, c := range claims {
		sc := SimulatedClaim{Name: c.name, NodePool: c.pool.Name, Options: c.options, InFlight: !c.planned, Requests: packing.ResourceList(c.used)}
		for uid, m := range c.pods {
			sc.Pods = append(sc.Pods, m.pod())
			placed[uid] = true
		}
		slices.SortFunc(sc.Pods, func(a, b *v1.Pod) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
		out.Claims = append(out.Claims, sc)
	}
	st.mu.Unlock()

	// Existing nodes: the pods assumed there, and those nominated there
	// by preemption (their victims go first).
	preempting := map[types.UID]string{}
	for name, info := range sched.Cache.Dump().Nodes {
		for _, pi := range info.GetPods() {
			if pod := planned[pi.GetPod().UID]; pod != nil && !placed[pod.UID] {
				out.OnNodes = append(out.OnNodes, Placement{Pod: pod, Node: name})
				placed[pod.UID] = true
			}
		}
		for _, pi := range sched.SchedulingQueue.NominatedPodsForNode(name) {
			if pod := planned[pi.GetPod().UID]; pod != nil {
				preempting[pod.UID] = name
			}
		}
	}
	for _, pod := range order {
		switch {
		case planned[pod.UID] == nil || placed[pod.UID]:
		case preempting[pod.UID] != "":
			out.OnNodes = append(out.OnNodes, Placement{Pod: pod, Node: preempting[pod.UID], Preempting: true})
		default:
			why := rec.reasons(pod.UID)
			out.Unplaced = append(out.Unplaced, UnplacedPod{Pod: pod, Scheduling: why["FailedScheduling"], Provisioning: why["FailedProvisioning"]})
		}
	}
	return out
}

// simulationProfiles is one profile per scheduler name the pods ask for:
// the default plugins, and the Provisioner after DefaultPreemption and
// before DynamicResources in PostFilter, as the README configures it.
func simulationProfiles(pods []*v1.Pod) ([]config.KubeSchedulerProfile, error) {
	names := []string{v1.DefaultSchedulerName}
	for _, p := range pods {
		if n := p.Spec.SchedulerName; n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	versioned := configv1.KubeSchedulerConfiguration{}
	for _, n := range names {
		versioned.Profiles = append(versioned.Profiles, configv1.KubeSchedulerProfile{
			SchedulerName: ptr.To(n),
			Plugins: &configv1.Plugins{PostFilter: configv1.PluginSet{
				Disabled: []configv1.Plugin{{Name: "DynamicResources"}},
				Enabled:  []configv1.Plugin{{Name: Name}, {Name: "DynamicResources"}},
			}},
		})
	}
	scheme.Scheme.Default(&versioned)
	internal := config.KubeSchedulerConfiguration{}
	if err := scheme.Scheme.Convert(&versioned, &internal, nil); err != nil {
		return nil, err
	}
	return internal.Profiles, nil
}

func hasNode(objs []runtime.Object) bool {
	for _, o := range objs {
		if _, ok := o.(*v1.Node); ok {
			return true
		}
	}
	return false
}

func emptyClusterNode() *v1.Node {
	none := v1.ResourceList{v1.ResourcePods: resource.MustParse("0")}
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: placeholderNode, UID: "no-node-placeholder"},
		Spec:       v1.NodeSpec{Unschedulable: true},
		Status: v1.NodeStatus{Capacity: none, Allocatable: none,
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}},
	}
}

// simulationRecorder keeps, per pod, the last message of each event
// reason, and the node the pod was last nominated to.
type simulationRecorder struct {
	mu    sync.Mutex
	byPod map[types.UID]map[string]string
}

func (r *simulationRecorder) Eventf(regarding, _ runtime.Object, _, reason, _, note string, args ...interface{}) {
	pod, ok := regarding.(*v1.Pod)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byPod[pod.UID]
	if m == nil {
		m = map[string]string{}
		r.byPod[pod.UID] = m
	}
	m[reason] = fmt.Sprintf(note, args...)
}

func (r *simulationRecorder) WithLogger(klog.Logger) events.EventRecorderLogger { return r }

func (r *simulationRecorder) reasons(uid types.UID) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byPod[uid]
}
