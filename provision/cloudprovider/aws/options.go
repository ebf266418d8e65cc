package aws

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// claimOptions are the options the claim may launch as now, resolved from
// the claim itself: the offerings its class can launch, from the
// catalogue, on nodes labelled as its pool labels them (packing.ClaimLabels),
// narrowed by its requirements - its pool's and the instance types, zones
// and capacity types it was planned with - and by what it launched as
// (packing.ClaimOptions), priced and sized by the NodeOverlays as last
// evaluated.
func (p *Provider) claimOptions(nc *karpv1.NodeClaim, class *ec2v1.EC2NodeClass) ([]*packing.PoolOption, error) {
	pool := nc.Labels[karpv1.NodePoolLabelKey]
	if err := p.launchesHeld(pool); err != nil {
		return nil, err
	}
	options, err := p.Catalog.Launchable(class)
	if err != nil {
		return nil, err
	}
	all := packing.NewPoolOptions(options, packing.ClaimLabels(nc, options), nil)
	return p.Overlays.Apply(pool, packing.ClaimOptions(all, nc)), nil
}

// launchesHeld refuses the claims of a NodePool that is gone, invalid or
// paused (launchhealth.Held): its pool offers nothing, and a claim made
// before waits.
func (p *Provider) launchesHeld(name string) error {
	np, err := p.NodePools.Get(name)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("nodepool %q not found", name)
	}
	if err != nil {
		return fmt.Errorf("nodepool %q: %w", name, err)
	}
	if why := launchhealth.Held(np); why != "" {
		return fmt.Errorf("nodepool %q: %s", name, why)
	}
	return nil
}
