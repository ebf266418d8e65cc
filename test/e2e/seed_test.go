package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

// The seed's tests run last: they change the world. Each is one function;
// the scale-down test goes after TestSeedScaleUp.

var nodeClaims = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}

// TestSeedScaleUp is the runbook's "Pending Pod" test: scale scan-worker
// from 3 to 20; pods go Pending, fleet-scheduler creates NodeClaims and
// launches one instance per claim, the instances join from their user
// data, and all 20 pods run within 60s, packed onto few nodes.
func TestSeedScaleUp(t *testing.T) {
	if _, err := kubectlFleet(); err != nil { // built before the clock starts
		t.Fatal(err)
	}
	ctx := testContext(t, 5*time.Minute)
	c := sandbox.Client
	if n := runningScanWorkers(ctx, t); n != seed.ScanReplicas {
		t.Fatalf("%d scan-worker pods running before the scale, want %d", n, seed.ScanReplicas)
	}
	static := map[string]bool{sandbox.ControlPlaneNode: true}
	for _, w := range sandbox.Workers {
		static[w] = true
	}

	// kubectl fleet plan first: what scaling to 20 would launch.
	plan := planScanWorker(ctx, t, 20)

	// kubectl scale deployment scan-worker -n scan --replicas=20
	scale(ctx, t, 20)
	start := time.Now()
	sawPending := false
	waitFor(ctx, t, "20/20 scan-worker pods Running", 3*time.Minute, func() bool {
		pods, err := c.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
		if err != nil {
			return false
		}
		running := 0
		for _, p := range pods.Items {
			switch p.Status.Phase {
			case corev1.PodPending:
				sawPending = true
			case corev1.PodRunning:
				running++
			}
		}
		return running >= 20
	})
	took := time.Since(start)
	t.Logf("20/20 running %s after the scale (pending seen: %t)", took.Round(100*time.Millisecond), sawPending)
	if took > 60*time.Second {
		t.Errorf("20/20 running took %s; the seed's goal is 60s", took)
	}

	// kubectl get nodeclaims: type, zone and node of each.
	claims, err := dynamic.NewForConfigOrDie(sandbox.Admin).Resource(nodeClaims).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Items) == 0 {
		t.Fatal("no NodeClaims")
	}
	claimNodes := map[string]string{} // node -> claim
	for _, cl := range claims.Items {
		node, _, _ := unstructured.NestedString(cl.Object, "status", "nodeName")
		labels := cl.GetLabels()
		t.Logf("nodeclaim %s: %s in %s, node %s", cl.GetName(), labels[corev1.LabelInstanceTypeStable], labels[corev1.LabelTopologyZone], node)
		if node == "" {
			t.Errorf("nodeclaim %s has no node", cl.GetName())
			continue
		}
		claimNodes[node] = cl.GetName()
	}
	comparePlan(t, plan, claims.Items)
	checkCost(ctx, t, claims.Items)

	// aws ec2 describe-instances: one running instance per NodeClaim, tagged with it.
	byClaim := runningInstancesByClaim(ctx, t)
	total := 0
	for claim, ids := range byClaim {
		total += len(ids)
		if len(ids) != 1 {
			t.Errorf("claim %s has %d running instances %v", claim, len(ids), ids)
		}
	}
	if total != len(claims.Items) {
		t.Errorf("%d running tagged instances for %d NodeClaims", total, len(claims.Items))
	}
	for _, cl := range claims.Items {
		if len(byClaim[cl.GetName()]) != 1 {
			t.Errorf("NodeClaim %s: instances %v", cl.GetName(), byClaim[cl.GetName()])
		}
	}

	// kubectl get nodes -l managed-by=karpenter: exactly the claims' nodes.
	managed, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "managed-by=karpenter"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range managed.Items {
		if _, ok := claimNodes[n.Name]; !ok {
			t.Errorf("managed node %s has no NodeClaim", n.Name)
		}
	}
	if len(managed.Items) != len(claimNodes) {
		t.Errorf("%d managed nodes for %d claimed nodes", len(managed.Items), len(claimNodes))
	}

	// Every pod that could not stay on the old nodes runs on a claim's node,
	// and the pods are packed: no claim's node is empty, and 17 extra pods
	// do not make many nodes.
	pods, err := c.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		perNode[p.Spec.NodeName]++
		if !static[p.Spec.NodeName] {
			if _, ok := claimNodes[p.Spec.NodeName]; !ok {
				t.Errorf("pod %s runs on %s, which is neither an old node nor a NodeClaim's", p.Name, p.Spec.NodeName)
			}
		}
	}
	for node := range claimNodes {
		if perNode[node] == 0 {
			t.Errorf("claim node %s runs no scan-worker: launched for nothing", node)
		}
	}
	if len(claimNodes) > 8 {
		t.Errorf("17 extra pods took %d new nodes: not packed", len(claimNodes))
	}
	t.Logf("pods per node: %v", sortedCounts(perNode))
	checkRunbookQueries(ctx, t, len(managed.Items))

	// Back to 3: the simulator's kubelets stop and delete the pods.
	scale(ctx, t, seed.ScanReplicas)
	waitFor(ctx, t, "scan-worker back to 3 pods", time.Minute, func() bool {
		pods, err := c.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
		return err == nil && len(pods.Items) == seed.ScanReplicas
	})
}

// TestSeedScaleDown is the runbook's node scale-down test, after the
// scale-up: scan-worker to 1 replica, and within consolidateAfter (30s) plus
// the drain every node fleet-scheduler launched is gone - Node, NodeClaim
// and instance - while the remaining pod keeps running.
func TestSeedScaleDown(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	c := sandbox.Client
	managed := func() int {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "managed-by=karpenter"})
		if err != nil {
			return -1
		}
		return len(nodes.Items)
	}
	if managed() == 0 {
		t.Fatal("no managed nodes: TestSeedScaleUp left none to scale down")
	}

	// kubectl scale deployment scan-worker -n scan --replicas=1
	scale(ctx, t, 1)
	start := time.Now()
	claimClient := dynamic.NewForConfigOrDie(sandbox.Admin).Resource(nodeClaims)
	waitFor(ctx, t, "every managed node, claim and instance gone", 4*time.Minute, func() bool {
		claims, err := claimClient.List(ctx, metav1.ListOptions{})
		if err != nil || len(claims.Items) > 0 || managed() != 0 {
			return false
		}
		return len(runningInstancesByClaim(ctx, t)) == 0
	})
	took := time.Since(start)
	t.Logf("managed nodes gone %s after the scale to 1", took.Round(100*time.Millisecond))
	// The seed's goal is consolidateAfter (30s) + drain, under 90s; leave
	// room for a loaded CI machine.
	if took > 120*time.Second {
		t.Errorf("scale-down took %s; the seed's goal is under 90s", took)
	}
	if n := runningScanWorkers(ctx, t); n != 1 {
		t.Errorf("%d scan-worker pods running after the scale-down, want 1", n)
	}
}

func scale(ctx context.Context, t *testing.T, replicas int32) {
	t.Helper()
	deployments := sandbox.Client.AppsV1().Deployments(seed.ScanNamespace)
	if _, err := deployments.UpdateScale(ctx, seed.ScanDeployment, &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: seed.ScanDeployment, Namespace: seed.ScanNamespace},
		Spec:       autoscalingv1.ScaleSpec{Replicas: replicas},
	}, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale to %d: %v", replicas, err)
	}
}

// runningInstancesByClaim lists running instances tagged
// karpenter.sh/nodeclaim, by claim.
func runningInstancesByClaim(ctx context.Context, t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	running := ec2types.Filter{Name: aws.String("instance-state-name"), Values: []string{"running"}}
	for claim, instances := range sandboxtest.InstancesByClaim(ctx, t, sandbox.EC2, running) {
		for _, i := range instances {
			out[claim] = append(out[claim], aws.ToString(i.InstanceId))
		}
	}
	return out
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}
