package scanworker

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
)

// TestWorkersDrainAtTheirRate runs the workers against a real broker
// (Debian's rabbitmq-server, which `make test` installs). The pods come
// from client-go's fake clientset: what is under test is which pods
// consume and how fast, not the API server (the end-to-end test in
// test/keda runs the same workers against the sandbox's).
func TestWorkersDrainAtTheirRate(t *testing.T) {
	if _, _, err := rabbitmq.Binaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b, err := rabbitmq.Start(ctx, rabbitmq.Options{Dir: t.TempDir(), LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	if err := rabbitmq.DeclareQueue(b.URL, rabbitmq.Queue); err != nil {
		t.Fatal(err)
	}

	client := fake.NewClientset(
		pod("worker-a", corev1.PodRunning), pod("worker-b", corev1.PodRunning),
		pod("worker-pending", corev1.PodPending), pod("other", corev1.PodRunning, "app", "other"))
	const perMessage = 100 * time.Millisecond
	w := New(Options{
		Client: client, URL: b.URL, Queue: rabbitmq.Queue, Namespace: "scan", Selector: "app=scan-worker",
		ProcessTime: perMessage, Log: ktesting.NewLogger(t, ktesting.NewConfig()),
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(runCtx)
	}()
	waitFor(t, "2 consumers", func() bool { return w.Consumers() == 2 })

	const n = 30
	start := time.Now()
	if err := rabbitmq.Publish(ctx, b.URL, rabbitmq.Queue, n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the queue drained and every message acknowledged", func() bool { return w.Processed() == n })
	took := time.Since(start)
	// Two Running pods at 10 messages/s each: 30 messages take 1.5 s.
	if min := n / 2 * perMessage; took < min-perMessage {
		t.Errorf("2 workers took %s for %d messages of %s each; at their rate it takes at least %s", took, n, perMessage, min)
	}
	if d, err := rabbitmq.Depth(b.URL, rabbitmq.Queue); err != nil || d != 0 {
		t.Errorf("depth %d (%v) after the workers acknowledged everything", d, err)
	}

	// A pod being deleted stops consuming; a pod turning Running starts.
	a, _ := client.CoreV1().Pods("scan").Get(ctx, "worker-a", metav1.GetOptions{})
	now := metav1.Now()
	a.DeletionTimestamp = &now
	if _, err := client.CoreV1().Pods("scan").Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "worker-a's consumer gone", func() bool { return w.Consumers() == 1 })
	p, _ := client.CoreV1().Pods("scan").Get(ctx, "worker-pending", metav1.GetOptions{})
	p.Status.Phase = corev1.PodRunning
	if _, err := client.CoreV1().Pods("scan").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "worker-pending's consumer", func() bool { return w.Consumers() == 2 })

	// Stopped mid-message: the held message goes back to the queue.
	if err := rabbitmq.Publish(ctx, b.URL, rabbitmq.Queue, 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * perMessage)
	stop()
	<-done
	left, err := rabbitmq.Depth(b.URL, rabbitmq.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if got := int(w.Processed()) - n + left; got != 10 {
		t.Errorf("after the stop: %d acknowledged + %d back in the queue = %d, want the 10 published", int(w.Processed())-n, left, got)
	}
	if w.Consumers() != 0 {
		t.Errorf("%d consumers after Run returned", w.Consumers())
	}
}

func pod(name string, phase corev1.PodPhase, label ...string) *corev1.Pod {
	labels := map[string]string{"app": "scan-worker"}
	if len(label) == 2 {
		labels = map[string]string{label[0]: label[1]}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "scan", Labels: labels, UID: types.UID("uid-" + name)},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
