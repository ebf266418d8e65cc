package aws

import (
	"context"
	"fmt"
	"time"

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
func (p *Provider) Delete(ctx context.Context, nc *karpv1.NodeClaim) (err error) {
	defer p.observe(ctx, "Delete", time.Now(), &err)
	unlock, err := p.lockClaim(ctx, nc.Name)
	if err != nil {
		return err
	}
	defer unlock()
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
	// The claim's tokens: those recorded on it, and those its launch
	// template and instances name (a launch that never got to record).
	tokens := bootstrap.TokenIDs(nc.Annotations)
	for _, inst := range instances {
		if inst.NodeClaimName == nc.Name {
			ids[inst.ID] = true
			tokens = appendTag(tokens, inst.Tags)
		}
	}
	if tags, found, err := p.EC2.LaunchTemplateTags(ctx, p.ClusterName, nc.Name); err != nil {
		return err
	} else if found {
		tokens = appendTag(tokens, tags)
	}
	for id := range ids {
		if err := p.EC2.Delete(ctx, id); err != nil {
			return fmt.Errorf("terminating instance %s: %w", id, err)
		}
	}
	if err := p.EC2.DeleteLaunchTemplate(ctx, p.ClusterName, nc.Name); err != nil {
		return fmt.Errorf("deleting launch template: %w", err)
	}
	if err := p.revoke(ctx, tokens); err != nil {
		return fmt.Errorf("revoking bootstrap tokens: %w", err)
	}
	p.forget(nc)
	return nil
}

func appendTag(ids []string, tags map[string]string) []string {
	if id := tags[TagBootstrapTokenID]; id != "" {
		ids = append(ids, id)
	}
	return ids
}

var _ cloudprovider.RegisteredHook = &Provider{}

// Registered revokes the bootstrap tokens minted for the claim's node, by
// the IDs on the claim: it has joined, and a token left valid is one more
// credential to leak. (A token source that does not own its tokens, SSM's,
// revokes nothing.)
func (p *Provider) Registered(ctx context.Context, nc *karpv1.NodeClaim) error {
	if err := p.revoke(ctx, bootstrap.TokenIDs(nc.Annotations)); err != nil {
		return fmt.Errorf("revoking bootstrap tokens: %w", err)
	}
	return nil
}

// Get reports the instance with the provider ID.
func (p *Provider) Get(ctx context.Context, providerID string) (_ *cloudprovider.Machine, err error) {
	defer p.observe(ctx, "Get", time.Now(), &err)
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
func (p *Provider) List(ctx context.Context) (_ []*cloudprovider.Machine, err error) {
	defer p.observe(ctx, "List", time.Now(), &err)
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
		SubnetID: inst.SubnetID, SecurityGroupIDs: inst.SecurityGroupIDs, LaunchTime: inst.LaunchTime}
}

var _ cloudprovider.Collector = &Provider{}

// Terminate ends one instance, and nothing else of its claim.
func (p *Provider) Terminate(ctx context.Context, providerID string) (err error) {
	defer p.observe(ctx, "Terminate", time.Now(), &err)
	_, id, err := ec2.ParseProviderID(providerID)
	if err != nil {
		return err
	}
	return p.EC2.Delete(ctx, id)
}

// Leftovers lists the claims whose launch templates exist.
func (p *Provider) Leftovers(ctx context.Context) (_ map[string]time.Time, err error) {
	defer p.observe(ctx, "Leftovers", time.Now(), &err)
	lts, err := p.EC2.LaunchTemplates(ctx, p.ClusterName)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(lts))
	for _, lt := range lts {
		out[lt.NodeClaim] = lt.Created
	}
	return out, nil
}

// DeleteLeftovers deletes a claim's launch template and minted token.
func (p *Provider) DeleteLeftovers(ctx context.Context, claim string) (err error) {
	defer p.observe(ctx, "DeleteLeftovers", time.Now(), &err)
	unlock, err := p.lockClaim(ctx, claim)
	if err != nil {
		return err
	}
	defer unlock()
	// The claim is gone: its launch template's tag is what names its token.
	tags, found, err := p.EC2.LaunchTemplateTags(ctx, p.ClusterName, claim)
	if err != nil || !found {
		return err
	}
	if err := p.EC2.DeleteLaunchTemplate(ctx, p.ClusterName, claim); err != nil {
		return fmt.Errorf("deleting launch template: %w", err)
	}
	if err := p.revoke(ctx, appendTag(nil, tags)); err != nil {
		return fmt.Errorf("revoking bootstrap token: %w", err)
	}
	return nil
}
