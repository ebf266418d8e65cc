package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cost"
	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/planner"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	argsScheme "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/scheme"
	configv1 "github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config/v1"
	"github.com/fleet-scheduler/fleet-scheduler/plugins/provisioner"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
	"github.com/fleet-scheduler/fleet-scheduler/test/nodeclaimtest"
)

// fleetStack is a real kube-apiserver with the CRDs, moto seeded as the
// examples expect, and the real scheduler running the Provisioner (its
// operator launches into moto). No node simulator runs: a launched claim
// stays without a node until the test registers one.
type fleetStack struct {
	*nodeclaimtest.Env
	kubeconfig string
}

func startFleetStack(t *testing.T) *fleetStack {
	e := nodeclaimtest.Start(t)
	e.Moto.SetEnv(t) // the scheduler's operator and kubectl fleet reach EC2 through the SDK's environment
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("4Gi"), v1.ResourcePods: resource.MustParse("110")}
	cp, err := e.Kube.CoreV1().Nodes().Create(e.Ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "control-plane"},
		Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp.Status = v1.NodeStatus{Capacity: rl, Allocatable: rl, Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}}}
	if _, err := e.Kube.CoreV1().Nodes().UpdateStatus(e.Ctx, cp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The example pool's instance types, limited to 4 CPUs.
	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "limited"},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{
				ObjectMeta: karpv1.ObjectMeta{Labels: map[string]string{"tier": "limited"}},
				Spec: karpv1.NodeClaimTemplateSpec{
					Requirements: []karpv1.NodeSelectorRequirementWithMinValues{nodeclaimtest.OnDemand,
						nodeclaimtest.Req("karpenter.k8s.aws/instance-family", v1.NodeSelectorOpIn, "t3", "t3a"),
						nodeclaimtest.Req("karpenter.k8s.aws/instance-size", v1.NodeSelectorOpIn, "medium", "large", "xlarge")},
					NodeClassRef: &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: nodeclaimtest.NodeClassName},
					ExpireAfter:  karpv1.NewNillableDuration(720 * time.Hour),
				},
			},
			Disruption: karpv1.Disruption{ConsolidateAfter: karpv1.NewNillableDuration(time.Second), ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized},
			Limits:     karpv1.Limits{v1.ResourceCPU: resource.MustParse("4")},
		},
	}
	if _, err := e.Karp.KarpenterV1().NodePools().Create(e.Ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The args as the scheduler decodes them from its configuration:
	// defaulted, then a shorter batch window and disruption interval.
	versioned := &configv1.ProvisionerArgs{ClusterName: nodeclaimtest.ClusterName, Region: "us-east-1",
		BatchIdleDuration: &metav1.Duration{Duration: 300 * time.Millisecond}, BatchMaxDuration: &metav1.Duration{Duration: 3 * time.Second},
		DisruptionInterval: &metav1.Duration{Duration: 2 * time.Second}}
	argsScheme.Scheme.Default(versioned)
	args := &config.ProvisionerArgs{}
	if err := argsScheme.Scheme.Convert(versioned, args, nil); err != nil {
		t.Fatal(err)
	}
	env.StartScheduler(t, e.API.Config, provisioner.Name, func(ctx context.Context, _ runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		return provisioner.New(ctx, args, h)
	})
	return &fleetStack{Env: e, kubeconfig: env.WriteKubeconfig(t, e.API.Config, "")}
}

// run runs kubectl fleet in this process against the stack.
func (s *fleetStack) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := newCommand(&options{config: genericclioptions.NewConfigFlags(true), streams: streams, keepLogs: true})
	code := run(cmd, append(args, "--kubeconfig", s.kubeconfig), streams)
	t.Logf("kubectl fleet %s -> exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), code
}

func (s *fleetStack) pod(t *testing.T, name, cpu string) {
	t.Helper()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec: v1.PodSpec{SchedulerName: env.SchedulerName, NodeSelector: map[string]string{"tier": "limited"},
			Containers: []v1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("256Mi")}}}}},
	}
	if _, err := s.Kube.CoreV1().Pods("default").Create(s.Ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (s *fleetStack) getPod(t *testing.T, name string) *v1.Pod {
	t.Helper()
	p, err := s.Kube.CoreV1().Pods("default").Get(s.Ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// One stack, the commands in the order an operator meets the states:
// a pod waiting on its claim, a pod a NodePool limit blocks, a plan that
// counts the claim in flight and the limit, a node a PDB holds, the cost.
func TestCommandsAgainstAPIServer(t *testing.T) {
	s := startFleetStack(t)
	s.pod(t, "waiter", "1")
	var claim string
	nodeclaimtest.Eventually(t, time.Minute, "waiter nominated", func() bool {
		claim = s.getPod(t, "waiter").Status.NominatedNodeName
		return claim != ""
	})
	nc := s.WaitClaim(t, claim, "launched", func(nc *karpv1.NodeClaim) bool {
		return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched)
	})

	t.Run("explain a pod waiting on its claim", func(t *testing.T) {
		out, code := s.run(t, "explain", "pod", "waiter", "-n", "default")
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		mustContain(t, out, "Nominated to NodeClaim "+claim+" (nodepool limited), Launched, its node not registered yet",
			"launched as "+nc.Labels[v1.LabelInstanceTypeStable], "binds as soon as the node registers")
	})

	t.Run("explain a pod a NodePool limit blocks", func(t *testing.T) {
		s.pod(t, "blocked", "3")
		s.WaitEvent(t, "blocked", "FailedProvisioning")
		out, code := s.run(t, "explain", "pod", "blocked", "-n", "default")
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		held := nc.Status.Capacity[v1.ResourceCPU]
		mustContain(t, out, "Not nominated", `nodepool "limited": its limits leave no room for another node`,
			fmt.Sprintf("limited: cpu %s/4", held.String()), "<- in the way")
		if _, code := s.run(t, "explain", "pod", "no-such-pod", "-n", "default"); code != ExitError {
			t.Errorf("explain of a missing pod: exit %d, want %d", code, ExitError)
		}
	})

	t.Run("plan counts the claim in flight and the limit", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "web.yaml")
		if err := os.WriteFile(path, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      schedulerName: fleet-scheduler
      nodeSelector: {tier: limited}
      containers: [{name: w, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 500m, memory: 256Mi}}}]
`), 0o600); err != nil {
			t.Fatal(err)
		}
		out, code := s.run(t, "plan", "-f", path, "-o", "json")
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		var plan planner.Plan
		if err := json.Unmarshal([]byte(out), &plan); err != nil {
			t.Fatal(err)
		}
		// The waiter's claim holds 1 CPU of its ~1.93: one web pod joins
		// it; the other needs a claim of its own, which the 4-CPU limit
		// allows (2 left) as one more 2-CPU node.
		if len(plan.InFlight) != 1 || plan.InFlight[0].Name != claim || len(plan.InFlight[0].Pods) != 1 {
			t.Errorf("in flight %+v, want one web pod on %s", plan.InFlight, claim)
		}
		if len(plan.NodeClaims) != 1 || len(plan.NodeClaims[0].Pods) != 1 || plan.NodeClaims[0].InstanceTypes[0] != "t3a.medium" {
			t.Errorf("new claims %+v, want one t3a.medium for the other web pod", plan.NodeClaims)
		}
		if price, _ := pricing.OnDemand("t3a.medium"); plan.PricePerHour != price {
			t.Errorf("pricePerHour %v, want t3a.medium's %v", plan.PricePerHour, price)
		}
		claims, err := s.Karp.KarpenterV1().NodeClaims().List(s.Ctx, metav1.ListOptions{})
		if err != nil || len(claims.Items) != 1 {
			t.Errorf("the plan created something: %d claims (%v)", len(claims.Items), err)
		}
	})

	t.Run("explain a node a PodDisruptionBudget holds", func(t *testing.T) {
		s.RegisterNode(t, claim, nil)
		s.SetNodeReady(t, claim, true)
		// No kube-controller-manager runs here: take the not-ready taint
		// TaintNodesByCondition put on the new node off, as node lifecycle
		// does once the node is Ready.
		s.UpdateNode(t, claim, false, func(n *v1.Node) {
			var keep []v1.Taint
			for _, taint := range n.Spec.Taints {
				if taint.Key != v1.TaintNodeNotReady {
					keep = append(keep, taint)
				}
			}
			n.Spec.Taints = keep
		})
		nodeclaimtest.Eventually(t, time.Minute, "waiter bound to its claim's node", func() bool {
			return s.getPod(t, "waiter").Spec.NodeName == claim
		})
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "hold", Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptrIntStr(0), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "waiter"}}}}
		// No disruption controller runs here: the budget keeps the status
		// the API gives a new one, no disruption allowed, which is also
		// what the controller computes for maxUnavailable 0.
		if _, err := s.Kube.PolicyV1().PodDisruptionBudgets("default").Create(s.Ctx, pdb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out, code := s.run(t, "explain", "node", claim)
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		mustContain(t, out, "NodeClaim "+claim+", nodepool limited", "policy WhenEmptyOrUnderutilized, consolidateAfter 1s",
			"Held back: PodDisruptionBudget default/hold allows no disruption of pod default/waiter now",
			"Disruption budget: budgets[0]")
		out, _ = s.run(t, "explain", "node", "control-plane")
		mustContain(t, out, "not managed by fleet-scheduler")
	})

	t.Run("cost sums the managed nodes", func(t *testing.T) {
		out, code := s.run(t, "cost", "-o", "json")
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		var r cost.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		cur, err := s.Karp.KarpenterV1().NodeClaims().Get(s.Ctx, claim, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		price, ok := pricing.OnDemand(cur.Labels[v1.LabelInstanceTypeStable])
		if !ok || len(r.Nodes) != 1 || r.PricePerHour != price || r.Unpriced != 0 {
			t.Errorf("cost %+v, want the one node at %v", r, price)
		}
		if len(r.Groups) != 1 || r.Groups[0].NodePool != "limited" || r.Groups[0].CapacityType != "on-demand" {
			t.Errorf("groups %+v", r.Groups)
		}
		// waiter's 1 CPU of the node's 2 allocatable.
		if r.Nodes[0].CPUUsed != 0.5 {
			t.Errorf("cpu used %v, want 0.5", r.Nodes[0].CPUUsed)
		}
		table, _ := s.run(t, "cost")
		mustContain(t, table, "TOTAL", fmt.Sprintf("%.4f", price))
	})
}

func ptrIntStr(i int) *intstr.IntOrString { v := intstr.FromInt32(int32(i)); return &v }
