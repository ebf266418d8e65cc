package ec2

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// One moto serves the package; tests keep apart by using their own cluster
// and claim names.
var moto *env.Moto

func TestMain(m *testing.M) { os.Exit(env.RunWithMoto(m, &moto)) }

// fastRetry keeps retry backoff short in tests.
var fastRetry = RetryOptions{MaxAttempts: 4, MaxBackoff: 50 * time.Millisecond}

func clientsAt(endpoint string) (*awsec2.Client, *ssm.Client) {
	cfg := moto.AWSConfig()
	cfg.BaseEndpoint = aws.String(endpoint)
	return NewEC2Client(cfg, fastRetry), NewSSMClient(cfg, fastRetry)
}

func motoClients() (*awsec2.Client, *ssm.Client) { return clientsAt(moto.Endpoint) }

// motoProvider is a provider on moto's clients, the fixture to launch with,
// and the EC2 client to look at what it did.
func motoProvider(t *testing.T) (*Provider, fixture, *awsec2.Client) {
	t.Helper()
	ec2c, ssmc := motoClients()
	return NewProvider(ec2c, ProviderOptions{}), newFixture(t, ec2c, ssmc), ec2c
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// clusterName is unique per test.
func clusterName(t *testing.T) string {
	return "c-" + strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
}

// fixture is what a launch needs, resolved from moto's default VPC.
type fixture struct {
	subnets []Subnet
	sgs     []string
	amis    map[string]string
}

func newFixture(t *testing.T, ec2c EC2API, ssmc SSMAPI) fixture {
	t.Helper()
	ctx := context.Background()
	r := NewResolver(ec2c, ssmc, ResolverOptions{AliasParameter: AmazonLinuxAliasParameter})
	subnets, err := r.Subnets(ctx, defaultSubnetTerms(t, ec2c))
	if err != nil {
		t.Fatal(err)
	}
	sgs, err := r.SecurityGroups(ctx, []SecurityGroupSelectorTerm{{Name: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	amis, err := r.AMIs(ctx, []AMISelectorTerm{{Alias: "al2023@latest"}})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{subnets: subnets, sgs: SecurityGroupIDs(sgs), amis: NewestPerArch(amis)}
}

// defaultSubnetTerms selects the default VPC's subnets by id.
func defaultSubnetTerms(t *testing.T, ec2c EC2API) []SubnetSelectorTerm {
	t.Helper()
	out, err := ec2c.DescribeSubnets(context.Background(), &awsec2.DescribeSubnetsInput{
		Filters: []ec2types.Filter{filter("default-for-az", "true")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var terms []SubnetSelectorTerm
	for _, s := range out.Subnets {
		terms = append(terms, SubnetSelectorTerm{ID: aws.ToString(s.SubnetId)})
	}
	return terms
}

// candidate builds a candidate type offered on-demand and spot in zones,
// priced from the embedded table.
func candidate(t *testing.T, name, arch string, zones ...string) CandidateType {
	t.Helper()
	price, ok := pricing.OnDemand(name)
	if !ok {
		t.Fatalf("no price for %s", name)
	}
	c := CandidateType{Name: name, Architecture: arch}
	for _, z := range zones {
		c.Offerings = append(c.Offerings,
			CandidateOffering{Zone: z, CapacityType: CapacityTypeOnDemand, Price: price},
			CandidateOffering{Zone: z, CapacityType: CapacityTypeSpot, Price: price / 3})
	}
	return c
}

func (f fixture) request(t *testing.T, claim string, types ...CandidateType) LaunchRequest {
	return LaunchRequest{
		ClusterName:      clusterName(t),
		NodePoolName:     "default",
		NodeClassName:    "default",
		NodeClaimName:    claim,
		NodeClaimUID:     "uid-" + claim,
		CapacityType:     CapacityTypeOnDemand,
		InstanceTypes:    types,
		Subnets:          f.subnets,
		SecurityGroupIDs: f.sgs,
		AMIs:             f.amis,
		UserData:         "#!/bin/bash\necho join " + claim + "\n",
		BlockDeviceMappings: []BlockDeviceMapping{{
			DeviceName: "/dev/xvda", VolumeSizeGiB: 30, VolumeType: "gp3",
			Encrypted: aws.Bool(true), DeleteOnTermination: aws.Bool(true),
		}},
		Tags: map[string]string{"team": "platform", TagNodeClaim: "cannot-override"},
	}
}

// claimInstances lists every instance (terminated included) tagged with claim.
func claimInstances(t *testing.T, ec2c EC2API, claim string) []*Instance {
	t.Helper()
	p := NewProvider(ec2c, ProviderOptions{})
	found, err := p.describeInstances(context.Background(), &awsec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{filter("tag:"+TagNodeClaim, claim)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
