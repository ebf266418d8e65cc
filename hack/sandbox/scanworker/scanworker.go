// Package scanworker plays scan-worker's containers, which the node
// simulator does not run: while a scan-worker pod is Running and not being
// deleted, one AMQP consumer on its own connection (named after the pod)
// takes messages from the scan queue one at a time (prefetch 1) and
// acknowledges each after ProcessTime. So each Running pod drains the queue
// at a fixed rate - 1 message per second by default - as a real worker would,
// and a pod that stops takes nothing more: the message it held goes back
// to the queue (not acknowledged), as when a real worker is killed.
package scanworker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	amqp "github.com/rabbitmq/amqp091-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
)

// DefaultProcessTime is how long one scan takes: each Running pod
// consumes one message per second.
const DefaultProcessTime = time.Second

// Options configure the workers.
type Options struct {
	Client kubernetes.Interface
	// URL is the broker's AMQP URL; Queue the queue the workers consume.
	URL   string
	Queue string
	// Namespace and Selector pick the worker pods.
	Namespace string
	Selector  string
	// ProcessTime is the time per message (default DefaultProcessTime).
	ProcessTime time.Duration
	Log         logr.Logger
}

// Workers runs one consumer per Running worker pod.
type Workers struct {
	o         Options
	mu        sync.Mutex
	consumers map[types.UID]*consumer
	wg        sync.WaitGroup
	processed atomic.Int64
}

type consumer struct {
	pod    string
	cancel context.CancelFunc
}

// New returns workers for o; Run starts them.
func New(o Options) *Workers {
	if o.ProcessTime == 0 {
		o.ProcessTime = DefaultProcessTime
	}
	return &Workers{o: o, consumers: map[types.UID]*consumer{}}
}

// Run watches the worker pods and keeps one consumer per Running pod
// until ctx ends; then it stops every consumer and returns.
func (w *Workers) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.o.Client, 0, informers.WithNamespace(w.o.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = w.o.Selector }))
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.sync(ctx, obj) },
		UpdateFunc: func(_, obj any) { w.sync(ctx, obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				w.stop(p.UID)
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	w.mu.Lock()
	for uid := range w.consumers {
		w.stopLocked(uid)
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

// Processed is the number of messages acknowledged so far.
func (w *Workers) Processed() int64 { return w.processed.Load() }

// Consumers is the number of pods consuming now.
func (w *Workers) Consumers() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.consumers)
}

// Working reports whether a pod has a running worker: Running, not being
// deleted.
func Working(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil
}

func (w *Workers) sync(ctx context.Context, obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if !Working(p) {
		w.stop(p.UID)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.consumers[p.UID]; ok || ctx.Err() != nil {
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &consumer{pod: p.Name, cancel: cancel}
	w.consumers[p.UID] = c
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.consume(cctx, c)
	}()
}

func (w *Workers) stop(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked(uid)
}

func (w *Workers) stopLocked(uid types.UID) {
	if c, ok := w.consumers[uid]; ok {
		c.cancel()
		delete(w.consumers, uid)
	}
}

// consume runs the pod's consumer until ctx ends, reconnecting after a
// lost connection.
func (w *Workers) consume(ctx context.Context, c *consumer) {
	log := w.o.Log.WithValues("pod", w.o.Namespace+"/"+c.pod)
	log.V(2).Info("Worker consuming", "queue", w.o.Queue)
	defer log.V(2).Info("Worker stopped")
	for {
		err := w.session(ctx, c.pod)
		if ctx.Err() != nil {
			return
		}
		log.Info("Worker lost its broker connection; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// session is one connection's life: consume with prefetch 1, ack each
// message after ProcessTime; when ctx ends the held message is requeued.
func (w *Workers) session(ctx context.Context, pod string) error {
	return rabbitmq.WithChannel(w.o.URL, w.o.Namespace+"/"+pod, func(ch *amqp.Channel) error {
		if err := ch.Qos(1, 0, false); err != nil {
			return err
		}
		deliveries, err := ch.ConsumeWithContext(ctx, w.o.Queue, pod, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consuming %s: %w", w.o.Queue, err)
		}
		for {
			var d amqp.Delivery
			var ok bool
			select {
			case <-ctx.Done():
				return nil
			case d, ok = <-deliveries:
				if !ok {
					return errors.New("the broker closed the channel")
				}
			}
			select {
			case <-ctx.Done():
				_ = d.Nack(false, true)
				return nil
			case <-time.After(w.o.ProcessTime):
			}
			if err := d.Ack(false); err != nil {
				return err
			}
			w.processed.Add(1)
		}
	})
}
