package aws

import (
	"context"
	"maps"
	"slices"

	"k8s.io/klog/v2"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
)

// TagBootstrapTokenID names, on a claim's launch template and instance,
// the minted bootstrap token its user data carries: the token's ID, the
// public half. A launch that finds the template of an earlier attempt
// (which it reuses, token included) learns from it which token to record.
const TagBootstrapTokenID = "fleet-scheduler.io/bootstrap-token-id"

// joinToken is the bootstrap token a launch gives the claim's machine.
type joinToken struct {
	// creds are the credentials to render into new user data; nil when the
	// claim's launch template exists and is reused as it is.
	creds *bootstrap.JoinCredentials
	// id is the token's ID when it is minted (now, or for the template).
	id string
	// minted says this launch minted it.
	minted bool
}

// joinToken returns what the claim's user data joins with. When an earlier
// attempt left the claim's launch template, nothing is asked of the token
// source: Launch reuses the template, so a token minted now would only
// have to be revoked again.
func (p *Provider) joinToken(ctx context.Context, nc *karpv1.NodeClaim) (joinToken, error) {
	tags, found, err := p.EC2.LaunchTemplateTags(ctx, p.ClusterName, nc.Name)
	if err != nil {
		return joinToken{}, err
	}
	if found {
		return joinToken{id: tags[TagBootstrapTokenID]}, nil
	}
	creds, err := p.Tokens.Credentials(ctx, nc.Name)
	if err != nil {
		return joinToken{}, err
	}
	t := joinToken{creds: &creds}
	if _, owned := p.Tokens.(bootstrap.Revoker); owned {
		t.id, t.minted = creds.TokenID(), true
	}
	return t, nil
}

// tags are the class's tags plus, for a minted token, its ID.
func (t joinToken) tags(classTags map[string]string) map[string]string {
	if t.id == "" {
		return classTags
	}
	out := maps.Clone(classTags)
	if out == nil {
		out = map[string]string{}
	}
	out[TagBootstrapTokenID] = t.id
	return out
}

// launchFailed revokes a token minted for a launch that failed before it
// made the claim's launch template: no machine will ever join with it.
// Once the template exists the token is kept; the next attempt reuses both.
func (p *Provider) launchFailed(ctx context.Context, nc *karpv1.NodeClaim, t joinToken) {
	if !t.minted {
		return
	}
	if _, found, err := p.EC2.LaunchTemplateTags(ctx, p.ClusterName, nc.Name); err != nil || found {
		return
	}
	if err := p.revoke(ctx, []string{t.id}); err != nil {
		klog.FromContext(ctx).Info("Revoking the token of a failed launch failed; it expires on its own", "nodeClaim", nc.Name, "err", err.Error())
	}
}

// launchedWith records on the claim the token its machine joins with (the
// instance's tag says which, when the launch found an existing machine)
// and revokes one minted now that the machine does not use.
func (p *Provider) launchedWith(ctx context.Context, out *karpv1.NodeClaim, t joinToken, instanceTags map[string]string) {
	used := t.id
	if tagged := instanceTags[TagBootstrapTokenID]; tagged != "" {
		used = tagged
	}
	if used != "" {
		out.Annotations = bootstrap.WithTokenID(out.Annotations, used)
	}
	if t.minted && used != t.id {
		if err := p.revoke(ctx, []string{t.id}); err != nil {
			klog.FromContext(ctx).Info("Revoking an unused token failed; it expires on its own", "nodeClaim", out.Name, "err", err.Error())
		}
	}
}

// revoke deletes minted tokens by ID; a token source that does not own its
// tokens (SSM's) revokes nothing.
func (p *Provider) revoke(ctx context.Context, ids []string) error {
	r, ok := p.Tokens.(bootstrap.Revoker)
	if !ok || len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	return r.Revoke(ctx, slices.Compact(ids))
}
