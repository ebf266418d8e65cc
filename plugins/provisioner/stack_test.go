package provisioner

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/util/taints"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
	nct "github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// stack is a real kube-apiserver with the CRDs, moto seeded like the
// examples expect, and the real scheduler running the Provisioner.
type stack struct {
	t    *testing.T
	ctx  context.Context
	kube kubernetes.Interface
	karp versioned.Interface
	moto *env.Moto
	// state is the plugin's claim set, once the scheduler has built it.
	state atomic.Pointer[state]
}

const clusterName = "test-cluster"

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := env.StartMotoT(t)
	m.SetEnv(t)
	if _, err := env.SeedAWS(ctx, m.AWSConfig(), "sesacthon-dev"); err != nil {
		t.Fatal(err)
	}
	api := env.StartAPIServer(t)
	env.InstallCRDs(t, api.Config)
	jsonCfg := rest.CopyConfig(api.Config)
	jsonCfg.ContentType = "application/json"
	s := &stack{t: t, ctx: ctx, kube: api.Client, karp: versioned.NewForConfigOrDie(jsonCfg), moto: m}
	s.clusterInfo(api.Config)
	s.controlPlaneNode()
	s.applyExampleNodeClass()

	args := &config.ProvisionerArgs{
		ClusterName:             clusterName,
		BatchIdleDuration:       metav1.Duration{Duration: 300 * time.Millisecond},
		BatchMaxDuration:        metav1.Duration{Duration: 3 * time.Second},
		RegistrationTTL:         metav1.Duration{Duration: 15 * time.Minute},
		VMMemoryOverheadPercent: 0.075,
		Bootstrap:               config.BootstrapArgs{TokenTTL: metav1.Duration{Duration: 30 * time.Minute}},
	}
	env.StartScheduler(t, api.Config, Name, func(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		st, err := build(ctx, args, h, "", nil)
		if err != nil {
			return nil, err
		}
		s.state.Store(st)
		return &Provisioner{handle: h, state: st}, nil
	})
	return s
}

// run runs scenario as a subtest of t; while it runs s.t is the subtest's,
// so that the stack's helpers fail the scenario that called them.
func (s *stack) run(t *testing.T, name string, scenario func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		s.t = t
		scenario(t)
	})
}

// clusterInfo publishes kube-public/cluster-info as kubeadm init does, so
// the launch path finds the endpoint and CA.
func (s *stack) clusterInfo(cfg *rest.Config) {
	cm, err := bootstrap.ClusterInfoConfigMap(cfg.Host, cfg.CAData)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.kube.CoreV1().ConfigMaps(cm.Namespace).Create(s.ctx, cm, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// controlPlaneNode is the kubeadm control-plane node: Ready and tainted,
// so pods fail on it and PostFilter runs (it never runs with zero nodes).
func (s *stack) controlPlaneNode() {
	s.readyNode(&v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "control-plane", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
		Spec:       v1.NodeSpec{Taints: []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}},
	})
}

// readyNode creates the node with 2 CPUs, 4Gi and 110 pods, Ready, and
// takes off the not-ready taint the API server puts on a new Node, as node
// lifecycle would (no controller-manager runs here).
func (s *stack) readyNode(node *v1.Node) {
	s.t.Helper()
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
	created, err := s.kube.CoreV1().Nodes().Create(s.ctx, node, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	created.Status = v1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}
	if _, err := s.kube.CoreV1().Nodes().UpdateStatus(s.ctx, created, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := s.kube.CoreV1().Nodes().Get(s.ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints, _ = taints.DeleteTaintsByKey(n.Spec.Taints, v1.TaintNodeNotReady)
		_, err = s.kube.CoreV1().Nodes().Update(s.ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) applyExampleNodeClass() {
	class := &ec2v1.EC2NodeClass{}
	env.ReadExample(s.t, "ec2nodeclass.yaml", class)
	if _, err := s.karp.EC2V1().EC2NodeClasses().Create(s.ctx, class, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

type poolSpec struct {
	name         string
	weight       int32
	labels       map[string]string
	requirements []karpv1.NodeSelectorRequirementWithMinValues
	taints       []v1.Taint
	limits       v1.ResourceList
}

func (s *stack) createPool(p poolSpec) {
	np := nct.Pool{Name: p.name, Labels: p.labels, Requirements: p.requirements, Taints: p.taints, Weight: p.weight, Limits: p.limits}.NodePool()
	if _, err := s.karp.KarpenterV1().NodePools().Create(s.ctx, np, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("creating nodepool %s: %v", p.name, err)
	}
}

func req(key string, op v1.NodeSelectorOperator, values ...string) karpv1.NodeSelectorRequirementWithMinValues {
	return karpv1.NodeSelectorRequirementWithMinValues{Key: key, Operator: op, Values: values}
}

type podSpec struct {
	name         string
	cpu, memory  string
	nodeSelector map[string]string
	tolerations  []v1.Toleration
}

func (s *stack) createPod(p podSpec) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: metav1.NamespaceDefault},
		Spec: v1.PodSpec{
			SchedulerName: env.SchedulerName,
			NodeSelector:  p.nodeSelector,
			Tolerations:   p.tolerations,
			Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(p.cpu), v1.ResourceMemory: resource.MustParse(p.memory)},
			}}},
		},
	}
	created, err := s.kube.CoreV1().Pods(pod.Namespace).Create(s.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatalf("creating pod %s: %v", p.name, err)
	}
	return created
}

// nominated waits until the pod is nominated and returns the node name.
func (s *stack) nominated(name string) string {
	s.t.Helper()
	var node string
	s.eventually("pod "+name+" nominated", func() bool {
		pod, err := s.kube.CoreV1().Pods(metav1.NamespaceDefault).Get(s.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		node = pod.Status.NominatedNodeName
		return node != ""
	})
	return node
}

// nodeClaim waits until the NodeClaim exists and returns it.
func (s *stack) nodeClaim(name string, cond func(*karpv1.NodeClaim) bool) *karpv1.NodeClaim {
	s.t.Helper()
	var nc *karpv1.NodeClaim
	s.eventually("nodeclaim "+name, func() bool {
		got, err := s.karp.KarpenterV1().NodeClaims().Get(s.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		nc = got
		return cond == nil || cond(got)
	})
	return nc
}

// podEvent waits for an event with the reason on the pod and returns its message.
func (s *stack) podEvent(pod, reason string) string {
	s.t.Helper()
	return env.WaitEvent(s.t, s.kube, "", pod, reason, "", 60*time.Second)
}

func (s *stack) eventually(what string, cond func() bool) {
	s.t.Helper()
	err := wait.PollUntilContextTimeout(s.ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		s.t.Fatalf("timed out waiting for %s", what)
	}
}

// never checks that cond stays false for d.
func (s *stack) never(what string, d time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			s.t.Fatalf("unexpectedly: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
