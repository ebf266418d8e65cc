// Package static keeps a static NodePool (spec.replicas set) at its node
// count: it creates NodeClaims from the pool's template when there are
// fewer, whatever the pods need, and deletes the surplus when there are
// more. Claims that go away (drift, expiry, a failed launch, a node
// deleted by hand) are made up for the same way. Within limits.nodes,
// counting claims still terminating, so a replacement never pushes the
// pool past it. The Provisioner never opens claims on a static pool, and
// consolidation leaves its nodes alone.
package static

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Name is the controller's name.
const Name = "nodepool.static"

// unavailableRetry is how soon a pool that cannot launch now (its node
// class not ready, the catalogue loading) is looked at again.
const unavailableRetry = 10 * time.Second

// PoolSource gives the pools' launch options (nodepool.Source).
type PoolSource interface {
	Pools() []*packing.Pool
}

// Controller reconciles static NodePools by name.
type Controller struct {
	Karpenter  versioned.Interface
	NodePools  karplisters.NodePoolLister
	NodeClaims karplisters.NodeClaimLister
	Pools      PoolSource
	Recorder   events.EventRecorder

	// Writes the cache may not show yet, so that a reconcile right after
	// one does not count the same claims again ("pool/claim" -> when).
	mu      sync.Mutex
	created map[string]time.Time
	deleted map[string]time.Time
}

// expectFor is how long a write is waited for in the cache.
const expectFor = time.Minute

// Register enqueues a pool on its own events and its claims'.
func Register(ctl *controller.Controller, nodePools, nodeClaims cache.SharedIndexInformer) error {
	return errors.Join(
		ctl.Watch(nodePools),
		ctl.WatchMapped(nodeClaims, func(obj any) []string {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if nc, ok := obj.(*karpv1.NodeClaim); ok && nc.Labels[karpv1.NodePoolLabelKey] != "" {
				return []string{nc.Labels[karpv1.NodePoolLabelKey]}
			}
			return nil
		}),
	)
}

// Reconcile brings one pool to its replicas.
func (c *Controller) Reconcile(ctx context.Context, name string) (controller.Result, error) {
	np, err := c.NodePools.Get(name)
	if apierrors.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil || np.Spec.Replicas == nil || np.DeletionTimestamp != nil {
		return controller.Result{}, err
	}
	claims, err := c.NodeClaims.List(labels.SelectorFromSet(labels.Set{karpv1.NodePoolLabelKey: name}))
	if err != nil {
		return controller.Result{}, err
	}
	var live []*karpv1.NodeClaim
	seen := map[string]bool{}
	for _, nc := range claims {
		seen[nc.Name] = true
		if nc.DeletionTimestamp == nil && !c.expectedGone(name, nc.Name) {
			live = append(live, nc)
		}
	}
	unseen := c.expectedNew(np.Name, seen)
	c.forgetGone(np.Name, seen)
	want := int(*np.Spec.Replicas)
	switch have := len(live) + unseen; {
	case have < want:
		return c.scaleUp(ctx, np, want-have, len(claims)+unseen)
	case len(live) > want:
		return controller.Result{}, c.scaleDown(ctx, np, live, len(live)-want)
	}
	return controller.Result{}, nil
}

func (c *Controller) scaleUp(ctx context.Context, np *karpv1.NodePool, missing, existing int) (controller.Result, error) {
	if q, ok := np.Spec.Limits[packing.ResourceNodes]; ok {
		room := int(q.Value()) - existing
		if room <= 0 {
			c.event(np, v1.EventTypeWarning, "LimitReached", fmt.Sprintf("%d node(s) short of spec.replicas, but limits.nodes (%s) counts %d claim(s) already, terminating ones included", missing, q.String(), existing))
			return controller.Result{}, nil // a claim going away enqueues the pool
		}
		missing = min(missing, room)
	}
	var pool *packing.Pool
	for _, p := range c.Pools.Pools() {
		if p.Name == np.Name {
			pool = p
		}
	}
	switch {
	case pool == nil:
		return controller.Result{RequeueAfter: unavailableRetry}, nil
	case pool.Unavailable != "":
		c.event(np, v1.EventTypeWarning, "CannotLaunch", "Static pool short of nodes and cannot launch now: "+pool.Unavailable)
		return controller.Result{RequeueAfter: unavailableRetry}, nil
	}
	opts, _ := packing.Holding(pool.Options, pool.DaemonRequests)
	if len(opts) == 0 {
		c.event(np, v1.EventTypeWarning, "CannotLaunch", "No instance type of the pool holds its DaemonSet pods")
		return controller.Result{RequeueAfter: unavailableRetry}, nil
	}
	for range missing {
		nc := nodepool.NewNodeClaim(np, packing.ClaimSpec{Name: np.Name + "-" + utilrand.String(5), NodePool: np.Name,
			Options: opts, Requests: packing.ResourceList(pool.DaemonRequests)})
		created, err := c.Karpenter.KarpenterV1().NodeClaims().Create(ctx, nc, metav1.CreateOptions{})
		if err != nil {
			return controller.Result{}, err
		}
		c.expect(&c.created, np.Name, created.Name)
		klog.FromContext(ctx).Info("Static NodePool short of nodes; created a NodeClaim", "nodePool", np.Name, "nodeClaim", created.Name, "replicas", *np.Spec.Replicas)
		c.event(np, v1.EventTypeNormal, "ScaledUp", fmt.Sprintf("Created NodeClaim %s toward %d replicas", created.Name, *np.Spec.Replicas))
	}
	return controller.Result{}, nil
}

// scaleDown deletes surplus claims: those not initialized first (no pods
// yet), then the newest. Termination drains them, PodDisruptionBudgets
// holding; disruption budgets do not apply to a change of replicas.
func (c *Controller) scaleDown(ctx context.Context, np *karpv1.NodePool, live []*karpv1.NodeClaim, surplus int) error {
	sort.SliceStable(live, func(i, j int) bool {
		ii := karpv1.IsConditionTrue(live[i].Status.Conditions, karpv1.ConditionTypeInitialized)
		ij := karpv1.IsConditionTrue(live[j].Status.Conditions, karpv1.ConditionTypeInitialized)
		if ii != ij {
			return !ii
		}
		return live[j].CreationTimestamp.Before(&live[i].CreationTimestamp)
	})
	for _, nc := range live[:surplus] {
		err := c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		c.expect(&c.deleted, np.Name, nc.Name)
		klog.FromContext(ctx).Info("Static NodePool over its replicas; deleted a NodeClaim", "nodePool", np.Name, "nodeClaim", nc.Name, "replicas", *np.Spec.Replicas)
		c.event(np, v1.EventTypeNormal, "ScaledDown", fmt.Sprintf("Deleted NodeClaim %s toward %d replicas", nc.Name, *np.Spec.Replicas))
	}
	return nil
}

func (c *Controller) event(np *karpv1.NodePool, eventType, reason, message string) {
	if c.Recorder != nil {
		c.Recorder.Eventf(np, nil, eventType, reason, "Scale", "%s", message)
	}
}

func (c *Controller) expect(m *map[string]time.Time, pool, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = map[string]time.Time{}
	}
	(*m)[pool+"/"+name] = time.Now()
}

// expectedNew counts the pool's claims created here that the cache does
// not show yet, and forgets those it shows or waited for long enough.
func (c *Controller) expectedNew(pool string, seen map[string]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for key, at := range c.created {
		p, name, _ := strings.Cut(key, "/")
		if p != pool {
			continue
		}
		if seen[name] || time.Since(at) > expectFor {
			delete(c.created, key)
			continue
		}
		n++
	}
	return n
}

// expectedGone is true for a claim deleted here that the cache still
// shows alive.
func (c *Controller) expectedGone(pool, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.deleted[pool+"/"+name]
	return ok && time.Since(at) <= expectFor
}

// forgetGone drops the pool's deletions the cache no longer shows.
func (c *Controller) forgetGone(pool string, seen map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, at := range c.deleted {
		if p, name, _ := strings.Cut(key, "/"); p == pool && (!seen[name] || time.Since(at) > expectFor) {
			delete(c.deleted, key)
		}
	}
}
