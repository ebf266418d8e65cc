package keda

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

var nodeClaims = schema.GroupVersionResource{Group: "karpenter.sh", Version: "v1", Resource: "nodeclaims"}

// messages is the runbook's backlog: with 50 messages per replica, KEDA
// asks for 10.
const messages = 500

// TestRunbookChain publishes 500 messages and follows the runbook's
// picture to its end, timing each phase from the publish: scan-worker
// scaled above 3 by KEDA's HPA, NodeClaims for the pods that fit nowhere,
// every scan-worker pod Running (some on joined nodes), the queue drained
// by the Running pods, scan-worker back to 3, and no managed node left.
func TestRunbookChain(t *testing.T) {
	needSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := sandbox.Client
	dyn := dynamic.NewForConfigOrDie(sandbox.Admin)
	hpaName := "keda-hpa-" + world.ScaledObject

	if got := replicas(ctx, t); got != seed.ScanReplicas {
		t.Fatalf("scan-worker has %d replicas before the publish, want %d", got, seed.ScanReplicas)
	}
	if d := depth(t); d != 0 {
		t.Fatalf("queue %s holds %d messages before the publish", rabbitmq.Queue, d)
	}
	processedBefore := sandbox.ScanWorkers.Processed()

	// bin/sandbox publish 500
	if err := rabbitmq.Publish(ctx, sandbox.Broker.URL, rabbitmq.Queue, messages); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var phases []string
	mark := func(what string) {
		line := fmt.Sprintf("%s at %s", what, time.Since(start).Round(100*time.Millisecond))
		phases = append(phases, line)
		t.Log(line)
	}
	defer func() { t.Logf("phases after publishing %d messages: %s", messages, strings.Join(phases, "; ")) }()

	// KEDA's HPA scales scan-worker above 3 (kubectl get hpa -n scan).
	peak := int32(0)
	waitFor(ctx, t, "KEDA's HPA to scale scan-worker above 3", 3*time.Minute, func() bool {
		hpa, err := c.AutoscalingV2().HorizontalPodAutoscalers(seed.ScanNamespace).Get(ctx, hpaName, metav1.GetOptions{})
		if err != nil || hpa.Status.DesiredReplicas <= seed.ScanReplicas {
			return false
		}
		peak = max(peak, replicas(ctx, t))
		return peak > seed.ScanReplicas
	})
	mark(fmt.Sprintf("scaled 3->%d by %s", peak, hpaName))

	// The pods that fit nowhere get NodeClaims (kubectl get nodeclaims).
	var claims int
	waitFor(ctx, t, "NodeClaims for the pending scan-worker pods", 4*time.Minute, func() bool {
		list, err := dyn.Resource(nodeClaims).List(ctx, metav1.ListOptions{})
		if err == nil {
			claims = len(list.Items)
		}
		return claims > 0
	})
	mark(fmt.Sprintf("%d NodeClaims", claims))

	// Every scan-worker pod Running, some on the joined nodes
	// (kubectl get pods -n scan -l app=scan-worker -o wide).
	onJoined := 0
	maxConsumers := 0
	waitFor(ctx, t, "every scan-worker pod Running, some on joined nodes", 5*time.Minute, func() bool {
		maxConsumers = max(maxConsumers, sandbox.ScanWorkers.Consumers())
		pods := scanPods(ctx, t)
		want := replicas(ctx, t)
		running := 0
		onJoined = 0
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			running++
			if managed(ctx, t, p.Spec.NodeName) {
				onJoined++
			}
		}
		return running >= int(want) && onJoined > 0
	})
	mark(fmt.Sprintf("all Running (%d on joined nodes)", onJoined))
	if d := depth(t); d == 0 {
		t.Errorf("the queue was drained before the pods on the joined nodes ran: the chain did not need them")
	}

	// The Running pods drain the queue (bin/sandbox queue-depth).
	waitFor(ctx, t, "the queue drained", 10*time.Minute, func() bool {
		maxConsumers = max(maxConsumers, sandbox.ScanWorkers.Consumers())
		return depth(t) == 0
	})
	mark("queue drained")
	if maxConsumers <= seed.ScanReplicas {
		t.Errorf("at most %d workers consumed at once; KEDA's extra replicas never worked the queue", maxConsumers)
	}

	// KEDA's HPA goes back to 3 after its scale-down window; the emptied
	// or underused nodes are consolidated (kubectl get nodes -l managed-by=karpenter).
	waitFor(ctx, t, "scan-worker back to 3", 6*time.Minute, func() bool {
		return replicas(ctx, t) == seed.ScanReplicas
	})
	mark("back to 3")
	waitFor(ctx, t, "every managed node and NodeClaim gone", 6*time.Minute, func() bool {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "managed-by=karpenter"})
		if err != nil || len(nodes.Items) > 0 {
			return false
		}
		list, err := dyn.Resource(nodeClaims).List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0
	})
	mark("no managed node")

	if got := sandbox.ScanWorkers.Processed() - processedBefore; got != messages {
		t.Errorf("the workers acknowledged %d messages, want exactly the %d published", got, messages)
	}
	waitFor(ctx, t, "3 scan-worker pods Running", 2*time.Minute, func() bool {
		running := 0
		for _, p := range scanPods(ctx, t) {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running == seed.ScanReplicas
	})
	t.Logf("peak %d replicas, %d NodeClaims, at most %d workers consuming at once", peak, claims, maxConsumers)
}

func replicas(ctx context.Context, t *testing.T) int32 {
	t.Helper()
	d, err := sandbox.Client.AppsV1().Deployments(seed.ScanNamespace).Get(ctx, seed.ScanDeployment, metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil {
		t.Logf("deployment %s/%s: %v", seed.ScanNamespace, seed.ScanDeployment, err)
		return -1
	}
	return *d.Spec.Replicas
}

func depth(t *testing.T) int {
	t.Helper()
	d, err := rabbitmq.Depth(sandbox.Broker.URL, rabbitmq.Queue)
	if err != nil {
		t.Logf("queue depth: %v", err)
		return -1
	}
	return d
}

func scanPods(ctx context.Context, t *testing.T) []corev1.Pod {
	t.Helper()
	pods, err := sandbox.Client.CoreV1().Pods(seed.ScanNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + seed.ScanDeployment})
	if err != nil {
		t.Logf("listing scan-worker pods: %v", err)
		return nil
	}
	return pods.Items
}

// managed reports whether a node is one fleet-scheduler launched and a
// NodeClaim owns (it joined; the static workers did not come from a claim).
func managed(ctx context.Context, t *testing.T, name string) bool {
	if name == "" {
		return false
	}
	n, err := sandbox.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	if n.Labels["managed-by"] != "karpenter" {
		return false
	}
	claim, err := dynamic.NewForConfigOrDie(sandbox.Admin).Resource(nodeClaims).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	node, _, _ := unstructured.NestedString(claim.Object, "status", "nodeName")
	return node == name && world.Schedulable(n)
}

// waitFor checks every second: a check asks the API server and the broker
// several things, over minutes.
func waitFor(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	sandboxtest.WaitFor(ctx, t, what, time.Second, timeout, cond)
}
