package aws

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// Delete terminates the claim's instance - the one in its status, the one
// this process launched for it, and any tagged with the claim (a launch
// that crashed before writing its status) - then its launch template and
// its minted bootstrap token.
func (p *Provider) Delete(ctx context.Context, nc *karpv1.NodeClaim) error {
	defer p.lockClaim(nc.Name)()
	ids := map[string]bool{}
	if nc.Status.ProviderID != "" {
		if _, id, err := ec2.ParseProviderID(nc.Status.ProviderID); err == nil {
			ids[id] = true
		} else {
			// Not ours to parse (someone edited the status): the tags
			// still name the claim's instances.
			klog.FromContext(ctx).Info("Ignoring an unparsable status.providerID; terminating the instances tagged with the claim",
				"nodeClaim", nc.Name, "providerID", nc.Status.ProviderID, "err", err.Error())
		}
	}
	if id := p.remembered(nc); id != "" {
		ids[id] = true
	}
	instances, err := p.EC2.List(ctx, p.ClusterName)
	if err != nil {
		return err
	}
	for _, inst := range instances {
		if inst.NodeClaimName == nc.Name {
			ids[inst.ID] = true
		}
	}
	for id := range ids {
		if err := p.EC2.Delete(ctx, id); err != nil {
			return fmt.Errorf("terminating instance %s: %w", id, err)
		}
	}
	if err := p.EC2.DeleteLaunchTemplate(ctx, p.ClusterName, nc.Name); err != nil {
		return fmt.Errorf("deleting launch template: %w", err)
	}
	if r, ok := p.Tokens.(bootstrap.Revoker); ok {
		if err := r.Revoke(ctx, nc.Name); err != nil {
			return fmt.Errorf("revoking bootstrap token: %w", err)
		}
	}
	p.forget(nc)
	return nil
}

var _ cloudprovider.RegisteredHook = &Provider{}

// Registered revokes the bootstrap tokens minted for the claim's node: it
// has joined, and a token left valid is one more credential to leak. (A
// token source that does not own its tokens, SSM's, revokes nothing.)
func (p *Provider) Registered(ctx context.Context, nc *karpv1.NodeClaim) error {
	if r, ok := p.Tokens.(bootstrap.Revoker); ok {
		if err := r.Revoke(ctx, nc.Name); err != nil {
			return fmt.Errorf("revoking bootstrap token: %w", err)
		}
	}
	return nil
}

// Get reports the instance with the provider ID.
func (p *Provider) Get(ctx context.Context, providerID string) (*cloudprovider.Machine, error) {
	_, id, err := ec2.ParseProviderID(providerID)
	if err != nil {
		return nil, err
	}
	inst, err := p.EC2.Get(ctx, id)
	if err != nil {
		if ec2.IsNotFound(err) {
			return nil, &cloudprovider.NotFoundError{Err: err}
		}
		return nil, err
	}
	return machine(inst), nil
}

// List returns the cluster's live instances.
func (p *Provider) List(ctx context.Context) ([]*cloudprovider.Machine, error) {
	instances, err := p.EC2.List(ctx, p.ClusterName)
	if err != nil {
		return nil, err
	}
	out := make([]*cloudprovider.Machine, 0, len(instances))
	for _, inst := range instances {
		out = append(out, machine(inst))
	}
	return out, nil
}

func machine(inst *ec2.Instance) *cloudprovider.Machine {
	return &cloudprovider.Machine{ProviderID: inst.ProviderID(), NodeClaim: inst.NodeClaimName, State: inst.State,
		SubnetID: inst.SubnetID, SecurityGroupIDs: inst.SecurityGroupIDs}
}
