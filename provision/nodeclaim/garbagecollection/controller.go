// Package garbagecollection reconciles the cloud with the NodeClaims, both
// ways, every interval (2 minutes by default), on the leader only:
//
//   - an instance tagged for the cluster whose NodeClaim does not exist has
//     leaked (a launch that finished after its claim was deleted, a claim
//     removed by hand with its finalizer): once it has been seen without a
//     claim for the grace period, and the API confirms the claim is gone, it
//     is terminated with what was made for it (launch template, bootstrap
//     token);
//   - a launched NodeClaim whose instance no longer exists (terminated
//     outside fleet-scheduler, reclaimed) is deleted, so its pods are
//     provisioned for again and its Node goes.
package garbagecollection

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// Name is the controller's name.
const Name = "nodeclaim.garbagecollection"

// key is the one key the controller's queue carries.
const key = "garbagecollection"

// Defaults.
const (
	DefaultInterval      = 2 * time.Minute
	DefaultOrphanGrace   = 2 * time.Minute
	DefaultLaunchedGrace = 30 * time.Second
)

// Controller is the garbage collector's reconciler (one key).
type Controller struct {
	Karpenter  versioned.Interface
	NodeClaims karplisters.NodeClaimLister
	Cloud      cloudprovider.CloudProvider
	Recorder   events.EventRecorder
	// Interval between passes; DefaultInterval when zero.
	Interval time.Duration
	// OrphanGrace is how long an instance must be seen without a claim
	// before it is terminated; DefaultOrphanGrace when zero. Machines carry
	// no launch time, so the grace runs from the first pass that found the
	// instance orphaned (after a restart, from the first pass after it).
	OrphanGrace time.Duration
	// LaunchedGrace is how long after launch a claim's instance may be
	// missing from EC2's answers (its eventual consistency) before the
	// claim is judged orphaned; DefaultLaunchedGrace when zero.
	LaunchedGrace time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	orphans map[string]time.Time // provider ID -> first pass that found it without a claim
}

// Register schedules the first pass.
func (c *Controller) Register(ctl *controller.Controller) { ctl.Enqueue(key) }

// Reconcile runs one pass and schedules the next.
func (c *Controller) Reconcile(ctx context.Context, k string) (controller.Result, error) {
	if k != key {
		return controller.Result{}, nil
	}
	next, err := c.pass(ctx)
	if err != nil {
		return controller.Result{}, err
	}
	return controller.Result{RequeueAfter: next}, nil
}

// pass runs both collections and returns when to run next.
func (c *Controller) pass(ctx context.Context) (time.Duration, error) {
	next := c.interval()
	machines, err := c.Cloud.List(ctx)
	if err != nil {
		return 0, err
	}
	claims, err := c.NodeClaims.List(labels.Everything())
	if err != nil {
		return 0, err
	}
	if wait := c.collectOrphans(ctx, machines, claims); wait > 0 && wait < next {
		next = wait
	}
	if wait := c.collectVanished(ctx, machines, claims); wait > 0 && wait < next {
		next = wait
	}
	return next, nil
}

// collectOrphans terminates instances whose claim is gone; it returns when
// the next orphan's grace runs out (zero when none waits).
func (c *Controller) collectOrphans(ctx context.Context, machines []*cloudprovider.Machine, claims []*karpv1.NodeClaim) time.Duration {
	logger := klog.FromContext(ctx)
	now := c.now()
	names := make(map[string]bool, len(claims))
	for _, nc := range claims {
		names[nc.Name] = true
	}
	if c.orphans == nil {
		c.orphans = map[string]time.Time{}
	}
	seen := map[string]bool{}
	var wait time.Duration
	for _, m := range machines {
		if m.NodeClaim == "" || names[m.NodeClaim] || m.State == "shutting-down" || m.State == "terminated" {
			continue
		}
		seen[m.ProviderID] = true
		first, ok := c.orphans[m.ProviderID]
		if !ok {
			first = now
			c.orphans[m.ProviderID] = now
			logger.V(2).Info("Instance has no NodeClaim; terminating it after the grace period", "providerID", m.ProviderID,
				"nodeClaim", m.NodeClaim, "grace", c.orphanGrace())
		}
		if left := first.Add(c.orphanGrace()).Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		// The cache may lag a claim created a moment ago: ask the API.
		if _, err := c.Karpenter.KarpenterV1().NodeClaims().Get(ctx, m.NodeClaim, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			if err != nil {
				logger.Error(err, "Checking the NodeClaim of an instance", "nodeClaim", m.NodeClaim)
			}
			delete(c.orphans, m.ProviderID)
			continue
		}
		orphan := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: m.NodeClaim}, Status: karpv1.NodeClaimStatus{ProviderID: m.ProviderID}}
		if err := c.Cloud.Delete(ctx, orphan); err != nil {
			logger.Error(err, "Terminating an instance without a NodeClaim", "providerID", m.ProviderID, "nodeClaim", m.NodeClaim)
			continue
		}
		delete(c.orphans, m.ProviderID)
		metrics.NodeClaimsDisrupted.WithLabelValues("garbage_collected", "").Inc()
		logger.Info("Terminated instance without a NodeClaim", "providerID", m.ProviderID, "nodeClaim", m.NodeClaim,
			"state", m.State, "orphanedFor", now.Sub(first).Round(time.Second))
	}
	for id := range c.orphans {
		if !seen[id] {
			delete(c.orphans, id)
		}
	}
	return wait
}

// collectVanished deletes launched claims whose instance is gone; it
// returns when a claim too recently launched to judge can be judged.
func (c *Controller) collectVanished(ctx context.Context, machines []*cloudprovider.Machine, claims []*karpv1.NodeClaim) time.Duration {
	logger := klog.FromContext(ctx)
	now := c.now()
	live := make(map[string]bool, len(machines))
	for _, m := range machines {
		live[m.ProviderID] = true
	}
	var wait time.Duration
	for _, nc := range claims {
		if nc.DeletionTimestamp != nil || nc.Status.ProviderID == "" || live[nc.Status.ProviderID] {
			continue
		}
		launched := nc.GetCondition(karpv1.ConditionTypeLaunched)
		if launched == nil || launched.Status != metav1.ConditionTrue {
			continue
		}
		if left := launched.LastTransitionTime.Add(c.launchedGrace()).Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		// List left it out; make sure it is gone and not merely missed.
		if _, err := c.Cloud.Get(ctx, nc.Status.ProviderID); !cloudprovider.IsNotFound(err) {
			if err != nil {
				logger.Error(err, "Checking a claim's instance", "nodeClaim", nc.Name, "providerID", nc.Status.ProviderID)
			}
			continue
		}
		c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, "InstanceGone", "GarbageCollect",
			"Instance %s no longer exists; deleting the NodeClaim so its pods are provisioned for again", nc.Status.ProviderID)
		err := c.Karpenter.KarpenterV1().NodeClaims().Delete(ctx, nc.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &nc.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			logger.Error(err, "Deleting a NodeClaim whose instance is gone", "nodeClaim", nc.Name)
			continue
		}
		metrics.NodeClaimsDisrupted.WithLabelValues("garbage_collected", nc.Labels[karpv1.NodePoolLabelKey]).Inc()
		logger.Info("Deleted NodeClaim whose instance is gone", "nodeClaim", nc.Name, "providerID", nc.Status.ProviderID)
	}
	return wait
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return DefaultInterval
}

func (c *Controller) orphanGrace() time.Duration {
	if c.OrphanGrace > 0 {
		return c.OrphanGrace
	}
	return DefaultOrphanGrace
}

func (c *Controller) launchedGrace() time.Duration {
	if c.LaunchedGrace > 0 {
		return c.LaunchedGrace
	}
	return DefaultLaunchedGrace
}
