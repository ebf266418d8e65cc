package env

import (
	"context"
	"sync"
	"testing"

	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestMotoServersAreDistinct starts servers concurrently and checks each
// answers with its own state: a VPC made on one is not seen by another.
func TestMotoServersAreDistinct(t *testing.T) {
	const n = 3
	servers := make([]*Moto, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); servers[i], errs[i] = StartMoto("us-east-1") }()
	}
	wg.Wait()
	for _, m := range servers {
		if m != nil {
			t.Cleanup(m.Close)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	ec2 := awsec2.NewFromConfig(servers[0].AWSConfig())
	before, err := ec2.DescribeVpcs(ctx, &awsec2.DescribeVpcsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SeedAWS(ctx, servers[0].AWSConfig(), "distinct"); err != nil {
		t.Fatal(err)
	}
	for i, m := range servers {
		vpcs, err := awsec2.NewFromConfig(m.AWSConfig()).DescribeVpcs(ctx, &awsec2.DescribeVpcsInput{})
		if err != nil {
			t.Fatal(err)
		}
		want := len(before.Vpcs)
		if i == 0 {
			want++
		}
		if len(vpcs.Vpcs) != want {
			t.Errorf("server %d (%s) has %d VPCs, want %d", i, m.Endpoint, len(vpcs.Vpcs), want)
		}
	}
}
