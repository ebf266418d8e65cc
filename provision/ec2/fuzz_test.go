package ec2

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// echoEC2 answers every Describe with one resource, whatever the filters:
// the fuzzed part is the resolver's handling of the terms and of what
// comes back, not the matching (moto does that in the other tests, but at
// a few calls a second, too slow to fuzz).
type echoEC2 struct{ EC2API }

func (echoEC2) DescribeSubnets(context.Context, *awsec2.DescribeSubnetsInput, ...func(*awsec2.Options)) (*awsec2.DescribeSubnetsOutput, error) {
	return &awsec2.DescribeSubnetsOutput{Subnets: []ec2types.Subnet{{SubnetId: aws.String("subnet-1"), AvailabilityZone: aws.String("us-east-1a"),
		AvailabilityZoneId: aws.String("use1-az1"), AvailableIpAddressCount: aws.Int32(250), State: ec2types.SubnetStateAvailable}}}, nil
}

func (echoEC2) DescribeSecurityGroups(context.Context, *awsec2.DescribeSecurityGroupsInput, ...func(*awsec2.Options)) (*awsec2.DescribeSecurityGroupsOutput, error) {
	return &awsec2.DescribeSecurityGroupsOutput{SecurityGroups: []ec2types.SecurityGroup{{GroupId: aws.String("sg-1"), GroupName: aws.String("nodes")}}}, nil
}

func (echoEC2) DescribeImages(_ context.Context, in *awsec2.DescribeImagesInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeImagesOutput, error) {
	id := "ami-1"
	if len(in.ImageIds) > 0 {
		id = in.ImageIds[0]
	}
	return &awsec2.DescribeImagesOutput{Images: []ec2types.Image{{ImageId: aws.String(id), Name: aws.String("node-image"),
		Architecture: ec2types.ArchitectureValuesX8664, State: ec2types.ImageStateAvailable, CreationDate: aws.String("2026-01-01T00:00:00.000Z")}}}, nil
}

type echoSSM struct{}

func (echoSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if strings.Contains(aws.ToString(in.Name), "missing") {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String("ami-0123456789abcdef0")}}, nil
}

// FuzzResolveTerms: no EC2NodeClass selector term - subnet, security
// group or AMI (alias, id, name, owner, tags, SSM parameter) - makes the
// resolver panic; a term it refuses is named in the error, and what it
// resolves is what EC2 answered.
func FuzzResolveTerms(f *testing.F) {
	f.Add("", "", "", "al2023@latest", "", "karpenter.sh/discovery", "sesacthon-dev")
	f.Add("subnet-0abc", "nodes", "self", "", "/aws/service/eks/x", "", "")
	f.Add("", "", "123456789012", "bottlerocket@v1.20.0", "", "Name", "*")
	f.Add("ami-1", "my-image-*", "amazon", "al2@", "missing", "a", "")
	f.Add("", "", "", "windows2022@latest", "", "", "")
	r := NewResolver(echoEC2{}, echoSSM{}, ResolverOptions{KubernetesVersion: "1.33"})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, id, name, owner, alias, ssmParameter, tagKey, tagValue string) {
		var tags map[string]string
		if tagKey != "" || tagValue != "" {
			tags = map[string]string{tagKey: tagValue}
		}
		subnets, err := r.Subnets(ctx, []SubnetSelectorTerm{{ID: id, Tags: tags}})
		check(t, "subnetSelectorTerms[0]", err, len(subnets))
		groups, err := r.SecurityGroups(ctx, []SecurityGroupSelectorTerm{{ID: id, Name: name, Tags: tags}})
		check(t, "securityGroupSelectorTerms[0]", err, len(groups))
		amis, err := r.AMIs(ctx, []AMISelectorTerm{{Alias: alias, ID: id, Name: name, Owner: owner, Tags: tags, SSMParameter: ssmParameter}})
		check(t, "amiSelectorTerms[0]", err, len(amis))
		for _, a := range amis {
			if a.ID == "" || a.Architecture == "" {
				t.Fatalf("resolved an image without id or architecture: %+v", a)
			}
		}
	})
}

func check(t *testing.T, term string, err error, n int) {
	t.Helper()
	switch {
	case err != nil && !strings.Contains(err.Error(), term) && !errors.Is(err, context.Canceled):
		t.Fatalf("error %q does not name %s", err, term)
	case err == nil && n == 0:
		t.Fatalf("%s resolved to nothing without an error", term)
	}
}
