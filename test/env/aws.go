package env

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// AWSWorld is what SeedAWS made: the network and image an EC2NodeClass
// selecting the discovery tag resolves to.
type AWSWorld struct {
	VPCID           string
	SubnetIDs       []string
	SecurityGroupID string
	ImageID         string
	NodeRole        string
}

// DiscoveryTagKey is the tag EC2NodeClass selectors use in the examples.
const DiscoveryTagKey = "karpenter.sh/discovery"

// SeedAWS creates a VPC with one subnet in each of three zones, a security
// group, and tags them and one of the server's amd64 images with
// karpenter.sh/discovery=<discovery>; and the IAM role
// KarpenterNodeRole-<discovery>.
func SeedAWS(ctx context.Context, cfg aws.Config, discovery string) (*AWSWorld, error) {
	client := awsec2.NewFromConfig(cfg)
	tags := []ec2types.Tag{{Key: aws.String(DiscoveryTagKey), Value: aws.String(discovery)}}
	vpc, err := client.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		return nil, fmt.Errorf("CreateVpc: %w", err)
	}
	w := &AWSWorld{VPCID: aws.ToString(vpc.Vpc.VpcId)}
	for i, zone := range []string{"a", "b", "c"} {
		sn, err := client.CreateSubnet(ctx, &awsec2.CreateSubnetInput{
			VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i+1)),
			AvailabilityZone:  aws.String(cfg.Region + zone),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSubnet, Tags: tags}},
		})
		if err != nil {
			return nil, fmt.Errorf("CreateSubnet: %w", err)
		}
		w.SubnetIDs = append(w.SubnetIDs, aws.ToString(sn.Subnet.SubnetId))
	}
	sg, err := client.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{
		GroupName: aws.String(discovery + "-nodes"), Description: aws.String("nodes"), VpcId: vpc.Vpc.VpcId,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: tags}},
	})
	if err != nil {
		return nil, fmt.Errorf("CreateSecurityGroup: %w", err)
	}
	w.SecurityGroupID = aws.ToString(sg.GroupId)
	images, err := client.DescribeImages(ctx, &awsec2.DescribeImagesInput{
		Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}},
	})
	if err != nil || len(images.Images) == 0 {
		return nil, fmt.Errorf("DescribeImages found no x86_64 image: %v", err)
	}
	w.ImageID = aws.ToString(images.Images[0].ImageId)
	if _, err := client.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: []string{w.ImageID}, Tags: tags}); err != nil {
		return nil, fmt.Errorf("tagging image: %w", err)
	}
	// The role the example EC2NodeClass names; its instance profile is
	// fleet-scheduler's to make.
	w.NodeRole = "KarpenterNodeRole-" + discovery
	if _, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(w.NodeRole),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		return nil, fmt.Errorf("creating IAM role %s: %w", w.NodeRole, err)
	}
	return w, nil
}
