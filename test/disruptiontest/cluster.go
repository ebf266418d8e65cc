// Package disruptiontest is the harness the scale-down tests share: a real
// kube-apiserver with the CRDs, the real ReplicaSet and PodDisruptionBudget
// controllers of kube-controller-manager running in process, and a tiny
// kubelet stand-in, since no kubelet runs: it marks bound pods Running and
// Ready, and removes pods being deleted (after a delay a pod may ask for
// with an annotation), as a kubelet does once their containers stop.
//
// Start alone (the apiserver with the CRDs, clients, informer factories and
// an event recorder) also serves the static NodePool test.
//
// It is for tests only: it starts servers and calls t.Fatal.
package disruptiontest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	pdbcontroller "k8s.io/kubernetes/pkg/controller/disruption"
	"k8s.io/kubernetes/pkg/controller/replicaset"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	clientscheme "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/scheme"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/informers/externalversions"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// ExitAfterAnnotation on a pod makes the kubelet stand-in wait this long
// (a Go duration) after the pod's deletion began before removing it, as a
// slow container shutdown would.
const ExitAfterAnnotation = "test.fleet-scheduler.io/exit-after"

// Cluster is one apiserver with the CRDs and the controllers above.
type Cluster struct {
	Ctx    context.Context
	Config *rest.Config
	Kube   kubernetes.Interface
	Karp   versioned.Interface
	// KubeInformers and KarpInformers are not started: the test registers
	// what it needs, then calls Start.
	KubeInformers informers.SharedInformerFactory
	KarpInformers externalversions.SharedInformerFactory
	// Recorder writes events (events.k8s.io/v1) to the apiserver.
	Recorder events.EventRecorder

	deletions sync.Map // pod UID -> when the kubelet stand-in saw its deletion
}

// Start brings up the apiserver and the CRDs.
func Start(t *testing.T) *Cluster {
	t.Helper()
	api := env.StartAPIServer(t)
	env.InstallCRDs(t, api.Config)
	// Registered after the apiserver's teardown, so it runs first: watches
	// end before the server shuts down.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	jsonCfg := rest.CopyConfig(api.Config)
	jsonCfg.ContentType = "application/json"
	karp := versioned.NewForConfigOrDie(jsonCfg)
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: api.Client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	t.Cleanup(broadcaster.Shutdown)
	return &Cluster{
		Ctx: ctx, Config: api.Config, Kube: api.Client, Karp: karp,
		KubeInformers: informers.NewSharedInformerFactory(api.Client, 0),
		KarpInformers: externalversions.NewSharedInformerFactory(karp, 0),
		Recorder:      broadcaster.NewRecorder(clientscheme.Scheme, "fleet-scheduler"),
	}
}

// RunControllers starts the ReplicaSet and PodDisruptionBudget controllers
// and the kubelet stand-in on the cluster's own informers. Call before Start.
func (c *Cluster) RunControllers(t *testing.T) {
	t.Helper()
	core, apps := c.KubeInformers.Core().V1(), c.KubeInformers.Apps().V1()
	rsc := replicaset.NewReplicaSetController(c.Ctx, apps.ReplicaSets(), core.Pods(), c.Kube, replicaset.BurstReplicas)
	disc := c.Kube.Discovery()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	scales, err := scale.NewForConfig(c.Config, mapper, dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(disc))
	if err != nil {
		t.Fatal(err)
	}
	pdbc := pdbcontroller.NewDisruptionController(c.Ctx, core.Pods(), c.KubeInformers.Policy().V1().PodDisruptionBudgets(),
		core.ReplicationControllers(), apps.ReplicaSets(), apps.Deployments(), apps.StatefulSets(), c.Kube, mapper, scales, disc)
	if _, err := core.Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { go c.kubelet(obj) },
		UpdateFunc: func(_, obj any) { go c.kubelet(obj) },
	}); err != nil {
		t.Fatal(err)
	}
	go rsc.Run(c.Ctx, 2)
	go pdbc.Run(c.Ctx, 2)
}

// Start starts the informers and waits for their caches.
func (c *Cluster) Start(t *testing.T) {
	t.Helper()
	c.KubeInformers.Start(c.Ctx.Done())
	c.KarpInformers.Start(c.Ctx.Done())
	c.KubeInformers.WaitForCacheSync(c.Ctx.Done())
	c.KarpInformers.WaitForCacheSync(c.Ctx.Done())
}

// kubelet is the stand-in: a bound pod starts running and becomes Ready; a
// pod being deleted is removed once its ExitAfterAnnotation has passed.
func (c *Cluster) kubelet(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	ctx := c.Ctx
	if pod.DeletionTimestamp != nil {
		if d, err := time.ParseDuration(pod.Annotations[ExitAfterAnnotation]); err == nil {
			// When the stand-in first saw the deletion (the deletion
			// timestamp has whole seconds only).
			first, _ := c.deletions.LoadOrStore(pod.UID, time.Now())
			started := first.(time.Time)
			select {
			case <-time.After(time.Until(started.Add(d))):
			case <-ctx.Done():
				return
			}
		}
		_ = c.Kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
		})
		return
	}
	if pod.Status.Phase == v1.PodRunning {
		return
	}
	p := pod.DeepCopy()
	p.Status.Phase = v1.PodRunning
	now := metav1.Now()
	p.Status.StartTime = &now
	for _, ct := range []v1.PodConditionType{v1.PodReady, v1.ContainersReady} {
		p.Status.Conditions = append(p.Status.Conditions, v1.PodCondition{Type: ct, Status: v1.ConditionTrue, LastTransitionTime: now})
	}
	_, _ = c.Kube.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
}

// NodeSpec describes a node a test makes.
type NodeSpec struct {
	Name   string
	Pool   string // empty: a node fleet-scheduler does not manage
	CPU    string // default "4"
	Memory string // default "16Gi"
	Labels map[string]string
	Taints []v1.Taint
	// Annotations go on the Node.
	Annotations map[string]string
	// ClaimAnnotations go on the NodeClaim.
	ClaimAnnotations map[string]string
	// ExpireAfter and TerminationGracePeriod of the claim.
	ExpireAfter            string
	TerminationGracePeriod time.Duration
}

// CreateNode makes a Ready Node with capacity, as a kubelet registers it,
// and for a pool also its NodeClaim: launched, registered and initialized,
// linked the way registration links them, with the termination finalizer.
func (c *Cluster) CreateNode(t *testing.T, s NodeSpec) (*v1.Node, *karpv1.NodeClaim) {
	t.Helper()
	labels := nodeLabels(s)
	providerID := fmt.Sprintf("aws:///us-east-1a/i-%x", time.Now().UnixNano())
	var nc *karpv1.NodeClaim
	if s.Pool != "" {
		nc = c.createClaim(t, s, labels, providerID)
	}
	return c.createNode(t, s, labels, providerID, nc), nc
}

// Register brings up the node of a NodeClaim that something else created
// (a replacement): the Node named after the claim, with s's capacity and
// labels, and the claim launched, registered and initialized.
func (c *Cluster) Register(t *testing.T, nc *karpv1.NodeClaim, s NodeSpec) (*v1.Node, *karpv1.NodeClaim) {
	t.Helper()
	s.Name, s.Pool = nc.Name, nc.Labels[karpv1.NodePoolLabelKey]
	labels := nodeLabels(s)
	providerID := fmt.Sprintf("aws:///us-east-1a/i-%x", time.Now().UnixNano())
	nc, err := c.Karp.KarpenterV1().NodeClaims().Get(c.Ctx, nc.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range labels {
		nc.Labels[k] = v
	}
	if nc, err = c.Karp.KarpenterV1().NodeClaims().Update(c.Ctx, nc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	nc = c.initialize(t, nc, s.Name, providerID)
	return c.createNode(t, s, labels, providerID, nc), nc
}

func nodeLabels(s NodeSpec) map[string]string {
	labels := map[string]string{v1.LabelHostname: s.Name, v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64"}
	for k, v := range s.Labels {
		labels[k] = v
	}
	if s.Pool != "" {
		labels[karpv1.NodePoolLabelKey] = s.Pool
		labels[karpv1.NodeRegisteredLabelKey] = "true"
		labels[karpv1.NodeInitializedLabelKey] = "true"
	}
	return labels
}

func (c *Cluster) createNode(t *testing.T, s NodeSpec, labels map[string]string, providerID string, nc *karpv1.NodeClaim) *v1.Node {
	t.Helper()
	cpu, mem := s.CPU, s.Memory
	if cpu == "" {
		cpu = "4"
	}
	if mem == "" {
		mem = "16Gi"
	}
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem), v1.ResourcePods: resource.MustParse("110")}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Labels: labels, Annotations: s.Annotations},
		Spec:       v1.NodeSpec{Taints: s.Taints},
	}
	if nc != nil {
		node.Spec.ProviderID = providerID
		node.OwnerReferences = []metav1.OwnerReference{{APIVersion: karpv1.SchemeGroupVersion.String(), Kind: "NodeClaim", Name: nc.Name, UID: nc.UID}}
	}
	node, err := c.Kube.CoreV1().Nodes().Create(c.Ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = v1.NodeStatus{
		Capacity: rl, Allocatable: rl,
		Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}},
	}
	if node, err = c.Kube.CoreV1().Nodes().UpdateStatus(c.Ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The TaintNodesByCondition admission plugin tainted the new node
	// not-ready; node lifecycle (not running here) clears that once the
	// node is Ready.
	node.Spec.Taints = s.Taints
	if node, err = c.Kube.CoreV1().Nodes().Update(c.Ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return node
}

func (c *Cluster) createClaim(t *testing.T, s NodeSpec, labels map[string]string, providerID string) *karpv1.NodeClaim {
	t.Helper()
	np, err := c.Karp.KarpenterV1().NodePools().Get(c.Ctx, s.Pool, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pool %s: %v", s.Pool, err)
	}
	nc := np.Spec.Template.ToNodeClaim()
	nc.Name = s.Name
	nc.Labels = labels
	nc.Annotations = s.ClaimAnnotations
	nc.Finalizers = []string{karpv1.TerminationFinalizer}
	nc.OwnerReferences = []metav1.OwnerReference{{APIVersion: karpv1.SchemeGroupVersion.String(), Kind: "NodePool", Name: np.Name, UID: np.UID}}
	if s.ExpireAfter != "" {
		nc.Spec.ExpireAfter = karpv1.MustParseNillableDuration(s.ExpireAfter)
	}
	if s.TerminationGracePeriod > 0 {
		nc.Spec.TerminationGracePeriod = &metav1.Duration{Duration: s.TerminationGracePeriod}
	}
	nc, err = c.Karp.KarpenterV1().NodeClaims().Create(c.Ctx, nc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.initialize(t, nc, s.Name, providerID)
}

// initialize marks the claim launched, registered, initialized and ready
// as node, as the lifecycle controllers do.
func (c *Cluster) initialize(t *testing.T, nc *karpv1.NodeClaim, node, providerID string) *karpv1.NodeClaim {
	t.Helper()
	nc.Status.NodeName = node
	nc.Status.ProviderID = providerID
	for _, ct := range []string{karpv1.ConditionTypeLaunched, karpv1.ConditionTypeRegistered, karpv1.ConditionTypeInitialized, karpv1.ConditionTypeReady} {
		nc.SetCondition(metav1.Condition{Type: ct, Status: metav1.ConditionTrue, Reason: ct})
	}
	nc, err := c.Karp.KarpenterV1().NodeClaims().UpdateStatus(c.Ctx, nc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// Pool makes a NodePool with the given disruption settings.
func (c *Cluster) Pool(t *testing.T, name string, d karpv1.Disruption) *karpv1.NodePool {
	t.Helper()
	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{Spec: karpv1.NodeClaimTemplateSpec{
				Requirements: []karpv1.NodeSelectorRequirementWithMinValues{{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}}},
				NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
			}},
			Disruption: d,
		},
	}
	np, err := c.Karp.KarpenterV1().NodePools().Create(c.Ctx, np, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return np
}

// PodSpec describes a pod a test makes.
type PodSpec struct {
	Name, Namespace string
	CPU             string // default "100m"
	Annotations     map[string]string
	Labels          map[string]string
	Tolerations     []v1.Toleration
	Owner           *metav1.OwnerReference
	Priority        string // priority class name
	// TerminationGracePeriodSeconds defaults to 30, as the API does.
	TerminationGracePeriodSeconds *int64
}

// Pod builds a pod that only a test binds (its scheduler is "manual").
func Pod(s PodSpec) *v1.Pod {
	cpu := s.CPU
	if cpu == "" {
		cpu = "100m"
	}
	ns := s.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: ns, Annotations: s.Annotations, Labels: s.Labels},
		Spec: v1.PodSpec{
			SchedulerName:                 "manual",
			Tolerations:                   s.Tolerations,
			PriorityClassName:             s.Priority,
			TerminationGracePeriodSeconds: s.TerminationGracePeriodSeconds,
			Containers: []v1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("64Mi")}}}},
		},
	}
	if s.Owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*s.Owner}
	}
	return p
}

// BindPod creates the pod and binds it to the node through the Binding
// subresource, as the scheduler does. A mirror pod is created bound, as a
// kubelet creates it.
func (c *Cluster) BindPod(t *testing.T, pod *v1.Pod, node string) *v1.Pod {
	t.Helper()
	if _, mirror := pod.Annotations["kubernetes.io/config.mirror"]; mirror {
		pod.Spec.NodeName = node
	}
	created, err := c.Kube.CoreV1().Pods(pod.Namespace).Create(c.Ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.NodeName != "" {
		return created
	}
	err = c.Kube.CoreV1().Pods(pod.Namespace).Bind(c.Ctx, &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: created.Name, Namespace: created.Namespace, UID: created.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// Eventually polls cond every 100ms until it holds or timeout passes.
func (c *Cluster) Eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(c.Ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return cond()
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// Events lists the events.k8s.io events regarding the named object of kind.
func (c *Cluster) Events(t *testing.T, kind, name string) []string {
	t.Helper()
	var out []string
	for _, e := range env.Events(c.Ctx, t, c.Kube, kind, name, "") {
		out = append(out, e.Reason+": "+e.Note)
	}
	return out
}

// WaitEvent waits for an event regarding kind/name with the reason and
// returns it as "reason: note".
func (c *Cluster) WaitEvent(t *testing.T, kind, name, reason string) string {
	t.Helper()
	return reason + ": " + env.WaitEvent(t, c.Kube, kind, name, reason, "", 20*time.Second)
}

// CountEvents counts the events regarding kind/name with the reason, after
// giving the recorder a second to flush.
func (c *Cluster) CountEvents(t *testing.T, kind, name, reason string) int {
	t.Helper()
	time.Sleep(time.Second)
	return len(env.Events(c.Ctx, t, c.Kube, kind, name, reason))
}

// Gone reports whether the NodeClaim no longer exists.
func (c *Cluster) Gone(name string) (bool, error) {
	_, err := c.Karp.KarpenterV1().NodeClaims().Get(c.Ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}
