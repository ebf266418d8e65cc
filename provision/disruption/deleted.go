package disruption

import (
	"time"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// markDeleted remembers a claim the loop deleted until the cache shows it
// gone, so a run soon after does not count or judge it again.
func (c *Controller) markDeleted(name string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted[name] = now
}

// recentlyDeleted is true for a claim this loop deleted that the cache
// still shows alive.
func (c *Controller) recentlyDeleted(nc *karpv1.NodeClaim, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.deleted[nc.Name]
	return ok && now.Sub(t) < time.Minute
}

// pruneDeleted forgets deletions the cache has caught up with.
func (c *Controller) pruneDeleted(claims []*karpv1.NodeClaim, now time.Time) {
	alive := map[string]bool{}
	for _, nc := range claims {
		if nc.DeletionTimestamp == nil {
			alive[nc.Name] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, t := range c.deleted {
		if !alive[name] || now.Sub(t) >= time.Minute {
			delete(c.deleted, name)
		}
	}
	for name := range c.replacing {
		if !alive[name] {
			delete(c.replacing, name)
		}
	}
}
