package disruption

import "time"

// ForgetDeletions drops what the loop remembers having deleted, so a
// benchmark whose writes are not stored starts every run from the same
// state.
func (c *Controller) ForgetDeletions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted = map[string]time.Time{}
}
