package motogaps

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestSpotSecurityGroups: moto gives a spot instance of an EC2 Fleet the
// default group; after one pass it has its launch template's, and an
// on-demand one is left as it is.
func TestSpotSecurityGroups(t *testing.T) {
	ctx := context.Background()
	m := env.StartMotoT(t)
	c := ec2.NewFromConfig(m.AWSConfig())
	world, err := env.SeedAWS(ctx, m.AWSConfig(), "sesacthon-dev")
	if err != nil {
		t.Fatal(err)
	}
	launch := func(claim string, capacity ec2types.DefaultTargetCapacityType) string {
		tags := []ec2types.Tag{{Key: aws.String(nodeClaimTag), Value: aws.String(claim)}, {Key: aws.String(clusterTagPrefix + "c1"), Value: aws.String("owned")}}
		lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
			LaunchTemplateName: aws.String("fleet-scheduler/c1/" + claim),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(world.ImageID), SecurityGroupIds: []string{world.SecurityGroupID}},
			TagSpecifications:  []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeLaunchTemplate, Tags: tags}},
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.CreateFleet(ctx, &ec2.CreateFleetInput{
			Type:                        ec2types.FleetTypeInstant,
			TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: capacity},
			LaunchTemplateConfigs: []ec2types.FleetLaunchTemplateConfigRequest{{
				LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, Version: aws.String("$Latest")},
				Overrides:                   []ec2types.FleetLaunchTemplateOverridesRequest{{InstanceType: "t3.large", SubnetId: aws.String(world.SubnetIDs[0])}},
			}},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tags}},
		})
		if err != nil || len(out.Instances) == 0 {
			t.Fatalf("CreateFleet: %v", err)
		}
		return out.Instances[0].InstanceIds[0]
	}
	groups := func(id string) []string {
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		return groupIDs(out.Reservations[0].Instances[0].SecurityGroups)
	}
	spot, onDemand := launch("c1-spot", ec2types.DefaultTargetCapacityTypeSpot), launch("c1-od", ec2types.DefaultTargetCapacityTypeOnDemand)
	before, odBefore := groups(spot), groups(onDemand)
	if slices.Equal(before, []string{world.SecurityGroupID}) {
		t.Fatalf("moto gave the spot instance its template's groups %v already: the gap is closed, drop this filler", before)
	}
	if err := fixSpot(ctx, c, "c1", map[string]bool{}, logr.Discard()); err != nil {
		t.Fatal(err)
	}
	if got := groups(spot); !slices.Equal(got, []string{world.SecurityGroupID}) {
		t.Errorf("spot instance groups %v, want the template's [%s]", got, world.SecurityGroupID)
	}
	if got := groups(onDemand); !slices.Equal(got, odBefore) {
		t.Errorf("on-demand instance groups changed from %v to %v", odBefore, got)
	}
}
