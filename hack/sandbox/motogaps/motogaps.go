// Package motogaps makes moto_server do, for the sandbox, what EC2 does
// and moto 5.2 leaves out, where fleet-scheduler would otherwise act on
// moto's difference rather than on its own behaviour.
//
// One gap is filled: a spot instance an EC2 Fleet launches from a launch
// template gets the template's security groups on EC2; moto gives it the
// default VPC's "default" group instead (its on-demand instances get none).
// fleet-scheduler's drift check compares an instance's security groups
// with its EC2NodeClass's and would replace every spot node within a
// minute of its launch. SpotSecurityGroups sets them the way EC2 would,
// with ModifyInstanceAttribute, before the instance has booted.
package motogaps

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/instances"
)

// EC2API is what the gap filler asks moto.
type EC2API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeLaunchTemplates(context.Context, *ec2.DescribeLaunchTemplatesInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error)
	DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

// Tags fleet-scheduler puts on its instances and launch templates
// (provision/ec2): the cluster's, and the claim's, which links an instance
// to its template.
const (
	clusterTagPrefix = "kubernetes.io/cluster/"
	nodeClaimTag     = "karpenter.sh/nodeclaim"
)

// SpotSecurityGroups gives every spot instance of the cluster its launch
// template's security groups, polling every interval until ctx ends.
func SpotSecurityGroups(ctx context.Context, api EC2API, cluster string, interval time.Duration, log logr.Logger) {
	done := map[string]bool{}
	for {
		if err := fixSpot(ctx, api, cluster, done, log); err != nil && ctx.Err() == nil {
			log.V(2).Info("Filling moto's spot security groups", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func fixSpot(ctx context.Context, api EC2API, cluster string, done map[string]bool, log logr.Logger) error {
	for inst, err := range instances.All(ctx, api,
		ec2types.Filter{Name: aws.String("tag-key"), Values: []string{clusterTagPrefix + cluster}},
		ec2types.Filter{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	) {
		if err != nil {
			return err
		}
		id := aws.ToString(inst.InstanceId)
		if done[id] || inst.InstanceLifecycle != ec2types.InstanceLifecycleTypeSpot {
			continue
		}
		want, err := templateGroups(ctx, api, tag(inst.Tags, nodeClaimTag))
		if err != nil {
			return err
		}
		done[id] = true
		if len(want) == 0 || slices.Equal(groupIDs(inst.SecurityGroups), want) {
			continue
		}
		if _, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), Groups: want}); err != nil {
			done[id] = false
			return err
		}
		log.V(2).Info("Gave a spot instance its launch template's security groups (moto gives it the default group)",
			"instance", id, "securityGroups", want)
	}
	return nil
}

// templateGroups are the security groups of the claim's launch template:
// on the template itself, or on its primary network interface.
func templateGroups(ctx context.Context, api EC2API, claim string) ([]string, error) {
	if claim == "" {
		return nil, nil
	}
	lts, err := api.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + nodeClaimTag), Values: []string{claim}}},
	})
	if err != nil || len(lts.LaunchTemplates) == 0 {
		return nil, err
	}
	versions, err := api.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: lts.LaunchTemplates[0].LaunchTemplateId, Versions: []string{"$Latest"},
	})
	if err != nil || len(versions.LaunchTemplateVersions) == 0 || versions.LaunchTemplateVersions[0].LaunchTemplateData == nil {
		return nil, err
	}
	data := versions.LaunchTemplateVersions[0].LaunchTemplateData
	groups := data.SecurityGroupIds
	if len(groups) == 0 && len(data.NetworkInterfaces) > 0 {
		groups = data.NetworkInterfaces[0].Groups
	}
	return slices.Sorted(slices.Values(groups)), nil
}

func groupIDs(groups []ec2types.GroupIdentifier) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, aws.ToString(g.GroupId))
	}
	slices.Sort(out)
	return out
}

func tag(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
