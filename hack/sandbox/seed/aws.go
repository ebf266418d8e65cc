package seed

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// DiscoveryTag is the tag the example EC2NodeClass selects subnets,
// security groups and the AMI by (Terraform sets it on the real ones).
const DiscoveryTag = "karpenter.sh/discovery"

// Network is what EC2Network created.
type Network struct {
	VPCID           string
	Subnets         map[string]string // zone -> subnet id
	SecurityGroupID string
	AMIID           string
	AMIName         string
}

// Zones are the sandbox's availability zones, with their subnets.
var Zones = []struct{ Zone, CIDR string }{
	{"us-east-1a", "10.0.1.0/24"},
	{"us-east-1b", "10.0.2.0/24"},
	{"us-east-1c", "10.0.3.0/24"},
}

// EC2Network creates in moto what the seed's Terraform creates for the
// cluster: a VPC, a private subnet in each of three zones and the node
// security group, tagged karpenter.sh/discovery=<cluster>; and the team's
// kubeadm node image, baked from a stock Ubuntu image and tagged the same
// way, so the example EC2NodeClass resolves.
func EC2Network(ctx context.Context, c *ec2.Client, cluster, kubernetesVersion string) (Network, error) {
	tags := func(rt ec2types.ResourceType, name string) []ec2types.TagSpecification {
		return []ec2types.TagSpecification{{ResourceType: rt, Tags: []ec2types.Tag{
			{Key: aws.String(DiscoveryTag), Value: aws.String(cluster)},
			{Key: aws.String("Name"), Value: aws.String(name)},
		}}}
	}
	n := Network{Subnets: map[string]string{}}
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16"), TagSpecifications: tags(ec2types.ResourceTypeVpc, cluster+"-vpc")})
	if err != nil {
		return n, fmt.Errorf("creating the VPC: %w", err)
	}
	n.VPCID = aws.ToString(vpc.Vpc.VpcId)
	for _, z := range Zones {
		sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{
			VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(z.CIDR), AvailabilityZone: aws.String(z.Zone),
			TagSpecifications: tags(ec2types.ResourceTypeSubnet, cluster+"-private-"+z.Zone),
		})
		if err != nil {
			return n, fmt.Errorf("creating the subnet in %s: %w", z.Zone, err)
		}
		n.Subnets[z.Zone] = aws.ToString(sn.Subnet.SubnetId)
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(cluster + "-node"), Description: aws.String("kubeadm worker nodes of " + cluster),
		VpcId: vpc.Vpc.VpcId, TagSpecifications: tags(ec2types.ResourceTypeSecurityGroup, cluster+"-node"),
	})
	if err != nil {
		return n, fmt.Errorf("creating the security group: %w", err)
	}
	n.SecurityGroupID = aws.ToString(sg.GroupId)

	// Bake the node image: moto's RegisterImage records no architecture, so
	// the image is made from an instance of a stock x86_64 Ubuntu image.
	base, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"099720109477"},
		Filters: []ec2types.Filter{
			{Name: aws.String("architecture"), Values: []string{"x86_64"}},
			{Name: aws.String("name"), Values: []string{"ubuntu/images/hvm-ssd/ubuntu-*-amd64-server-*"}},
		},
	})
	if err != nil {
		return n, fmt.Errorf("finding a base image: %w", err)
	}
	if len(base.Images) == 0 {
		return n, fmt.Errorf("moto has no x86_64 Ubuntu image to bake the node image from")
	}
	sort.Slice(base.Images, func(i, j int) bool { return aws.ToString(base.Images[i].Name) > aws.ToString(base.Images[j].Name) })
	builder, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: base.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Medium, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(n.Subnets[Zones[0].Zone]),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String("Name"), Value: aws.String(cluster + "-image-builder")},
		}}},
	})
	if err != nil {
		return n, fmt.Errorf("starting the image builder instance: %w", err)
	}
	builderID := builder.Instances[0].InstanceId
	n.AMIName = fmt.Sprintf("%s-kubeadm-node-%s-amd64", cluster, kubernetesVersion)
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{
		InstanceId: builderID, Name: aws.String(n.AMIName),
		Description:       aws.String("Ubuntu with containerd, kubelet and kubeadm " + kubernetesVersion),
		TagSpecifications: tags(ec2types.ResourceTypeImage, n.AMIName),
	})
	if err != nil {
		return n, fmt.Errorf("creating the node image: %w", err)
	}
	n.AMIID = aws.ToString(img.ImageId)
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(builderID)}}); err != nil {
		return n, fmt.Errorf("terminating the image builder: %w", err)
	}
	return n, nil
}

// SSM parameter names of the runbook's step 3.
const (
	TokenParameter      = "/sesacthon/dev/karpenter/bootstrap-token"
	CACertHashParameter = "/sesacthon/dev/karpenter/ca-cert-hash"
)

// PutJoinParameters is the runbook's step 3: the token as a SecureString,
// the CA hash as a String without its "sha256:" prefix, as the runbook
// stores it.
func PutJoinParameters(ctx context.Context, c *ssm.Client, token, caCertHash string) error {
	for _, p := range []struct {
		name, value string
		typ         ssmtypes.ParameterType
	}{
		{TokenParameter, token, ssmtypes.ParameterTypeSecureString},
		{CACertHashParameter, trimSHA256(caCertHash), ssmtypes.ParameterTypeString},
	} {
		if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(p.name), Value: aws.String(p.value), Type: p.typ, Overwrite: aws.Bool(true),
		}); err != nil {
			return fmt.Errorf("ssm put-parameter %s: %w", p.name, err)
		}
	}
	return nil
}

func trimSHA256(h string) string {
	if len(h) > 7 && (h[:7] == "sha256:" || h[:7] == "SHA256:") {
		return h[7:]
	}
	return h
}
