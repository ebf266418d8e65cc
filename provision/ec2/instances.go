package ec2

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// liveStates are the states of an instance that still exists or may come
// back; terminated instances are gone for our purposes.
var liveStates = []string{
	string(ec2types.InstanceStateNamePending),
	string(ec2types.InstanceStateNameRunning),
	string(ec2types.InstanceStateNameStopping),
	string(ec2types.InstanceStateNameStopped),
	string(ec2types.InstanceStateNameShuttingDown),
}

// Get returns an instance. A terminated or unknown instance is an error
// wrapping ErrNotFound.
func (p *Provider) Get(ctx context.Context, instanceID string) (*Instance, error) {
	inst, err := p.describeInstance(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	if inst == nil || inst.State == string(ec2types.InstanceStateNameTerminated) {
		return nil, fmt.Errorf("instance %s: %w", instanceID, ErrNotFound)
	}
	return inst, nil
}

// List returns the live (not terminated) instances launched for a cluster
// by this package: those tagged kubernetes.io/cluster/<cluster>=owned with a
// karpenter.sh/nodeclaim tag. Sorted by launch time, then id.
func (p *Provider) List(ctx context.Context, clusterName string) ([]*Instance, error) {
	return p.describeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		filter("tag:"+ClusterTagKey(clusterName), "owned"),
		filter("tag-key", TagNodeClaim),
		filter("instance-state-name", liveStates...),
	}})
}

// Delete terminates an instance. An instance that is already gone, or never
// existed, is success.
func (p *Provider) Delete(ctx context.Context, instanceID string) error {
	out, err := p.ec2.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{instanceID}})
	if IsNotFound(err) {
		klog.FromContext(ctx).V(4).Info("Instance to terminate does not exist", "instance", instanceID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("terminating instance %s: %w", instanceID, err)
	}
	for _, c := range out.TerminatingInstances {
		if c.PreviousState != nil && c.PreviousState.Name != ec2types.InstanceStateNameTerminated {
			klog.FromContext(ctx).V(2).Info("Terminating instance", "instance", instanceID)
		}
	}
	return nil
}

// describeInstance returns nil, nil when EC2 does not know the instance.
func (p *Provider) describeInstance(ctx context.Context, id string) (*Instance, error) {
	found, err := p.describeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil || len(found) == 0 {
		return nil, err
	}
	return found[0], nil
}

func (p *Provider) describeInstances(ctx context.Context, in *awsec2.DescribeInstancesInput) ([]*Instance, error) {
	var out []*Instance
	err := eachPage(ctx, awsec2.NewDescribeInstancesPaginator(p.ec2, in), func(page *awsec2.DescribeInstancesOutput) {
		for _, r := range page.Reservations {
			for i := range r.Instances {
				out = append(out, fromEC2Instance(&r.Instances[i]))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("describing instances: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LaunchTime.Equal(out[j].LaunchTime) {
			return out[i].LaunchTime.Before(out[j].LaunchTime)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func fromEC2Instance(i *ec2types.Instance) *Instance {
	inst := &Instance{
		ID:             aws.ToString(i.InstanceId),
		Type:           string(i.InstanceType),
		SubnetID:       aws.ToString(i.SubnetId),
		CapacityType:   CapacityTypeOnDemand,
		ImageID:        aws.ToString(i.ImageId),
		LaunchTime:     aws.ToTime(i.LaunchTime),
		PrivateDNSName: aws.ToString(i.PrivateDnsName),
		PrivateIP:      aws.ToString(i.PrivateIpAddress),
		Tags:           fromEC2Tags(i.Tags),
	}
	if i.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot {
		inst.CapacityType = CapacityTypeSpot
	}
	for _, g := range i.SecurityGroups {
		inst.SecurityGroupIDs = append(inst.SecurityGroupIDs, aws.ToString(g.GroupId))
	}
	if i.Placement != nil {
		inst.Zone = aws.ToString(i.Placement.AvailabilityZone)
	}
	if i.State != nil {
		inst.State = string(i.State.Name)
	}
	switch i.Architecture {
	case ec2types.ArchitectureValuesX8664:
		inst.Architecture = ArchAMD64
	case ec2types.ArchitectureValuesArm64:
		inst.Architecture = ArchARM64
	}
	inst.NodeClaimName, inst.NodePoolName = inst.Tags[TagNodeClaim], inst.Tags[TagNodePool]
	return inst
}
