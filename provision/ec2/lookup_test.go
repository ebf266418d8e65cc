package ec2

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
)

// countingEC2 counts the DescribeInstances calls that reach moto.
type countingEC2 struct {
	EC2API
	describes atomic.Int32
}

func (c *countingEC2) DescribeInstances(ctx context.Context, in *awsec2.DescribeInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeInstancesOutput, error) {
	c.describes.Add(1)
	return c.EC2API.DescribeInstances(ctx, in, opts...)
}

// Launches of many claims at once ask EC2 for their claims' instances in
// one DescribeInstances, and each gets its own claim's instance (or none).
func TestConcurrentLookupsShareOneCall(t *testing.T) {
	ctx := context.Background()
	launcher, f, ec2c := motoProvider(t)
	launched := map[string]string{}
	for i := range 3 {
		claim := fmt.Sprintf("claim-%d", i)
		inst, err := launcher.Launch(ctx, f.request(t, claim, candidate(t, "m5.large", ArchAMD64, allZones...)))
		if err != nil {
			t.Fatal(err)
		}
		launched[claim] = inst.ID
	}
	cluster := f.request(t, "any").ClusterName

	counting := &countingEC2{EC2API: ec2c}
	p := NewProvider(counting, ProviderOptions{})
	const lookups = 12
	got := make([]*Instance, lookups)
	errs := make([]error, lookups)
	var wg sync.WaitGroup
	for i := range lookups {
		wg.Go(func() {
			got[i], errs[i] = p.findClaimInstance(ctx, cluster, fmt.Sprintf("claim-%d", i))
		})
	}
	wg.Wait()
	for i := range lookups {
		claim := fmt.Sprintf("claim-%d", i)
		if errs[i] != nil {
			t.Fatalf("%s: %v", claim, errs[i])
		}
		switch want, has := launched[claim]; {
		case has && (got[i] == nil || got[i].ID != want):
			t.Errorf("%s: found %v, want its instance %s", claim, got[i], want)
		case !has && got[i] != nil:
			t.Errorf("%s has no instance, but the lookup found %s", claim, got[i].ID)
		}
	}
	// All twelve start together; a goroutine the runtime starts late (a
	// loaded machine) may open a second batch, never one per claim.
	if n := counting.describes.Load(); n > 2 {
		t.Errorf("%d lookups made %d DescribeInstances calls, want them to share one", lookups, n)
	}
	t.Logf("%d lookups, %d DescribeInstances calls", lookups, counting.describes.Load())

	// A caller that gives up returns at once; the others still get their answer.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.findClaimInstance(cancelled, cluster, "claim-0"); err == nil {
		t.Error("a lookup with a cancelled context answered")
	}
	if inst, err := p.findClaimInstance(ctx, cluster, "claim-1"); err != nil || inst == nil || inst.ID != launched["claim-1"] {
		t.Errorf("after a cancelled lookup: %v, %v; want %s", inst, err, launched["claim-1"])
	}
}
