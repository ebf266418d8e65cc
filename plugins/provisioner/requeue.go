package provisioner

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// requeuePeriod is how often the plugin checks whether pods it could not
// place deserve another scheduling attempt.
const requeuePeriod = time.Second

// The scheduler retries an unschedulable pod only on cluster events its
// Filter plugins care about. What changes the Provisioner's answer - a
// NodePool or its EC2NodeClass becoming usable, the catalogue loading, a
// claim given up - is none of those, so the plugin activates such pods
// itself.

// remember notes a pod no pool could take, to retry when the pools change.
func (p *state) remember(pod *v1.Pod) {
	p.waiting[pod.UID] = pod
}

// forget drops a pod that was placed.
func (p *state) forget(uid types.UID) {
	delete(p.waiting, uid)
}

// pruneWaiting drops waiting pods that were deleted, recreated under
// another UID, or bound meanwhile.
func (p *state) pruneWaiting() {
	if p.pods == nil {
		return
	}
	for uid, pod := range p.waiting {
		cur, err := p.pods.Pods(pod.Namespace).Get(pod.Name)
		if apierrors.IsNotFound(err) || (err == nil && (cur.UID != uid || cur.Spec.NodeName != "")) {
			delete(p.waiting, uid)
		}
	}
}

// requeueLoop activates the waiting pods whenever the pools' state changed
// or a claim was dropped.
func (p *state) requeueLoop(ctx context.Context, activator fwk.PodActivator) {
	ticker := time.NewTicker(requeuePeriod)
	defer ticker.Stop()
	last := ""
	var lastRoom map[string]v1.ResourceList
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pools := p.pools.Pools()
		fp := poolsFingerprint(pools)
		p.mu.Lock()
		p.syncInFlight(pools)
		p.pruneWaiting()
		room := poolsRoom(pools)
		changed := fp != last || p.poolsChanged || roomGrew(lastRoom, room)
		p.poolsChanged = false
		lastRoom = room
		var pods map[string]*v1.Pod
		if changed && len(p.waiting) > 0 {
			pods = make(map[string]*v1.Pod, len(p.waiting))
			for _, pod := range p.waiting {
				pods[pod.Namespace+"/"+pod.Name] = pod
			}
			p.waiting = map[types.UID]*v1.Pod{}
		}
		p.mu.Unlock()
		last = fp
		if len(pods) > 0 {
			klog.FromContext(ctx).V(4).Info("Pools changed; retrying pods", "pods", len(pods))
			activator.Activate(klog.FromContext(ctx), pods)
		}
	}
}

// poolsFingerprint changes whenever a pool appears, goes, or changes
// whether and how much it can provision (its Version follows its
// NodePool, class, overlays and DaemonSets).
func poolsFingerprint(pools []*packing.Pool) string {
	var b strings.Builder
	for _, pool := range pools {
		fmt.Fprintf(&b, "%s/%d/%s/%s;", pool.Name, len(pool.Options), pool.Unavailable, pool.Version)
	}
	return b.String()
}

// poolsRoom is each pool's remaining limits; a pool without limits has a
// nil entry.
func poolsRoom(pools []*packing.Pool) map[string]v1.ResourceList {
	out := make(map[string]v1.ResourceList, len(pools))
	for _, pool := range pools {
		out[pool.Name] = pool.Remaining
	}
	return out
}

// roomGrew reports whether some pool may now launch more than before: its
// limits were raised or removed, or claims holding them went away. Pods
// held back by limits are retried then, not on every new claim.
func roomGrew(before, now map[string]v1.ResourceList) bool {
	if before == nil {
		return false
	}
	for name, left := range now {
		prev, known := before[name]
		if !known {
			continue // a new pool changes the fingerprint
		}
		if left == nil {
			if prev != nil {
				return true
			}
			continue
		}
		for res, q := range left {
			if p, ok := prev[res]; !ok || q.Cmp(p) > 0 {
				return true
			}
		}
		for res := range prev {
			if _, ok := left[res]; !ok {
				return true // that limit was removed
			}
		}
	}
	return false
}
