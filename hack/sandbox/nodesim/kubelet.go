package nodesim

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"maps"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"
)

// KubeletVersion is what the simulated kubelets report.
const KubeletVersion = "v1.37.2"

// Hardware is what a machine knows about itself: from IMDS (instance id,
// type, zone, addresses) and from the hardware (CPUs, memory, disk, arch).
type Hardware struct {
	InstanceID   string
	InstanceType string
	Zone         string
	Region       string
	PrivateIP    string
	Hostname     string
	// Arch is the Kubernetes architecture: amd64 or arm64.
	Arch          string
	VCPUs         int64
	MemoryMiB     int64
	RootVolumeGiB int64
}

// KubeletSettings are the kubelet configuration fields the simulator acts on.
type KubeletSettings struct {
	MaxPods int32
	// SystemReserved and KubeReserved are subtracted from capacity.
	SystemReserved corev1.ResourceList
	KubeReserved   corev1.ResourceList
	// EvictionHardMemory is evictionHard memory.available, subtracted from
	// memory allocatable.
	EvictionHardMemory resource.Quantity
	// EvictionHardNodefsPercent is evictionHard nodefs.available as a
	// percentage, subtracted from ephemeral-storage allocatable.
	EvictionHardNodefsPercent int64
	// LeaseDuration is nodeLeaseDurationSeconds; the lease is renewed every
	// quarter of it.
	LeaseDuration time.Duration
	// StatusUpdateFrequency is how often status is computed and posted if changed.
	StatusUpdateFrequency time.Duration
	// StatusReportFrequency is how often status is posted even if unchanged.
	StatusReportFrequency time.Duration
}

// DefaultKubeletSettings are the kubelet's defaults.
func DefaultKubeletSettings() KubeletSettings {
	return KubeletSettings{
		MaxPods:                   110,
		EvictionHardMemory:        resource.MustParse("100Mi"),
		EvictionHardNodefsPercent: 10,
		LeaseDuration:             40 * time.Second,
		StatusUpdateFrequency:     10 * time.Second,
		StatusReportFrequency:     5 * time.Minute,
	}
}

// DefaultKernelMemoryFraction is the share of an instance's nominal memory
// the kubelet does not see in MemTotal (firmware and kernel reservations):
// a t3.medium's 4 GiB shows as ~3,977,000Ki, about 95%.
const DefaultKernelMemoryFraction = 0.05

// KubeletOptions configure one simulated kubelet.
type KubeletOptions struct {
	NodeName string
	// Config carries the node's credentials (system:node:<name>).
	Config     *rest.Config
	Labels     map[string]string
	Taints     []corev1.Taint
	ProviderID string
	Hardware   Hardware
	Settings   KubeletSettings
	// KernelMemoryFraction defaults to DefaultKernelMemoryFraction.
	KernelMemoryFraction float64
	// PodStartDelay is how long containers take to start; PodStopDelay how
	// long they take to stop after the pod is deleted.
	PodStartDelay time.Duration
	PodStopDelay  time.Duration
	// StaticPods are mirrored to the API server once the Node exists.
	StaticPods []StaticPod
	Log        logr.Logger
}

// Kubelet is one simulated kubelet.
type Kubelet struct {
	opts   KubeletOptions
	client kubernetes.Interface
	log    logr.Logger

	capacity, allocatable corev1.ResourceList
	bootID                string

	serverOnce sync.Once
	serverTLS  *tls.Config
	serverErr  error

	mu         sync.Mutex
	node       *corev1.Node
	lastReport time.Time
	podCIDR    netip.Prefix
	ready      bool
	pods       map[types.UID]*podState
	byKey      map[types.NamespacedName]types.UID
	ips        map[netip.Addr]types.UID
}

type podState struct {
	key        types.NamespacedName
	admittedAt time.Time
	running    bool
	rejected   bool
	ip         netip.Addr
	requests   corev1.ResourceList
}

// NewKubelet builds a kubelet; Register then Run start it.
func NewKubelet(opts KubeletOptions) (*Kubelet, error) {
	if opts.KernelMemoryFraction == 0 {
		opts.KernelMemoryFraction = DefaultKernelMemoryFraction
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "kubelet/" + KubeletVersion + " (linux/" + opts.Hardware.Arch + ") nodesim"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k := &Kubelet{
		opts:   opts,
		client: client,
		log:    opts.Log.WithValues("node", opts.NodeName),
		bootID: randomID(opts.NodeName + time.Now().String()),
		pods:   map[types.UID]*podState{},
		byKey:  map[types.NamespacedName]types.UID{},
		ips:    map[netip.Addr]types.UID{},
	}
	k.capacity, k.allocatable = k.resources()
	return k, nil
}

// NodeName is the node's name; InternalIP its address.
func (k *Kubelet) NodeName() string   { return k.opts.NodeName }
func (k *Kubelet) InternalIP() string { return k.opts.Hardware.PrivateIP }

// Capacity and Allocatable report what the kubelet registers.
func (k *Kubelet) Capacity() corev1.ResourceList    { return k.capacity.DeepCopy() }
func (k *Kubelet) Allocatable() corev1.ResourceList { return k.allocatable.DeepCopy() }

func (k *Kubelet) resources() (capacity, allocatable corev1.ResourceList) {
	h, s := k.opts.Hardware, k.opts.Settings
	memBytes := int64(float64(h.MemoryMiB<<20) * (1 - k.opts.KernelMemoryFraction))
	memBytes = memBytes / 1024 * 1024
	disk := h.RootVolumeGiB << 30
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(h.VCPUs, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memBytes, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(s.MaxPods), resource.DecimalSI),
		"hugepages-1Gi":                 *resource.NewQuantity(0, resource.BinarySI),
		"hugepages-2Mi":                 *resource.NewQuantity(0, resource.BinarySI),
	}
	allocatable = capacity.DeepCopy()
	sub := func(name corev1.ResourceName, q resource.Quantity) {
		v := allocatable[name]
		v.Sub(q)
		if v.Sign() < 0 {
			v = *resource.NewQuantity(0, v.Format)
		}
		allocatable[name] = v
	}
	for _, reserved := range []corev1.ResourceList{s.SystemReserved, s.KubeReserved} {
		for name, q := range reserved {
			sub(name, q)
		}
	}
	sub(corev1.ResourceMemory, s.EvictionHardMemory)
	sub(corev1.ResourceEphemeralStorage, *resource.NewQuantity(disk*s.EvictionHardNodefsPercent/100, resource.BinarySI))
	return capacity, allocatable
}

// Register creates the Node with the kubelet's credentials, as the
// kubelet's registerWithAPIServer does. An existing Node of the same name
// is taken over (a kubelet restarting).
func (k *Kubelet) Register(ctx context.Context) error {
	o := k.opts
	labels := map[string]string{
		corev1.LabelHostname:      o.NodeName,
		corev1.LabelOSStable:      "linux",
		corev1.LabelArchStable:    o.Hardware.Arch,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": o.Hardware.Arch,
	}
	maps.Copy(labels, o.Labels)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        o.NodeName,
			Labels:      labels,
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
		Spec: corev1.NodeSpec{Taints: o.Taints, ProviderID: o.ProviderID},
	}
	k.setStatus(node, time.Now())
	created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = k.client.CoreV1().Nodes().Get(ctx, o.NodeName, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", o.NodeName, err)
	}
	k.mu.Lock()
	k.node = created
	k.lastReport = time.Now()
	k.mu.Unlock()
	k.event(ctx, created, "Starting", "Starting kubelet.")
	k.createMirrorPods(ctx, created)
	k.log.Info("Node registered", "instanceType", o.Hardware.InstanceType, "cpu", k.allocatable.Cpu(), "memory", k.allocatable.Memory())
	return nil
}

// Run renews the lease, posts status and runs pods until ctx ends. The
// Node stays behind, as it does when a machine is switched off.
func (k *Kubelet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); k.leaseLoop(ctx) }()
	go func() { defer wg.Done(); k.statusLoop(ctx) }()
	go func() { defer wg.Done(); k.podLoop(ctx) }()
	wg.Wait()
	k.log.Info("Kubelet stopped")
}

// Ready reports whether the kubelet has posted Ready.
func (k *Kubelet) Ready() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ready
}

func (k *Kubelet) leaseLoop(ctx context.Context) {
	leases := k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	seconds := int32(k.opts.Settings.LeaseDuration / time.Second)
	var lease *coordinationv1.Lease
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		now := metav1.NewMicroTime(time.Now())
		if lease != nil {
			l := lease.DeepCopy()
			l.Spec.RenewTime = &now
			updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
			if err == nil {
				lease = updated
				return
			}
			if ctx.Err() == nil {
				k.log.V(2).Info("Renewing lease failed", "err", err)
			}
			lease = nil
		}
		got, err := leases.Get(ctx, k.opts.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			k.mu.Lock()
			node := k.node
			k.mu.Unlock()
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: k.opts.NodeName, Namespace: corev1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity: ptr.To(k.opts.NodeName), LeaseDurationSeconds: &seconds, RenewTime: &now,
				},
			}
			if node != nil {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
			}
			lease, err = leases.Create(ctx, l, metav1.CreateOptions{})
		case err == nil:
			got.Spec.RenewTime, got.Spec.HolderIdentity, got.Spec.LeaseDurationSeconds = &now, ptr.To(k.opts.NodeName), &seconds
			lease, err = leases.Update(ctx, got, metav1.UpdateOptions{})
		}
		if err != nil {
			lease = nil
			if ctx.Err() == nil {
				k.log.Info("Lease update failed", "err", err)
			}
		}
	}, k.opts.Settings.LeaseDuration/4)
}

// statusLoop posts node status when it changes and at least every
// StatusReportFrequency. Until the Node has a pod CIDR it checks every
// 250ms, so the Node turns Ready promptly.
func (k *Kubelet) statusLoop(ctx context.Context) {
	for {
		interval := k.opts.Settings.StatusUpdateFrequency
		if err := k.syncStatus(ctx); err != nil && ctx.Err() == nil {
			k.log.Info("Node status update failed", "err", err)
		}
		if !k.Ready() {
			interval = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (k *Kubelet) syncStatus(ctx context.Context) error {
	node, err := k.client.CoreV1().Nodes().Get(ctx, k.opts.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	k.mu.Lock()
	if node.Spec.PodCIDR != "" && !k.podCIDR.IsValid() {
		if p, err := netip.ParsePrefix(node.Spec.PodCIDR); err == nil {
			k.podCIDR = p
		}
	}
	last := k.lastReport
	k.mu.Unlock()

	now := time.Now()
	want := node.DeepCopy()
	k.setStatus(want, now)
	if !statusChanged(&node.Status, &want.Status) && now.Sub(last) < k.opts.Settings.StatusReportFrequency {
		k.mu.Lock()
		k.node = node
		k.mu.Unlock()
		return nil
	}
	updated, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, want, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	k.mu.Lock()
	wasReady := k.ready
	k.node, k.lastReport = updated, now
	k.ready = nodeutil.IsNodeReady(updated)
	k.mu.Unlock()
	if !wasReady && nodeutil.IsNodeReady(updated) {
		k.event(ctx, updated, "NodeReady", fmt.Sprintf("Node %s status is now: NodeReady", updated.Name))
		k.log.Info("Node Ready", "podCIDR", updated.Spec.PodCIDR)
	}
	return nil
}

// setStatus fills in the status the kubelet reports. The node is Ready
// once it has a pod CIDR: until then the (simulated) CNI has no range.
func (k *Kubelet) setStatus(node *corev1.Node, now time.Time) {
	o := k.opts
	k.mu.Lock()
	haveCIDR := k.podCIDR.IsValid() || node.Spec.PodCIDR != ""
	k.mu.Unlock()
	node.Status.Capacity = k.capacity.DeepCopy()
	node.Status.Allocatable = k.allocatable.DeepCopy()
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: o.Hardware.PrivateIP},
		{Type: corev1.NodeHostName, Address: o.NodeName},
	}
	node.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               randomID(o.Hardware.InstanceID + "machine"),
		SystemUUID:              o.Hardware.InstanceID,
		BootID:                  k.bootID,
		KernelVersion:           "6.8.0-1021-aws",
		OSImage:                 "Ubuntu 24.04.1 LTS (fleet-scheduler nodesim)",
		ContainerRuntimeVersion: "containerd://2.1.0-nodesim",
		KubeletVersion:          KubeletVersion,
		OperatingSystem:         "linux",
		Architecture:            o.Hardware.Arch,
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if !haveCIDR {
		ready = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
			Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"}
	}
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		ready,
	}
	heartbeat := metav1.NewTime(now)
	for _, c := range want {
		c.LastHeartbeatTime = heartbeat
		c.LastTransitionTime = heartbeat
		for _, old := range node.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		replaced := false
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == c.Type {
				node.Status.Conditions[i] = c
				replaced = true
			}
		}
		if !replaced {
			node.Status.Conditions = append(node.Status.Conditions, c)
		}
	}
}

// statusChanged compares statuses ignoring heartbeat times, as the
// kubelet's nodeStatusHasChanged does.
func statusChanged(a, b *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		s = s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	x, y := strip(a), strip(b)
	if len(x.Conditions) != len(y.Conditions) {
		return true
	}
	for i := range x.Conditions {
		if x.Conditions[i] != y.Conditions[i] {
			return true
		}
	}
	return !resourceListEqual(x.Capacity, y.Capacity) || !resourceListEqual(x.Allocatable, y.Allocatable) ||
		fmt.Sprint(x.Addresses) != fmt.Sprint(y.Addresses) || x.NodeInfo != y.NodeInfo
}

func resourceListEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for n, q := range a {
		if o, ok := b[n]; !ok || o.Cmp(q) != 0 {
			return false
		}
	}
	return true
}

func (k *Kubelet) event(ctx context.Context, node *corev1.Node, reason, message string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: node.Name + ".", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Node", Name: node.Name, UID: types.UID(node.Name), APIVersion: "v1",
		},
		Reason: reason, Message: message, Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "kubelet", Host: node.Name},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kubelet", ReportingInstance: node.Name,
	}
	if _, err := k.client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		k.log.V(2).Info("Recording event failed", "reason", reason, "err", err)
	}
}

// podLoop watches the pods bound to this node (the kubelet's
// spec.nodeName field selector, which the Node authorizer requires) and
// syncs each.
func (k *Kubelet) podLoop(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.opts.NodeName).String()
		}))
	podInformer := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](50*time.Millisecond, 5*time.Second),
		workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "pods-" + k.opts.NodeName})
	enqueue := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if pod, ok := obj.(*corev1.Pod); ok {
			queue.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
		}
	}
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	defer queue.ShutDown()
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		return
	}
	lister := podInformer.Lister()
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return
		}
		pod, err := lister.Pods(key.Namespace).Get(key.Name)
		if apierrors.IsNotFound(err) {
			pod, err = nil, nil
		}
		var after time.Duration
		if err == nil {
			after, err = k.syncPod(ctx, key, pod)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			k.log.V(2).Info("Pod sync failed; retrying", "pod", key, "err", err)
			queue.AddRateLimited(key)
		case after > 0:
			queue.Forget(key)
			queue.AddAfter(key, after)
		default:
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// syncPod moves one pod along; it returns when to look again.
func (k *Kubelet) syncPod(ctx context.Context, key types.NamespacedName, pod *corev1.Pod) (time.Duration, error) {
	if pod == nil {
		k.forgetPods(key)
		return 0, nil
	}
	k.mu.Lock()
	st := k.pods[pod.UID]
	k.mu.Unlock()

	if pod.DeletionTimestamp != nil {
		return k.stopPod(ctx, pod, st)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		k.release(pod.UID)
		return 0, nil
	}
	if st == nil {
		return k.admitPod(ctx, pod)
	}
	if st.rejected {
		return 0, nil
	}
	if !st.running {
		if wait := time.Until(st.admittedAt.Add(k.opts.PodStartDelay)); wait > 0 {
			return wait, nil
		}
		return k.startPod(ctx, pod, st)
	}
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return k.startPod(ctx, pod, st)
	}
	return 0, nil
}

// admitPod runs the kubelet's resource admission: the pod's requests
// against allocatable less what admitted pods request.
func (k *Kubelet) admitPod(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	k.mu.Lock()
	used := corev1.ResourceList{}
	count := int64(0)
	for _, st := range k.pods {
		if st.rejected {
			continue
		}
		count++
		for n, q := range st.requests {
			v := used[n]
			v.Add(q)
			used[n] = v
		}
	}
	var reason, message string
	if maxPods := k.allocatable.Pods().Value(); count+1 > maxPods {
		reason, message = "OutOfpods", fmt.Sprintf("Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", count, maxPods)
	}
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		req, ok := requests[n]
		if !ok || reason != "" {
			continue
		}
		u, alloc := used[n], k.allocatable[n]
		total := u.DeepCopy()
		total.Add(req)
		if total.Cmp(alloc) > 0 {
			reason = "OutOf" + string(n)
			if n == corev1.ResourceCPU {
				message = fmt.Sprintf("Node didn't have enough resource: cpu, requested: %d, used: %d, capacity: %d", req.MilliValue(), u.MilliValue(), alloc.MilliValue())
			} else {
				message = fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", n, req.Value(), u.Value(), alloc.Value())
			}
		}
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	if old, ok := k.byKey[key]; ok && old != pod.UID {
		if st := k.pods[old]; st != nil && st.ip.IsValid() {
			delete(k.ips, st.ip)
		}
		delete(k.pods, old)
	}
	st := &podState{key: key, admittedAt: time.Now(), requests: requests, rejected: reason != ""}
	k.pods[pod.UID] = st
	k.byKey[key] = pod.UID
	k.mu.Unlock()

	if reason != "" {
		k.log.Info("Pod rejected at admission", "pod", klogRef(pod), "reason", reason, "message", message)
		p := pod.DeepCopy()
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason = reason
		p.Status.Message = "Pod was rejected: " + message
		_, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			k.release(pod.UID)
		}
		return 0, err
	}
	return k.opts.PodStartDelay, nil
}

func (k *Kubelet) startPod(ctx context.Context, pod *corev1.Pod, st *podState) (time.Duration, error) {
	k.mu.Lock()
	ip := st.ip
	if !ip.IsValid() && !pod.Spec.HostNetwork {
		if !k.podCIDR.IsValid() {
			k.mu.Unlock()
			return 500 * time.Millisecond, nil // no pod network yet
		}
		var err error
		if ip, err = k.allocateIP(pod.UID); err != nil {
			k.mu.Unlock()
			return 0, err
		}
		st.ip = ip
	}
	k.mu.Unlock()

	hostIP := k.opts.Hardware.PrivateIP
	podIP := hostIP
	if !pod.Spec.HostNetwork {
		podIP = ip.String()
	}
	now := metav1.Now()
	start := metav1.NewTime(st.admittedAt)
	p := pod.DeepCopy()
	s := &p.Status
	s.Phase = corev1.PodRunning
	s.Reason, s.Message = "", ""
	s.HostIP, s.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	s.PodIP, s.PodIPs = podIP, []corev1.PodIP{{IP: podIP}}
	s.StartTime = &start
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		setPodCondition(s, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	s.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		s.InitContainerStatuses = append(s.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod.UID, c.Name),
			Ready: true, Started: ptr.To(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: start, FinishedAt: now, ContainerID: containerID(pod.UID, c.Name)}},
		})
	}
	s.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod.UID, c.Name),
			Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	k.mu.Lock()
	st.running = true
	k.mu.Unlock()
	k.log.V(1).Info("Pod running", "pod", klogRef(pod), "ip", podIP)
	return 0, nil
}

// stopPod stops the containers of a pod being deleted, reports its
// terminal phase and deletes it, as the kubelet's status manager does once
// the containers are gone.
func (k *Kubelet) stopPod(ctx context.Context, pod *corev1.Pod, st *podState) (time.Duration, error) {
	if st != nil && st.running {
		stopAt := pod.DeletionTimestamp.Add(-time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 30)) * time.Second).Add(k.opts.PodStopDelay)
		if wait := time.Until(stopAt); wait > 0 {
			return wait, nil
		}
	}
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && st != nil && st.running {
		now := metav1.Now()
		p := pod.DeepCopy()
		s := &p.Status
		s.Phase = corev1.PodSucceeded
		for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
			setPodCondition(s, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: now})
		}
		setPodCondition(s, corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse, LastTransitionTime: now})
		for i := range s.ContainerStatuses {
			cs := &s.ContainerStatuses[i]
			started := now
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt
			}
			cs.Ready, cs.Started = false, ptr.To(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
			}}
		}
		if _, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, err
	}
	k.release(pod.UID)
	k.log.V(1).Info("Pod deleted", "pod", klogRef(pod))
	return 0, nil
}

func (k *Kubelet) release(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st, ok := k.pods[uid]; ok {
		if st.ip.IsValid() {
			delete(k.ips, st.ip)
		}
		delete(k.pods, uid)
		if k.byKey[st.key] == uid {
			delete(k.byKey, st.key)
		}
	}
}

// forgetPods drops the state of a pod that is gone (deleted by someone
// else, e.g. force-deleted, or after stopPod).
func (k *Kubelet) forgetPods(key types.NamespacedName) {
	k.mu.Lock()
	uid, ok := k.byKey[key]
	k.mu.Unlock()
	if ok {
		k.release(uid)
	}
}

// allocateIP hands out the next free address of the pod CIDR, skipping
// the network and gateway addresses. Call with k.mu held.
func (k *Kubelet) allocateIP(uid types.UID) (netip.Addr, error) {
	addr := k.podCIDR.Masked().Addr().Next().Next()
	for ; k.podCIDR.Contains(addr); addr = addr.Next() {
		if _, used := k.ips[addr]; !used && addr.Next().IsValid() && k.podCIDR.Contains(addr.Next()) {
			k.ips[addr] = uid
			return addr, nil
		}
	}
	return netip.Addr{}, errors.New("pod CIDR exhausted")
}

func setPodCondition(s *corev1.PodStatus, c corev1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			}
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

func containerID(uid types.UID, name string) string {
	return "containerd://" + randomID(string(uid)+"/"+name)
}

func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	return image + "@sha256:" + hex.EncodeToString(sum[:])
}

func randomID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:16])
}

func klogRef(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// KubernetesArch maps an EC2 architecture to Kubernetes' name.
func KubernetesArch(ec2Arch string) string {
	switch ec2Arch {
	case "arm64":
		return "arm64"
	case "x86_64", "x86_64_mac":
		return "amd64"
	}
	return runtime.GOARCH
}
