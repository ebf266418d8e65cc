package ec2

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

const (
	al2023AMD64 = "ami-0ed094fb1304fd857" // moto's al2023-ami-kernel-default-x86_64
	al2023ARM64 = "ami-0d6fc8f787cd9a417" // moto's al2023-ami-kernel-default-arm64
)

// resolveWorld is a VPC with tagged subnets and a security group, a tagged
// image and an SSM parameter, all named after the test's cluster.
type resolveWorld struct {
	cluster                    string
	privA, privB, public, sgID string
}

func newResolveWorld(t *testing.T, ec2c *awsec2.Client, ssmc *ssm.Client) resolveWorld {
	t.Helper()
	ctx := context.Background()
	w := resolveWorld{cluster: clusterName(t)}
	vpc, err := ec2c.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	mk := func(cidr, zone, tier string) string {
		out, err := ec2c.CreateSubnet(ctx, &awsec2.CreateSubnetInput{
			VpcId: aws.String(vpcID), CidrBlock: aws.String(cidr), AvailabilityZone: aws.String(zone),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSubnet,
				Tags: toEC2Tags(map[string]string{"karpenter.sh/discovery": w.cluster, "tier": tier})}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Subnet.SubnetId)
	}
	w.privB = mk("10.9.2.0/24", "us-east-1b", "private")
	w.privA = mk("10.9.1.0/24", "us-east-1a", "private")
	w.public = mk("10.9.3.0/28", "us-east-1a", "public")
	sg, err := ec2c.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{
		GroupName: aws.String("nodes-" + w.cluster), Description: aws.String("nodes"), VpcId: aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
			Tags: toEC2Tags(map[string]string{"karpenter.sh/discovery": w.cluster})}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.sgID = aws.ToString(sg.GroupId)
	if _, err := ec2c.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: []string{al2023ARM64},
		Tags: toEC2Tags(map[string]string{"karpenter.sh/discovery": w.cluster})}); err != nil {
		t.Fatal(err)
	}
	if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/" + w.cluster + "/node-ami"),
		Value: aws.String(al2023AMD64), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestResolveSubnets(t *testing.T) {
	ec2c, ssmc := motoClients()
	w := newResolveWorld(t, ec2c, ssmc)
	r := NewResolver(ec2c, ssmc, ResolverOptions{})
	disc := map[string]string{"karpenter.sh/discovery": w.cluster}
	for _, tc := range []struct {
		name    string
		terms   []SubnetSelectorTerm
		want    []string
		wantErr string
	}{
		{name: "by tag", terms: []SubnetSelectorTerm{{Tags: disc}},
			want: []string{w.privA, w.public, w.privB}},
		{name: "by two tags", terms: []SubnetSelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": w.cluster, "tier": "private"}}},
			want: []string{w.privA, w.privB}},
		{name: "wildcard value", terms: []SubnetSelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": w.cluster, "tier": "*"}}},
			want: []string{w.privA, w.public, w.privB}},
		{name: "by id", terms: []SubnetSelectorTerm{{ID: w.privB}}, want: []string{w.privB}},
		{name: "terms are ORed and deduplicated", terms: []SubnetSelectorTerm{{ID: w.privB}, {Tags: map[string]string{"tier": "private", "karpenter.sh/discovery": w.cluster}}},
			want: []string{w.privA, w.privB}},
		{name: "one term matching nothing is tolerated", terms: []SubnetSelectorTerm{{ID: "subnet-0000000000000000"}, {ID: w.public}},
			want: []string{w.public}},
		{name: "nothing matches", terms: []SubnetSelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "nope"}}, {ID: "subnet-0000000000000000"}},
			wantErr: "no subnet matched: subnetSelectorTerms[0] {tags: {karpenter.sh/discovery: nope}}; subnetSelectorTerms[1] {id: subnet-0000000000000000}"},
		{name: "id with tags", terms: []SubnetSelectorTerm{{ID: w.privA, Tags: disc}}, wantErr: "id cannot be combined with tags"},
		{name: "empty term", terms: []SubnetSelectorTerm{{}}, wantErr: "subnetSelectorTerms[0] {}: set id or tags"},
		{name: "no terms", wantErr: "at least one term is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Subnets(context.Background(), tc.terms)
			if !resolved(t, err, tc.wantErr) {
				return
			}
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ID)
				if s.Zone == "" || s.ZoneID == "" || s.AvailableIPs <= 0 {
					t.Errorf("incomplete subnet %+v", s)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("subnets = %v, want %v (zone order, most free addresses first)", ids, tc.want)
			}
		})
	}
}

func TestResolveSecurityGroups(t *testing.T) {
	ec2c, ssmc := motoClients()
	w := newResolveWorld(t, ec2c, ssmc)
	r := NewResolver(ec2c, ssmc, ResolverOptions{})
	for _, tc := range []struct {
		name    string
		terms   []SecurityGroupSelectorTerm
		want    string
		wantErr string
	}{
		{name: "by tag", terms: []SecurityGroupSelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": w.cluster}}}, want: w.sgID},
		{name: "by wildcard tag and name", terms: []SecurityGroupSelectorTerm{{Name: "nodes-" + w.cluster, Tags: map[string]string{"karpenter.sh/discovery": "*"}}}, want: w.sgID},
		{name: "by id", terms: []SecurityGroupSelectorTerm{{ID: w.sgID}}, want: w.sgID},
		{name: "unmatched name", terms: []SecurityGroupSelectorTerm{{Name: "no-such-group"}},
			wantErr: "no security group matched: securityGroupSelectorTerms[0] {name: no-such-group}"},
		{name: "id and name", terms: []SecurityGroupSelectorTerm{{ID: w.sgID, Name: "x"}}, wantErr: "id cannot be combined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.SecurityGroups(context.Background(), tc.terms)
			if !resolved(t, err, tc.wantErr) {
				return
			}
			if len(got) != 1 || got[0].ID != tc.want || got[0].Name != "nodes-"+w.cluster {
				t.Fatalf("groups = %+v, want %s", got, tc.want)
			}
		})
	}
}

func TestResolveAMIs(t *testing.T) {
	ec2c, ssmc := motoClients()
	w := newResolveWorld(t, ec2c, ssmc)
	plain := NewResolver(ec2c, ssmc, ResolverOptions{AliasParameter: AmazonLinuxAliasParameter})
	eks := NewResolver(ec2c, ssmc, ResolverOptions{KubernetesVersion: "1.33"})
	for _, tc := range []struct {
		name    string
		r       *Resolver
		terms   []AMISelectorTerm
		want    map[string]string // arch -> newest id
		wantErr string
	}{
		{name: "by id", r: plain, terms: []AMISelectorTerm{{ID: al2023AMD64}}, want: map[string]string{ArchAMD64: al2023AMD64}},
		{name: "by name and owner", r: plain, terms: []AMISelectorTerm{{Name: "al2023-ami-2023.*-kernel-6.1-arm64", Owner: "amazon"}},
			want: map[string]string{ArchARM64: al2023ARM64}},
		{name: "by name with default owners", r: plain, terms: []AMISelectorTerm{{Name: "al2023-ami-2023.*-kernel-6.1-x86_64"}},
			want: map[string]string{ArchAMD64: al2023AMD64}},
		{name: "by tags", r: plain, terms: []AMISelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": w.cluster}}},
			want: map[string]string{ArchARM64: al2023ARM64}},
		{name: "by ssm parameter", r: plain, terms: []AMISelectorTerm{{SSMParameter: "/" + w.cluster + "/node-ami"}},
			want: map[string]string{ArchAMD64: al2023AMD64}},
		{name: "two terms, both arches", r: plain, terms: []AMISelectorTerm{{SSMParameter: "/" + w.cluster + "/node-ami"}, {ID: al2023ARM64}},
			want: map[string]string{ArchAMD64: al2023AMD64, ArchARM64: al2023ARM64}},
		{name: "alias through the public SSM parameters", r: plain, terms: []AMISelectorTerm{{Alias: "al2023@latest"}},
			want: map[string]string{ArchAMD64: al2023AMD64, ArchARM64: al2023ARM64}},
		// moto has no EKS-optimized parameters: the error says where it looked.
		{name: "EKS alias missing in SSM", r: eks, terms: []AMISelectorTerm{{Alias: "al2023@latest"}},
			wantErr: "no AMI matched: amiSelectorTerms[0] {alias: al2023@latest} (no image id at SSM parameters /aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id"},
		{name: "EKS alias without a Kubernetes version", r: NewResolver(ec2c, ssmc, ResolverOptions{}), terms: []AMISelectorTerm{{Alias: "al2023@latest"}},
			wantErr: "needs the cluster's Kubernetes version"},
		{name: "alias must be alone", r: plain, terms: []AMISelectorTerm{{Alias: "al2023@latest"}, {ID: al2023AMD64}}, wantErr: "an alias must be the only term"},
		{name: "alias without version", r: plain, terms: []AMISelectorTerm{{Alias: "al2023"}}, wantErr: "want <family>@<version>"},
		{name: "unknown id", r: plain, terms: []AMISelectorTerm{{ID: "ami-00000000"}}, wantErr: "no AMI matched: amiSelectorTerms[0] {id: ami-00000000}"},
		{name: "missing ssm parameter", r: plain, terms: []AMISelectorTerm{{SSMParameter: "/nope"}},
			wantErr: "amiSelectorTerms[0] {ssmParameter: /nope} (SSM parameter not found)"},
		{name: "id with name", r: plain, terms: []AMISelectorTerm{{ID: al2023AMD64, Name: "x"}}, wantErr: "id cannot be combined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.r.AMIs(context.Background(), tc.terms)
			if !resolved(t, err, tc.wantErr) {
				return
			}
			newest := NewestPerArch(got)
			if len(newest) != len(tc.want) {
				t.Fatalf("newest per arch = %v, want %v", newest, tc.want)
			}
			for arch, id := range tc.want {
				if newest[arch] != id {
					t.Fatalf("newest %s = %s, want %s (all: %+v)", arch, newest[arch], id, got)
				}
			}
		})
	}
}

func TestEKSAliasParameter(t *testing.T) {
	for _, tc := range []struct{ family, version, arch, want string }{
		{"al2023", "latest", "x86_64", "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id"},
		{"al2023", "v20250505", "arm64", "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/arm64/standard/amazon-eks-node-al2023-arm64-standard-1.33-v20250505/image_id"},
		{"al2", "latest", "arm64", "/aws/service/eks/optimized-ami/1.33/amazon-linux-2-arm64/recommended/image_id"},
		{"al2", "v20250505", "x86_64", "/aws/service/eks/optimized-ami/1.33/amazon-linux-2/amazon-eks-node-1.33-v20250505/image_id"},
		{"bottlerocket", "latest", "x86_64", "/aws/service/bottlerocket/aws-k8s-1.33/x86_64/latest/image_id"},
		{"bottlerocket", "v1.40.0", "arm64", "/aws/service/bottlerocket/aws-k8s-1.33/arm64/1.40.0/image_id"},
	} {
		got, err := EKSAliasParameter(tc.family, tc.version, tc.arch, "1.33")
		if err != nil || got != tc.want {
			t.Errorf("EKSAliasParameter(%s, %s, %s) = %q, %v; want %q", tc.family, tc.version, tc.arch, got, err, tc.want)
		}
	}
	if _, err := EKSAliasParameter("windows2022", "latest", "x86_64", "1.33"); err == nil {
		t.Error("unsupported family accepted")
	}
}

// resolved checks a resolution's error against wantErr, a part of the
// error wanted ("" for none), and says whether there is a result to check.
func resolved(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}
