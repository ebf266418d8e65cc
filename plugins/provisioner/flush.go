package provisioner

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// flush creates a NodeClaim for every planned claim that still has pods.
// Claims freeze before the lock is released, so nothing narrows them while
// their objects are written.
func (p *state) flush(ctx context.Context) {
	logger := klog.FromContext(ctx)
	p.mu.Lock()
	var specs []packing.ClaimSpec
	for _, set := range p.planned {
		for c := range set {
			if len(c.pods) == 0 {
				// Every pod left (deleted, or bound elsewhere) before launch.
				p.dropClaim(c.name)
				continue
			}
			c.planned = false
			c.opened = p.now()
			delete(set, c)
			p.refresh(c) // a created claim offers the room every option has
			specs = append(specs, packing.ClaimSpec{Name: c.name, NodePool: c.pool.Name, Options: c.options, Requests: packing.ResourceList(c.used)})
		}
	}
	p.mu.Unlock()

	for _, spec := range specs {
		if err := p.creator.Create(ctx, spec); err != nil {
			logger.Error(err, "Creating NodeClaim failed; its pods will be provisioned again", "nodeClaim", spec.Name)
			p.mu.Lock()
			p.dropClaim(spec.Name)
			p.mu.Unlock()
			continue
		}
		metrics.NodeClaimsCreated.WithLabelValues("provisioning", spec.NodePool).Inc()
		logger.V(2).Info("Created NodeClaim", "nodeClaim", spec.Name, "nodePool", spec.NodePool, "instanceTypes", len(spec.Options))
	}
}
