package provisioner

import (
	"context"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// PostFilter runs when the pod fits no node. It nominates the pod to a
// claim: the one it is already on if it is still open, else the first open
// claim that takes it, else a new claim on the best NodePool. Preferences
// are held as requirements first and relaxed one at a time, lowest weight
// first, while no claim can meet them. It never waits on the cloud:
// launching happens when the batch closes, in the background.
func (p *Provisioner) PostFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, _ fwk.NodeToStatusReader) (result *fwk.PostFilterResult, status *fwk.Status) {
	defer func() {
		// A panic on one pod must not take the scheduler down: the pod is
		// told, counted, and waits like any pod no pool takes yet (the
		// lock is released by now): it is tried again when the pools
		// change, or at the scheduler's periodic flush.
		if r := recover(); r != nil {
			msg := controller.Panicked(ctx, "provisioner", r) + "; the pod will be tried again"
			p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning", "%s", msg)
			p.mu.Lock()
			p.remember(pod)
			p.mu.Unlock()
			result, status = nil, fwk.NewStatus(fwk.Unschedulable, msg)
		}
	}()
	state.Write(judgingKey, judging{})
	defer state.Delete(judgingKey)
	logger := klog.FromContext(ctx)
	start := time.Now()
	defer func() {
		d := time.Since(start).Seconds()
		metrics.ProvisionerSchedulingDuration.Observe(d)
		metrics.SchedulerSchedulingDuration.WithLabelValues("provisioner").Observe(d)
	}()

	if owner := metav1.GetControllerOf(pod); owner != nil && owner.Kind == "DaemonSet" {
		// A DaemonSet pod belongs on the node it was made for; a new node
		// gets its own, and its overhead is counted in every claim.
		return nil, fwk.NewStatus(fwk.Unschedulable, "DaemonSet pods are not provisioned for")
	}
	if len(pod.Spec.ResourceClaims) > 0 {
		// Devices claimed through DRA are not in the launch options; leave
		// the pod to DynamicResources' PostFilter, which comes next.
		return nil, fwk.NewStatus(fwk.Unschedulable, "pods with resource claims are not provisioned for")
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	// One look at the pools per decision: open claims and new ones both come from it.
	pools := p.pools.Pools()
	if p.now().Sub(p.lastSync) >= syncPeriod {
		p.syncInFlight(pools)
	}

	if r, st := p.nominatedToANodeThatTakesIt(ctx, state, pod); st != nil {
		return r, st
	}
	// A retried pod keeps its claim, so its nomination never flaps.
	if c := p.podOn[pod.UID]; c != nil && c.pods[pod.UID].sameRequests(pod) && !c.pods[pod.UID].moved {
		p.forget(pod.UID)
		return framework.NewPostFilterResultWithNominatedNode(c.name), fwk.NewStatus(fwk.Success)
	}

	d, err := p.newDecision(ctx, state, pod, pools)
	if err != nil {
		msg := "the pod's constraints cannot be read: " + err.Error()
		p.remember(pod)
		p.notProvisionable(pod, msg)
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, msg)
	}
	if why := d.readVolumes(); why != "" {
		p.remember(pod)
		p.notProvisionable(pod, why)
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, why)
	}
	if c := p.podOn[pod.UID]; c != nil {
		// Moved here to make room for another pod, or resized: judged anew
		// on the claim it is on, and decided afresh if it no longer fits.
		p.unplace(c, pod.UID)
		d.prepare()
		if opts, _ := d.fits(c); opts != nil && d.filterOn(c, opts).IsSuccess() {
			p.place(d, c, opts)
			return p.nominate(pod, c)
		}
	}
	var reasons []string
	for {
		d.prepare()
		if c, options := d.packExisting(); c != nil {
			p.place(d, c, options)
			if c.planned {
				p.batch.touch()
			}
			logger.V(4).Info("Pod packed onto claim", "pod", klog.KObj(pod), "claim", c.name, "options", len(c.options))
			return p.nominate(pod, c)
		}
		if c, options := d.makeRoom(); c != nil {
			p.place(d, c, options)
			p.batch.touch()
			logger.V(4).Info("Pod packed onto claim after moving pods off it", "pod", klog.KObj(pod), "claim", c.name)
			return p.nominate(pod, c)
		}
		c, why := d.open()
		if c != nil {
			p.addClaim(c)
			p.place(d, c, c.options)
			p.batch.touch()
			logger.V(2).Info("Opened claim", "pod", klog.KObj(pod), "claim", c.name, "nodePool", c.pool.Name, "options", len(c.options))
			return p.nominate(pod, c)
		}
		reasons = why
		what, ok := d.relax()
		if !ok {
			break
		}
		logger.V(4).Info("Relaxing a preference", "pod", klog.KObj(pod), "relaxed", what)
	}
	msg := "no NodePool can provision the pod"
	if len(pools) == 0 {
		msg = "no NodePool exists"
	} else {
		msg += ": " + strings.Join(reasons, "; ")
	}
	p.remember(pod)
	p.notProvisionable(pod, msg)
	return nil, fwk.NewStatus(fwk.Unschedulable, msg)
}

// nominatedToANodeThatTakesIt handles a pod nominated to a node that
// exists (its claim's node has joined) and that the Filter plugins accept
// it on by itself. The scheduler counts every pod nominated to a node when
// it judges one of them there, so pods packed onto one claim can keep each
// other out: two pods of a zone spread with maxSkew 1 on one node each see
// the other in their zone while no pod has bound in the next zone yet, and
// neither binds. Such a pod gives up its nomination - the node is there
// and will take it - and is retried at once; it gets no new node.
func (p *Provisioner) nominatedToANodeThatTakesIt(ctx context.Context, state fwk.CycleState, pod *v1.Pod) (*fwk.PostFilterResult, *fwk.Status) {
	name := pod.Status.NominatedNodeName
	lister := p.handle.SnapshotSharedLister()
	if name == "" || lister == nil {
		return nil, nil
	}
	ni, err := lister.NodeInfos().Get(name)
	if err != nil || ni.Node() == nil || !p.handle.RunFilterPlugins(ctx, state, pod, ni).IsSuccess() {
		return nil, nil
	}
	p.waiting[pod.UID] = pod
	p.poolsChanged = true
	klog.FromContext(ctx).V(2).Info("Node takes the pod but for the pods nominated beside it; clearing its nomination", "pod", klog.KObj(pod), "node", name)
	clear := &fwk.PostFilterResult{NominatingInfo: &fwk.NominatingInfo{NominatingMode: fwk.ModeOverride}}
	return clear, fwk.NewStatus(fwk.Unschedulable, "node "+name+" takes the pod but for the pods nominated to it; the nomination is cleared so the scheduler places them one by one")
}

// nominate answers the scheduler with the claim's node name, and records
// an event on the pod the first time it is nominated there.
func (p *Provisioner) nominate(pod *v1.Pod, c *claim) (*fwk.PostFilterResult, *fwk.Status) {
	p.forget(pod.UID)
	if pod.Status.NominatedNodeName != c.name {
		p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeNormal, "Nominated", "Provisioning",
			"Pod should schedule on node %s (nodeclaim %s, nodepool %s)", c.name, c.name, c.pool.Name)
	}
	return framework.NewPostFilterResultWithNominatedNode(c.name), fwk.NewStatus(fwk.Success)
}

// notProvisionable tells the pod's owner why no NodePool admits it.
func (p *Provisioner) notProvisionable(pod *v1.Pod, msg string) {
	p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, "FailedProvisioning", "Provisioning", "%s", msg)
}

// sameRequests reports whether the pod still asks what it asked when it
// was placed (an in-place resize makes it a new decision).
func (m *member) sameRequests(pod *v1.Pod) bool {
	r := packing.PodRequests(pod)
	return r.MilliCPU == m.requests.MilliCPU && r.Memory == m.requests.Memory && r.EphemeralStorage == m.requests.EphemeralStorage
}
