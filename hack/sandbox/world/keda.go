package world

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/keda"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/scanworker"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// The runbook's chain in the sandbox (Options.KEDA).
const (
	// BrokerSecret holds the broker's URL for the TriggerAuthentication
	// (manifests/examples/keda).
	BrokerSecret = "rabbitmq-scan"
	// ScaledObject is scan-worker's; KEDA names its HPA keda-hpa-<name>.
	ScaledObject = "scan-worker"
	// BrokerURLFile, under Dir, holds the broker's AMQP URL (mode 0600)
	// for `bin/sandbox publish` and `queue-depth`.
	BrokerURLFile = "rabbitmq/amqp-url"
)

var scaledObjects = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}

// kedaBoot carries the chain's background start: the broker and KEDA's
// build begin with the infrastructure, KEDA itself once the cluster is
// seeded.
type kedaBoot struct {
	broker chan error
	build  chan error
	keda   chan error
	bins   keda.Binaries
	mod    keda.Module
}

// background runs f in a goroutine that Stop waits for, with a context
// that ends with ctx or when Stop begins, whichever is first.
func (w *World) background(ctx context.Context, f func(context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(w.ctx, cancel)
	w.backgroundWG.Add(1)
	go func() {
		defer w.backgroundWG.Done()
		defer cancel()
		defer stop()
		f(ctx)
	}()
}

// startBrokerAndBuild starts rabbitmq-server and builds KEDA, both in the
// background.
func (w *World) startBrokerAndBuild(ctx context.Context, b *boot) {
	kb := &kedaBoot{broker: make(chan error, 1), build: make(chan error, 1), keda: make(chan error, 1)}
	b.keda = kb
	w.background(ctx, func(ctx context.Context) {
		broker, err := rabbitmq.Start(ctx, rabbitmq.Options{Dir: filepath.Join(w.Dir, "rabbitmq"), LogDir: b.logs})
		if err == nil {
			w.Broker = broker
			for _, p := range broker.Processes() {
				w.watch(p)
			}
			err = errors.Join(rabbitmq.DeclareQueue(broker.URL, rabbitmq.Queue),
				os.WriteFile(filepath.Join(w.Dir, BrokerURLFile), []byte(broker.URL+"\n"), 0o600))
			w.progress("rabbitmq-server at amqp://127.0.0.1:%d (user %s, queue %s declared)", broker.Port, rabbitmq.User, rabbitmq.Queue)
		}
		kb.broker <- err
	})
	w.background(ctx, func(ctx context.Context) {
		var err error
		kb.bins, kb.mod, err = keda.EnsureBinaries(ctx, w.Root, w.progress)
		kb.build <- err
	})
}

// startKEDA starts KEDA in the background once its build is done; the
// cluster must be seeded (the controller manager running).
func (w *World) startKEDA(ctx context.Context, b *boot) {
	kb := b.keda
	w.background(ctx, func(ctx context.Context) {
		if err := <-kb.build; err != nil {
			kb.keda <- fmt.Errorf("building KEDA: %w", err)
			return
		}
		k, err := keda.Start(ctx, keda.Options{
			Dir: filepath.Join(w.Dir, "keda"), LogDir: b.logs,
			Binaries: kb.bins, Module: kb.mod,
			Admin: w.Admin, Applier: b.applier, Server: w.Server, CAData: w.PKI.CAData,
			HostIP: controlPlaneIP, NodeName: controlPlaneNode, Forward: w.Proxy.Forward,
			ClusterName: ClusterName, Env: baseEnv(), Progress: w.progress,
		})
		if k != nil {
			w.Autoscaling = k
			for _, p := range k.Processes() {
				w.watch(p)
			}
		}
		kb.keda <- err
	})
}

// startChain waits for the broker and KEDA, then gives scan-worker its
// broker Secret, TriggerAuthentication and ScaledObject, starts the
// simulated workers and waits until KEDA's HPA reads the queue.
func (w *World) startChain(ctx context.Context, b *boot) error {
	if err := errors.Join(<-b.keda.broker, <-b.keda.keda); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: BrokerSecret, Namespace: seed.ScanNamespace},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"host": w.Broker.URL},
	}
	if _, err := w.Client.CoreV1().Secrets(seed.ScanNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Secret %s/%s: %w", seed.ScanNamespace, BrokerSecret, err)
	}
	objs, err := seed.ReadManifests(
		filepath.Join(w.Root, "manifests", "examples", "keda", "triggerauthentication.yaml"),
		filepath.Join(w.Root, "manifests", "examples", "keda", "scaledobject.yaml"))
	if err != nil {
		return err
	}
	if err := b.applier.Create(ctx, objs); err != nil {
		return err
	}
	w.ScanWorkers = scanworker.New(scanworker.Options{
		Client: w.Client, URL: w.Broker.URL, Queue: rabbitmq.Queue,
		Namespace: seed.ScanNamespace, Selector: "app=" + seed.ScanDeployment,
		Log: klog.Background().WithName("scanworker"),
	})
	w.workersDone = make(chan struct{})
	go func() {
		defer close(w.workersDone)
		_ = w.ScanWorkers.Run(w.ctx)
	}()
	dyn, err := dynamic.NewForConfig(w.Admin)
	if err != nil {
		return err
	}
	if err := w.waitScaling(ctx, dyn, 3*time.Minute); err != nil {
		return err
	}
	w.progress("ScaledObject %s/%s Ready; HPA keda-hpa-%s reads the %s queue; simulated workers take %s per message per Running pod",
		seed.ScanNamespace, ScaledObject, ScaledObject, rabbitmq.Queue, scanworker.DefaultProcessTime)
	return nil
}

// waitScaling waits until the ScaledObject is Ready and its HPA has read
// the external metric (ScalingActive).
func (w *World) waitScaling(ctx context.Context, dyn dynamic.Interface, timeout time.Duration) error {
	why := ""
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		so, err := dyn.Resource(scaledObjects).Namespace(seed.ScanNamespace).Get(ctx, ScaledObject, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		if ok, msg := condition(so, "Ready"); !ok {
			why = "ScaledObject not Ready: " + msg
			return false, nil
		}
		hpa, err := w.Client.AutoscalingV2().HorizontalPodAutoscalers(seed.ScanNamespace).Get(ctx, "keda-hpa-"+ScaledObject, metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		for _, c := range hpa.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive {
				why = fmt.Sprintf("HPA ScalingActive=%s %s: %s", c.Status, c.Reason, c.Message)
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		why = "HPA has no ScalingActive condition yet"
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("KEDA is not scaling scan-worker after %s: %s (see %s)", timeout, why, filepath.Join(w.Dir, "logs", "keda-operator.log"))
	}
	return nil
}

// condition reports whether the object's status condition typ is True,
// and its message.
func condition(obj *unstructured.Unstructured, typ string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			msg, _ := m["message"].(string)
			return m["status"] == "True", msg
		}
	}
	return false, "no " + typ + " condition yet"
}
