// Package garbagecollection reconciles the cloud with the NodeClaims, both
// ways, every interval (every 10 seconds for the first 20 passes after a
// start, as Karpenter does, then 2 minutes by default), on the leader only:
//
//   - an instance tagged for the cluster whose NodeClaim does not exist has
//     leaked (a launch that finished after its claim was deleted, a claim
//     removed by hand with its finalizer): once it was launched more than
//     the grace period ago, and the API confirms the claim is gone, it is
//     terminated with what was made for it (launch template, bootstrap
//     token);
//   - an instance tagged with a live claim that names another instance is
//     a second launch of that claim (a retry that could not see the first
//     instance yet): it is terminated by itself, the claim's own instance
//     is kept;
//   - a launch template made for a claim that is gone (and has no
//     instance left) is deleted;
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
	"k8s.io/utils/clock"

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
	DefaultInterval = 2 * time.Minute
	// startupInterval is the period of the first startupPasses passes
	// after a start: leaks of a crashed predecessor go within a minute or two.
	startupInterval = 10 * time.Second
	startupPasses   = 20
	// DefaultOrphanGrace is how long after its launch an instance without a
	// claim that names it is left alone: a launch under way writes its
	// claim's status within seconds (Karpenter waits 30s too).
	DefaultOrphanGrace   = 30 * time.Second
	DefaultLaunchedGrace = 30 * time.Second
)

// Controller is the garbage collector's reconciler (one key).
type Controller struct {
	Karpenter  versioned.Interface
	NodeClaims karplisters.NodeClaimLister
	Cloud      cloudprovider.CloudProvider
	Recorder   events.EventRecorder
	// Interval between passes; when zero, every 10 seconds for the first
	// 20 passes, then DefaultInterval.
	Interval time.Duration
	// OrphanGrace is how long after its launch an instance no claim names
	// is left alone; DefaultOrphanGrace when zero. For a machine whose
	// launch time is unknown the grace runs from the first pass that found
	// it unnamed.
	OrphanGrace time.Duration
	// LaunchedGrace is how long after launch a claim's instance may be
	// missing from EC2's answers (its eventual consistency) before the
	// claim is judged orphaned; DefaultLaunchedGrace when zero.
	LaunchedGrace time.Duration
	// Clock is the controller's clock; the real one when nil.
	Clock clock.PassiveClock

	orphans map[string]time.Time // provider ID -> first pass that found it without a claim
	passes  int                  // passes done since this process started
}

// Register schedules the first pass; the passes poll, so no informer
// feeds the controller.
func Register(ctl *controller.Controller) error {
	ctl.Enqueue(key)
	return nil
}

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
	if wait := c.collectLeftovers(ctx, machines, claims); wait > 0 && wait < next {
		next = wait
	}
	c.passes++
	return next, nil
}

// collectOrphans terminates instances no claim names: those whose claim
// is gone (with what was made for them) and second instances of a live
// claim (by themselves). It returns when the next one's grace runs out
// (zero when none waits).
func (c *Controller) collectOrphans(ctx context.Context, machines []*cloudprovider.Machine, claims []*karpv1.NodeClaim) time.Duration {
	now := c.now()
	byName := make(map[string]*karpv1.NodeClaim, len(claims))
	for _, nc := range claims {
		byName[nc.Name] = nc
	}
	if c.orphans == nil {
		c.orphans = map[string]time.Time{}
	}
	seen := map[string]bool{}
	var wait time.Duration
	for _, m := range machines {
		if m.NodeClaim == "" || m.State == "shutting-down" || m.State == "terminated" {
			continue
		}
		nc, exists := byName[m.NodeClaim]
		duplicate := exists && nc.DeletionTimestamp == nil && nc.Status.ProviderID != "" && nc.Status.ProviderID != m.ProviderID
		if exists && !duplicate {
			continue
		}
		seen[m.ProviderID] = true
		if left := c.graceLeft(ctx, m, now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		if duplicate {
			c.terminateDuplicate(ctx, m)
		} else {
			c.terminateOrphan(ctx, m, now)
		}
	}
	for id := range c.orphans {
		if !seen[id] {
			delete(c.orphans, id)
		}
	}
	return wait
}

// graceLeft is how much of an unnamed machine's grace is left: from its
// launch, or from the first pass that found it when its launch time is
// unknown.
func (c *Controller) graceLeft(ctx context.Context, m *cloudprovider.Machine, now time.Time) time.Duration {
	first := m.LaunchTime
	if first.IsZero() {
		var ok bool
		if first, ok = c.orphans[m.ProviderID]; !ok {
			first = now
			c.orphans[m.ProviderID] = now
			klog.FromContext(ctx).V(2).Info("Instance no NodeClaim names; terminating it after the grace period", "providerID", m.ProviderID,
				"nodeClaim", m.NodeClaim, "grace", c.orphanGrace())
		}
	}
	return first.Add(c.orphanGrace()).Sub(now)
}

// terminateOrphan terminates an instance whose claim is gone, once the API
// (not only the cache, which may lag a claim created a moment ago)
// confirms it, with what was made for the claim.
func (c *Controller) terminateOrphan(ctx context.Context, m *cloudprovider.Machine, now time.Time) {
	logger := klog.FromContext(ctx)
	if _, err := c.Karpenter.KarpenterV1().NodeClaims().Get(ctx, m.NodeClaim, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		if err != nil {
			logger.Error(err, "Checking the NodeClaim of an instance", "nodeClaim", m.NodeClaim)
		}
		delete(c.orphans, m.ProviderID)
		return
	}
	orphan := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: m.NodeClaim}, Status: karpv1.NodeClaimStatus{ProviderID: m.ProviderID}}
	if err := c.Cloud.Delete(ctx, orphan); err != nil {
		logger.Error(err, "Terminating an instance without a NodeClaim", "providerID", m.ProviderID, "nodeClaim", m.NodeClaim)
		return
	}
	delete(c.orphans, m.ProviderID)
	metrics.NodeClaimsDisrupted.WithLabelValues(metrics.ReasonGarbageCollected, "").Inc()
	logger.Info("Terminated instance without a NodeClaim", "providerID", m.ProviderID, "nodeClaim", m.NodeClaim,
		"state", m.State, "launched", m.LaunchTime, "now", now)
}

// terminateDuplicate terminates a second instance of a live claim - the
// one the claim does not name - once the API confirms the claim names
// another; nothing else of the claim is touched.
func (c *Controller) terminateDuplicate(ctx context.Context, m *cloudprovider.Machine) {
	logger := klog.FromContext(ctx)
	collector, ok := c.Cloud.(cloudprovider.Collector)
	if !ok {
		return
	}
	nc, err := c.Karpenter.KarpenterV1().NodeClaims().Get(ctx, m.NodeClaim, metav1.GetOptions{})
	if err != nil || nc.DeletionTimestamp != nil || nc.Status.ProviderID == "" || nc.Status.ProviderID == m.ProviderID {
		if err != nil && !apierrors.IsNotFound(err) {
			logger.Error(err, "Checking the NodeClaim of a second instance", "nodeClaim", m.NodeClaim)
		}
		return
	}
	if err := collector.Terminate(ctx, m.ProviderID); err != nil {
		logger.Error(err, "Terminating a second instance of a NodeClaim", "providerID", m.ProviderID, "nodeClaim", nc.Name)
		return
	}
	delete(c.orphans, m.ProviderID)
	metrics.NodeClaimsDisrupted.WithLabelValues(metrics.ReasonGarbageCollected, nc.Labels[karpv1.NodePoolLabelKey]).Inc()
	c.Recorder.Eventf(nc, nil, v1.EventTypeWarning, "DuplicateInstanceTerminated", "GarbageCollect",
		"Terminated %s, a second instance launched for this claim; the claim's instance is %s", m.ProviderID, nc.Status.ProviderID)
	logger.Info("Terminated a second instance of a NodeClaim", "providerID", m.ProviderID, "nodeClaim", nc.Name, "kept", nc.Status.ProviderID)
}

// collectLeftovers deletes what was made for claims that are gone and
// have no instance left (a launch template whose claim was deleted before
// its instance was launched, or removed without its finalizer). It returns
// when the next one's grace runs out.
func (c *Controller) collectLeftovers(ctx context.Context, machines []*cloudprovider.Machine, claims []*karpv1.NodeClaim) time.Duration {
	collector, ok := c.Cloud.(cloudprovider.Collector)
	if !ok {
		return 0
	}
	logger := klog.FromContext(ctx)
	leftovers, err := collector.Leftovers(ctx)
	if err != nil {
		logger.Error(err, "Listing what was made for NodeClaims")
		return 0
	}
	live := make(map[string]bool, len(claims)+len(machines))
	for _, nc := range claims {
		live[nc.Name] = true
	}
	for _, m := range machines {
		live[m.NodeClaim] = true // the orphan collection takes it with its instance
	}
	now := c.now()
	var wait time.Duration
	for claim, made := range leftovers {
		if live[claim] {
			continue
		}
		if left := made.Add(c.orphanGrace()).Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		if _, err := c.Karpenter.KarpenterV1().NodeClaims().Get(ctx, claim, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			continue
		}
		if err := collector.DeleteLeftovers(ctx, claim); err != nil {
			logger.Error(err, "Deleting what was made for a NodeClaim that is gone", "nodeClaim", claim)
			continue
		}
		logger.Info("Deleted the launch template of a NodeClaim that is gone", "nodeClaim", claim)
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
		metrics.NodeClaimsDisrupted.WithLabelValues(metrics.ReasonGarbageCollected, nc.Labels[karpv1.NodePoolLabelKey]).Inc()
		logger.Info("Deleted NodeClaim whose instance is gone", "nodeClaim", nc.Name, "providerID", nc.Status.ProviderID)
	}
	return wait
}

func (c *Controller) now() time.Time { return controller.Now(c.Clock) }

func (c *Controller) interval() time.Duration {
	switch {
	case c.Interval > 0:
		return c.Interval
	case c.passes < startupPasses:
		return startupInterval
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
