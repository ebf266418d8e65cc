package disruption

import (
	"context"
	"fmt"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	internalcache "k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	schedulermetrics "k8s.io/kubernetes/pkg/scheduler/metrics"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// The consolidation simulation: can a node's pods run on the other nodes?
// The scheduler's own PreFilter and Filter plugins (the in-tree registry,
// default profile) judge every placement against a snapshot of the live
// nodes and pods, so affinity, topology spread, taints, ports, volumes and
// resources count exactly as kube-scheduler counts them. The snapshot is
// changed as the loop goes: pods placed elsewhere stay placed, nodes to be
// removed leave the node list, so several decisions in one loop see each
// other.

// simulationProfile is the scheduler's default profile without
// DynamicResources, which needs a live scheduler's DRA manager. Pods that
// claim devices are judged without it.
func simulationProfile() (*config.KubeSchedulerProfile, error) {
	versioned := configv1.KubeSchedulerConfiguration{Profiles: []configv1.KubeSchedulerProfile{{
		SchedulerName: ptr.To("fleet-scheduler-disruption"),
		Plugins: &configv1.Plugins{MultiPoint: configv1.PluginSet{
			Disabled: []configv1.Plugin{{Name: "DynamicResources"}},
		}},
	}}}
	scheme.Scheme.Default(&versioned)
	internal := config.KubeSchedulerConfiguration{}
	if err := scheme.Scheme.Convert(&versioned, &internal, nil); err != nil {
		return nil, err
	}
	return &internal.Profiles[0], nil
}

// simulator owns a scheduler framework whose snapshot it swaps per loop.
type simulator struct {
	fw     framework.Framework
	lister *simLister
}

// newSimulator builds the framework. Plugins take their listers (PVCs,
// PVs, storage classes, CSI nodes, namespaces...) from factory, which must
// be started afterwards.
func newSimulator(ctx context.Context, factory informers.SharedInformerFactory, kube kubernetes.Interface) (*simulator, error) {
	// The framework counts into the scheduler's metrics; registering them is
	// idempotent, and kube-scheduler has done it already in production.
	schedulermetrics.Register()
	profile, err := simulationProfile()
	if err != nil {
		return nil, err
	}
	lister := &simLister{Snapshot: internalcache.NewEmptySnapshot()}
	fw, err := frameworkruntime.NewFramework(ctx, plugins.NewInTreeRegistry(), profile,
		frameworkruntime.WithSnapshotSharedLister(lister),
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithClientSet(kube),
		frameworkruntime.WithEventRecorder(&events.FakeRecorder{}),
	)
	if err != nil {
		return nil, fmt.Errorf("building the scheduler framework for consolidation: %w", err)
	}
	return &simulator{fw: fw, lister: lister}, nil
}

// session is one loop's simulation.
type session struct {
	fw     framework.Framework
	snap   *internalcache.Snapshot
	lister *simLister
	logger klog.Logger
}

// begin snapshots the nodes and the pods bound (or nominated) to them.
// Pods must carry their node in spec.nodeName.
func (s *simulator) begin(ctx context.Context, nodes []*v1.Node, pods []*v1.Pod) (*session, error) {
	snap := internalcache.NewSnapshot(pods, nodes)
	if err := snap.StartMutations(); err != nil {
		return nil, err
	}
	s.lister.reset(snap)
	return &session{fw: s.fw, snap: snap, lister: s.lister, logger: klog.FromContext(ctx)}, nil
}

// end drops the snapshot.
func (ss *session) end() {
	_ = ss.snap.EndMutations()
	ss.lister.reset(internalcache.NewEmptySnapshot())
}

// move is one pod placed on another node by the simulation.
type move struct {
	pod  *v1.Pod // the pod as it is on its node
	from string
	to   string
	info *framework.PodInfo // the pod as placed on to
}

// exclude takes a node out of the cluster the simulation sees.
func (ss *session) exclude(node string) { ss.lister.setExcluded(node, true) }

// include puts an excluded node back.
func (ss *session) include(node string) { ss.lister.setExcluded(node, false) }

// relocate excludes node and places pods (which are on it) elsewhere, the
// largest first. On success the moves stay in the snapshot and are
// returned. On failure the snapshot and the node are as they were, and the
// pod that fits nowhere is returned with the plugins' verdict.
func (ss *session) relocate(ctx context.Context, node string, pods []*v1.Pod) ([]move, *v1.Pod, string) {
	var from map[string]string
	if ni, err := ss.snap.NodeInfos().Get(node); err == nil && ni.Node() != nil {
		from = ni.Node().Labels
	}
	ss.exclude(node)
	ordered := largestFirst(pods)
	var moves []move
	held := map[string]bool{} // "key=value" -> another node still holds the domain
	for _, pod := range ordered {
		if err := ss.snap.RemovePod(ss.logger, pod, node); err != nil {
			ss.logger.V(4).Info("Pod not in the snapshot", "pod", klog.KObj(pod), "err", err)
		}
		to, why := ss.place(ctx, pod, ss.vanishing(spreadDomains(pod, from), held))
		if to == "" {
			// Put back what was taken: this pod, then the moves in reverse.
			ss.addBack(pod, node)
			for i := len(moves) - 1; i >= 0; i-- {
				m := moves[i]
				if err := ss.snap.RemovePod(ss.logger, m.info.Pod, m.to); err != nil {
					ss.logger.Error(err, "Undoing a simulated move", "pod", klog.KObj(m.pod))
				}
				ss.addBack(m.pod, node)
			}
			ss.include(node)
			return nil, pod, why
		}
		placed := pod.DeepCopy()
		placed.Spec.NodeName = to
		info, err := framework.NewPodInfo(placed)
		if err != nil {
			ss.logger.Error(err, "Pod info", "pod", klog.KObj(pod))
			continue
		}
		if err := ss.snap.AddPod(info, to); err != nil {
			ss.logger.Error(err, "Adding a simulated pod", "pod", klog.KObj(pod))
		}
		moves = append(moves, move{pod: pod, from: node, to: to, info: info})
	}
	return moves, nil, ""
}

// displace excludes a node that is going away anyway and places what of its
// pods fits elsewhere, so that the capacity they will need is not promised
// to anyone else. Pods that fit nowhere are left out: they will be
// provisioned for.
func (ss *session) displace(ctx context.Context, node string, pods []*v1.Pod) {
	ss.exclude(node)
	for _, pod := range pods {
		_ = ss.snap.RemovePod(ss.logger, pod, node)
		if to, _ := ss.place(ctx, pod, nil); to != "" {
			placed := pod.DeepCopy()
			placed.Spec.NodeName = to
			if info, err := framework.NewPodInfo(placed); err == nil {
				_ = ss.snap.AddPod(info, to)
			}
		}
	}
}

// fitAll places pods, in order of size, on ni, a node that is not in the
// snapshot (a node to be launched), running the PreFilter plugins against
// the snapshot and the Filter plugins on ni; it says why a pod does not fit,
// or "". The pods stay on ni.
func (ss *session) fitAll(ctx context.Context, ni *framework.NodeInfo, pods []*v1.Pod) string {
	name := ni.Node().Name
	for _, pod := range largestFirst(pods) {
		p := pod.DeepCopy()
		p.Spec.NodeName = ""
		state := framework.NewCycleState()
		pre, st, _ := ss.fw.RunPreFilterPlugins(ctx, state, p)
		if !st.IsSuccess() {
			return fmt.Sprintf("pod %s/%s: %s", pod.Namespace, pod.Name, st.Message())
		}
		if pre != nil && !pre.AllNodes() && !pre.NodeNames.Has(name) {
			return fmt.Sprintf("pod %s/%s may only run on nodes %v", pod.Namespace, pod.Name, sets.List(pre.NodeNames))
		}
		if st := ss.fw.RunFilterPlugins(ctx, state, p, ni); !st.IsSuccess() {
			return fmt.Sprintf("pod %s/%s does not pass the scheduler's filters on a new node: %s", pod.Namespace, pod.Name, st.Message())
		}
		p.Spec.NodeName = name
		info, err := framework.NewPodInfo(p)
		if err != nil {
			return err.Error()
		}
		ni.AddPodInfo(info)
	}
	return ""
}

func (ss *session) addBack(pod *v1.Pod, node string) {
	info, err := framework.NewPodInfo(pod)
	if err == nil {
		err = ss.snap.AddPod(info, node)
	}
	if err != nil {
		ss.logger.Error(err, "Restoring a pod in the simulation", "pod", klog.KObj(pod))
	}
}

// spreadDomains are the domains a pod's topology spreads (DoNotSchedule,
// on keys other than hostname) hold it in on a node with these labels.
// Consolidation keeps a pod in them: once a zone's last node goes the
// scheduler no longer counts the zone, but the NodePool can still launch
// there, and the Provisioner would spread the pods back (a loop of
// launches and consolidations).
func spreadDomains(pod *v1.Pod, labels map[string]string) map[string]string {
	var out map[string]string
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != v1.DoNotSchedule || c.TopologyKey == v1.LabelHostname {
			continue
		}
		if v, ok := labels[c.TopologyKey]; ok {
			if out == nil {
				out = map[string]string{}
			}
			out[c.TopologyKey] = v
		}
	}
	return out
}

// vanishing keeps the domains that no node left in the simulation holds:
// while another node is in the domain, the scheduler still counts it and
// its Filter plugins judge a move out of it as the Provisioner would. held
// remembers the answers for one relocation.
func (ss *session) vanishing(domains map[string]string, held map[string]bool) map[string]string {
	var out map[string]string
	for k, v := range domains {
		kv := k + "=" + v
		still, ok := held[kv]
		if !ok {
			for _, ni := range ss.lister.list() {
				if ni.Node().Labels[k] == v {
					still = true
					break
				}
			}
			held[kv] = still
		}
		if !still {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// place finds a node the pod passes every PreFilter and Filter plugin on,
// with the labels keep asks for, or says why none does.
func (ss *session) place(ctx context.Context, pod *v1.Pod, keep map[string]string) (string, string) {
	p := pod.DeepCopy()
	p.Spec.NodeName = ""
	state := framework.NewCycleState()
	pre, st, _ := ss.fw.RunPreFilterPlugins(ctx, state, p)
	if !st.IsSuccess() {
		return "", st.Message()
	}
	nodes := ss.lister.list()
	need := packing.PodRequests(p)
	var lastWhy string
	tried := 0
	for _, ni := range nodes {
		if pre != nil && !pre.AllNodes() && !pre.NodeNames.Has(ni.Node().Name) {
			continue
		}
		if !roomFor(ni, need) || !hasLabels(ni.Node(), keep) {
			continue
		}
		tried++
		st := ss.fw.RunFilterPlugins(ctx, state, p, ni)
		if st.IsSuccess() {
			return ni.Node().Name, ""
		}
		lastWhy = fmt.Sprintf("%s: %s", ni.Node().Name, st.Message())
	}
	if tried == 0 {
		return "", fmt.Sprintf("no other node has room for its requests (cpu %dm, memory %d)", need.MilliCPU, need.Memory)
	}
	return "", fmt.Sprintf("no other node passes the scheduler's filters (%d tried; last: %s)", tried, lastWhy)
}

func hasLabels(node *v1.Node, want map[string]string) bool {
	for k, v := range want {
		if node.Labels[k] != v {
			return false
		}
	}
	return true
}

// roomFor is a quick pre-screen with NodeResourcesFit's own arithmetic for
// CPU, memory and the pod count: a node it rejects, the plugin would
// reject too. The plugins still judge every node it lets through.
func roomFor(ni fwk.NodeInfo, need *framework.Resource) bool {
	alloc, used := ni.GetAllocatable(), ni.GetRequested()
	if len(ni.GetPods())+1 > alloc.GetAllowedPodNumber() {
		return false
	}
	if need.MilliCPU > 0 && need.MilliCPU > alloc.GetMilliCPU()-used.GetMilliCPU() {
		return false
	}
	if need.Memory > 0 && need.Memory > alloc.GetMemory()-used.GetMemory() {
		return false
	}
	return true
}

// largestFirst orders pods by CPU then memory request, the largest first,
// so the hardest to place are placed while there is most room.
func largestFirst(pods []*v1.Pod) []*v1.Pod {
	type sized struct {
		pod *v1.Pod
		req *framework.Resource
	}
	s := make([]sized, len(pods))
	for i, p := range pods {
		s[i] = sized{p, packing.PodRequests(p)}
	}
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].req.MilliCPU != s[j].req.MilliCPU {
			return s[i].req.MilliCPU > s[j].req.MilliCPU
		}
		return s[i].req.Memory > s[j].req.Memory
	})
	out := make([]*v1.Pod, len(pods))
	for i := range s {
		out[i] = s[i].pod
	}
	return out
}

// simLister is the framework's view: the loop's snapshot minus the nodes
// the simulation has taken away. The embedded snapshot serves everything
// but the node list.
type simLister struct {
	*internalcache.Snapshot
	excluded map[string]bool
	cached   []fwk.NodeInfo // nodes in name order, less excluded; nil when stale
}

var _ fwk.SharedLister = &simLister{}

func (l *simLister) reset(s *internalcache.Snapshot) {
	l.Snapshot, l.excluded, l.cached = s, map[string]bool{}, nil
}

func (l *simLister) setExcluded(node string, excluded bool) {
	if l.excluded[node] == excluded {
		return
	}
	if excluded {
		l.excluded[node] = true
	} else {
		delete(l.excluded, node)
	}
	l.cached = nil
}

// list is the node list in name order without excluded nodes. The
// snapshot's NodeInfos change in place as pods move; the list changes only
// with exclusions.
func (l *simLister) list() []fwk.NodeInfo {
	if l.cached == nil {
		all, _ := l.Snapshot.List()
		out := make([]fwk.NodeInfo, 0, len(all))
		for _, ni := range all {
			if ni.Node() != nil && !l.excluded[ni.Node().Name] {
				out = append(out, ni)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Node().Name < out[j].Node().Name })
		l.cached = out
	}
	return l.cached
}

// NodeInfos serves the plugins the filtered node list.
func (l *simLister) NodeInfos() fwk.NodeInfoLister { return (*simNodeInfos)(l) }

type simNodeInfos simLister

func (n *simNodeInfos) l() *simLister { return (*simLister)(n) }

func (n *simNodeInfos) List() ([]fwk.NodeInfo, error) { return n.l().list(), nil }

func (n *simNodeInfos) HavePodsWithAffinityList() ([]fwk.NodeInfo, error) {
	all, err := n.Snapshot.HavePodsWithAffinityList()
	return n.without(all), err
}

func (n *simNodeInfos) HavePodsWithRequiredAntiAffinityList() ([]fwk.NodeInfo, error) {
	all, err := n.Snapshot.HavePodsWithRequiredAntiAffinityList()
	return n.without(all), err
}

func (n *simNodeInfos) HavePodsWithRequiredNonHostScopedAntiAffinityList() ([]fwk.NodeInfo, error) {
	all, err := n.Snapshot.HavePodsWithRequiredNonHostScopedAntiAffinityList()
	return n.without(all), err
}

func (n *simNodeInfos) Get(name string) (fwk.NodeInfo, error) {
	if n.excluded[name] {
		return nil, fmt.Errorf("nodeinfo not found for node name %q", name)
	}
	return n.Snapshot.Get(name)
}

func (n *simNodeInfos) without(list []fwk.NodeInfo) []fwk.NodeInfo {
	if len(n.excluded) == 0 {
		return list
	}
	out := make([]fwk.NodeInfo, 0, len(list))
	for _, ni := range list {
		if ni.Node() != nil && !n.excluded[ni.Node().Name] {
			out = append(out, ni)
		}
	}
	return out
}
