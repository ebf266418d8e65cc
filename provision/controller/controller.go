// Package controller runs reconcilers off client-go work queues: one key per
// object, rate-limited retries on error, and requeue-after for polling.
package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Result tells the controller when to look at the key again; zero means
// only when an event enqueues it.
type Result struct {
	RequeueAfter time.Duration
}

// Reconciler brings one object (by namespace/name key) to its wanted state.
type Reconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// Controller feeds keys from informer events to a Reconciler.
type Controller struct {
	name       string
	reconciler Reconciler
	queue      workqueue.TypedRateLimitingInterface[string]
	workers    int
	recorder   events.EventRecorder
}

// defaultWorkers reconcile a controller's keys at once unless WithWorkers
// says otherwise.
const defaultWorkers = 2

// WithWorkers sets how many keys are reconciled at once: more for
// controllers that mostly wait on the cloud (a launch takes seconds).
func (c *Controller) WithWorkers(n int) *Controller {
	c.workers = n
	return c
}

// Workers is how many keys are reconciled at once.
func (c *Controller) Workers() int {
	if c.workers <= 0 {
		return defaultWorkers
	}
	return c.workers
}

// New makes a controller; connect it to informers with Watch or Enqueue.
func New(name string, r Reconciler) *Controller {
	return &Controller{
		name:       name,
		reconciler: r,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name}),
	}
}

// Name is the controller's name, as used in logs and queue metrics.
func (c *Controller) Name() string { return c.name }

// Reconciler is what the controller runs, for a Register whose event
// handlers keep state on it.
func (c *Controller) Reconciler() Reconciler { return c.reconciler }

// Enqueue adds a key now.
func (c *Controller) Enqueue(key string) { c.queue.Add(key) }

// Watch enqueues the object's own key on every event of the informer.
func (c *Controller) Watch(informer cache.SharedIndexInformer) error {
	return c.WatchMapped(informer, func(obj any) []string {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			return nil
		}
		return []string{key}
	})
}

// WatchMapped enqueues the keys mapFn derives from each event's object.
func (c *Controller) WatchMapped(informer cache.SharedIndexInformer, mapFn func(obj any) []string) error {
	add := func(obj any) {
		for _, k := range mapFn(obj) {
			c.queue.Add(k)
		}
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: add,
	})
	return err
}

// Run processes keys with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", c.name)
	ctx = WithName(klog.NewContext(ctx, logger), c.name)
	logger.V(2).Info("Starting controller", "workers", workers)
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
	for c.next(ctx) {
	}
}

func (c *Controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	res, err := c.reconcile(ctx, key)
	switch {
	case c.reportPanic(ctx, err):
		c.queue.AddRateLimited(key)
	case apierrors.IsConflict(err):
		// Acting on a cache older than our own last write; retry on the fresh object.
		klog.FromContext(ctx).V(4).Info("Conflict; retrying", "key", key)
		c.queue.AddRateLimited(key)
	case err != nil:
		klog.FromContext(ctx).Error(err, "Reconcile failed; retrying", "key", key)
		c.queue.AddRateLimited(key)
	case res.RequeueAfter > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, res.RequeueAfter)
	default:
		c.queue.Forget(key)
	}
	return true
}

type nameKey struct{}

// WithName is ctx carrying the name of the controller whose work it is.
func WithName(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, nameKey{}, name)
}

// NameFrom is the name of the controller ctx works for, or "" (metric
// labels take it, as Karpenter's "controller" label does).
func NameFrom(ctx context.Context) string {
	name, _ := ctx.Value(nameKey{}).(string)
	return name
}

// reconcile turns a panic in one reconcile into an error for that key, so
// one bad object never takes the scheduler down.
func (c *Controller) reconcile(ctx context.Context, key string) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = recovered(key, r, nil)
		}
	}()
	return c.reconciler.Reconcile(ctx, key)
}
