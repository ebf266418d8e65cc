package aws

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Create launches the claim's instance (or finds the one already launched
// for it) and returns the claim with labels and status filled in.
//
// Create and Delete of one claim do not overlap: a Delete that came while
// the launch was under way waits for it, and then finds its instance.
func (p *Provider) Create(ctx context.Context, nc *karpv1.NodeClaim) (_ *karpv1.NodeClaim, err error) {
	defer p.observe(ctx, "Create", time.Now(), &err)
	unlock, err := p.lockClaim(ctx, nc.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	class, err := p.nodeClass(nc)
	if err != nil {
		return nil, &cloudprovider.NodeClassNotReadyError{Err: err}
	}
	// Right after a start the catalogue may still be loading; wait for it
	// (Get builds it or waits for the build under way) rather than report
	// the claim's node class not ready and retry later.
	if p.Catalog != nil && p.Catalog.Catalog != nil {
		if _, err := p.Catalog.Catalog.Get(ctx); err != nil {
			return nil, &cloudprovider.NodeClassNotReadyError{Err: fmt.Errorf("the instance-type catalogue is not loaded: %w", err)}
		}
	}
	options, err := p.claimOptions(nc, class)
	if err != nil {
		return nil, &cloudprovider.NodeClassNotReadyError{Err: err}
	}
	if len(options) == 0 {
		return nil, &cloudprovider.InsufficientCapacityError{Reason: ec2.ReasonInsufficientCapacity,
			Err: fmt.Errorf("no offering that satisfies the claim's requirements is available")}
	}
	pool := nc.Labels[karpv1.NodePoolLabelKey]
	options, refused := p.admit(pool, options)
	if len(options) == 0 {
		return nil, backedOff(refused, p.now())
	}
	capacityType := preferredCapacityType(options)
	req, token, err := p.launchRequest(ctx, nc, class, options, capacityType)
	if err != nil {
		return nil, err
	}
	inst, err := p.launch(ctx, req)
	if err != nil && capacityType == karpv1.CapacityTypeSpot && noSpot(err) && hasCapacityType(options, karpv1.CapacityTypeOnDemand) {
		// EC2 had no spot capacity (or spot quota) for any offering (they
		// are marked unavailable or backed off now); the claim allows
		// on-demand, so it launches as that in this same decision rather
		// than going back to the Provisioner for the next batch.
		klog.FromContext(ctx).Info("No spot capacity for any offering of the claim; launching on-demand", "nodeClaim", nc.Name, "spotError", err.Error())
		p.failed(pool, nc.Name, req, err)
		req.CapacityType = karpv1.CapacityTypeOnDemand
		req.InstanceTypes = candidates(options, karpv1.CapacityTypeOnDemand)
		inst, err = p.launch(ctx, req)
	}
	if err != nil {
		p.launchFailed(ctx, nc, token)
		return nil, p.failed(pool, nc.Name, req, err)
	}
	if p.Health != nil {
		p.Health.Launched(pool, launchhealth.Bucket{CapacityType: inst.CapacityType, Family: launchhealth.QuotaFamily(inst.Type)})
	}
	p.remember(nc, inst.ID)
	klog.FromContext(ctx).V(2).Info("Launched instance", "nodeClaim", nc.Name, "instance", inst.ID, "instanceType", inst.Type, "zone", inst.Zone, "capacityType", inst.CapacityType)
	out := launched(nc, class, inst, options)
	p.launchedWith(ctx, out, token, inst.Tags)
	return out, nil
}

// credentialsRetry is how soon a claim whose join credentials were found
// unusable tries again (the token source re-reads SSM by then).
const credentialsRetry = 15 * time.Second

// noSpot reports whether a spot launch failed for want of spot capacity
// or spot quota: on-demand may still be had.
func noSpot(err error) bool {
	return ec2.IsInsufficientCapacity(err) || ec2.Reason(err) == ec2.ReasonMaxSpotInstanceCountExceeded
}

// launch calls EC2 and marks the offerings EC2 said it has no capacity (or
// quota) for unavailable, whether the launch failed or succeeded with
// another offering.
func (p *Provider) launch(ctx context.Context, req *ec2.LaunchRequest) (*ec2.Instance, error) {
	inst, err := p.EC2.Launch(ctx, *req)
	failed := ec2.UnavailableOfferings(err)
	if inst != nil {
		failed = inst.SkippedOfferings
	}
	for _, f := range failed {
		p.Catalog.MarkUnavailable(f.InstanceType, f.Zone, f.CapacityType, p.UnavailableTTL)
	}
	return inst, err
}

func hasCapacityType(options []*packing.PoolOption, capacityType string) bool {
	for _, o := range options {
		if o.CapacityType == capacityType {
			return true
		}
	}
	return false
}

func (p *Provider) nodeClass(nc *karpv1.NodeClaim) (*ec2v1.EC2NodeClass, error) {
	ref := nc.Spec.NodeClassRef
	if ref == nil {
		return nil, fmt.Errorf("spec.nodeClassRef is not set")
	}
	class, err := p.NodeClasses.Get(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("EC2NodeClass %q: %w", ref.Name, err)
	}
	if !meta.IsStatusConditionTrue(class.Status.Conditions, ec2v1.ConditionTypeReady) {
		return nil, fmt.Errorf("EC2NodeClass %q is not ready", ref.Name)
	}
	return class, nil
}

// preferredCapacityType launches spot where the claim allows it (it is the
// cheaper capacity the user opted into), else on-demand. Spot offerings
// marked unavailable are not among the options, so a claim whose every
// spot offering is out launches on-demand.
func preferredCapacityType(options []*packing.PoolOption) string {
	for _, o := range options {
		if o.CapacityType == karpv1.CapacityTypeSpot {
			return karpv1.CapacityTypeSpot
		}
	}
	return karpv1.CapacityTypeOnDemand
}

// launchRequest is the claim's launch. Its user data is rendered with a
// bootstrap token only when the claim has no launch template yet (see
// joinToken); the token is returned so the launch can record or revoke it.
func (p *Provider) launchRequest(ctx context.Context, nc *karpv1.NodeClaim, class *ec2v1.EC2NodeClass, options []*packing.PoolOption, capacityType string) (*ec2.LaunchRequest, joinToken, error) {
	endpoint, err := p.endpoint(ctx)
	if err != nil {
		return nil, joinToken{}, err
	}
	token, err := p.joinToken(ctx, nc)
	if ce := bootstrap.AsCredentialsError(err); ce != nil {
		// A node could not join with them: launch nothing until they are
		// fixed (the EC2NodeClass says so too).
		return nil, joinToken{}, &cloudprovider.LaunchError{Reason: ce.Reason, RetryAfter: credentialsRetry, Err: ce}
	}
	if err != nil {
		return nil, joinToken{}, fmt.Errorf("bootstrap credentials: %w", err)
	}
	var userData string
	if token.creds != nil {
		userData, err = bootstrap.Render(bootstrap.UserDataInput{
			APIServerEndpoint: endpoint,
			Credentials:       *token.creds,
			NodeName:          nc.Name,
			Labels:            nc.Labels,
			Taints:            nc.Spec.Taints,
			StartupTaints:     nc.Spec.StartupTaints,
			Kubelet:           kubeletFlags(class),
			UserData:          deref(class.Spec.UserData),
		})
		if err != nil {
			p.launchFailed(ctx, nc, token)
			return nil, joinToken{}, fmt.Errorf("rendering user data: %w", err)
		}
	}
	req := &ec2.LaunchRequest{
		ClusterName:         p.ClusterName,
		NodePoolName:        nc.Labels[karpv1.NodePoolLabelKey],
		NodeClassName:       class.Name,
		NodeClaimName:       nc.Name,
		NodeClaimUID:        string(nc.UID),
		CapacityType:        capacityType,
		InstanceTypes:       candidates(options, capacityType),
		Subnets:             subnets(class),
		SecurityGroupIDs:    securityGroups(class),
		AMIs:                amis(class),
		UserData:            userData,
		MetadataOptions:     metadataOptions(class),
		BlockDeviceMappings: blockDevices(class),
		DetailedMonitoring:  class.Spec.DetailedMonitoring != nil && *class.Spec.DetailedMonitoring,
		InstanceProfile:     class.Status.InstanceProfile, // the class's own, or the one made for its role
		Tags:                token.tags(class.Spec.Tags),
		Network:             networkInterface(class),
		Context:             deref(class.Spec.Context),
		LaunchAttempt:       cloudprovider.LaunchAttempt(nc),
	}
	return req, token, nil
}

// candidates groups the options of one capacity type by instance type,
// keeping the cheapest-first order.
func candidates(options []*packing.PoolOption, capacityType string) []ec2.CandidateType {
	index := map[string]int{}
	var out []ec2.CandidateType
	for _, o := range options {
		if o.CapacityType != capacityType {
			continue
		}
		i, ok := index[o.InstanceType]
		if !ok {
			i = len(out)
			index[o.InstanceType] = i
			out = append(out, ec2.CandidateType{Name: o.InstanceType, Architecture: o.Labels[v1.LabelArchStable]})
		}
		out[i].Offerings = append(out[i].Offerings, ec2.CandidateOffering{Zone: o.Zone, CapacityType: o.CapacityType, Price: o.Price})
	}
	return out
}

// launched is the claim as its instance turned out: the labels of the
// option it launched as, and the status a node of it will have.
//
// The labels are the option's node labels (what the Provisioner's filters
// judged the node by): the offering's well-known labels plus the pool's -
// template labels, the pool name and single-valued requirements on keys no
// instance type defines (`team In [scan]` -> team=scan). Pods were packed
// onto the claim because of them, so the Node must carry them all.
func launched(nc *karpv1.NodeClaim, class *ec2v1.EC2NodeClass, inst *ec2.Instance, options []*packing.PoolOption) *karpv1.NodeClaim {
	out := nc.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	// What the instance was launched with, for drift.
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	out.Annotations[ec2v1.AnnotationEC2NodeClassHash] = class.Hash()
	out.Annotations[ec2v1.AnnotationEC2NodeClassHashVersion] = ec2v1.EC2NodeClassHashVersion
	for _, o := range options {
		if o.InstanceType == inst.Type && o.Zone == inst.Zone && o.CapacityType == inst.CapacityType {
			labels := o.Labels
			if o.Node != nil && o.Node.Labels != nil {
				labels = o.Node.Labels
			}
			for k, v := range labels {
				out.Labels[k] = v
			}
			out.Status.Capacity = o.Capacity
			out.Status.Allocatable = o.Allocatable
			break
		}
	}
	out.Labels[v1.LabelInstanceTypeStable] = inst.Type
	out.Labels[v1.LabelTopologyZone] = inst.Zone
	out.Labels[karpv1.CapacityTypeLabelKey] = inst.CapacityType
	out.Status.ProviderID = inst.ProviderID()
	out.Status.ImageID = inst.ImageID
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
