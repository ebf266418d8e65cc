package pricing

import (
	"context"
	"math"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

func TestLiveWithoutEC2(t *testing.T) {
	l, err := NewLive(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := l.OnDemandPrice("m5.large"); !ok || p != 0.096 {
		t.Fatalf("OnDemandPrice(m5.large) = %v, %v", p, ok)
	}
	if _, ok := l.SpotPrice("m5.large", "us-east-1a"); ok {
		t.Fatal("spot price known without any EC2 answer")
	}
	if l.SpotEstimated() {
		t.Fatal("spot prices estimated before any refresh failed")
	}
	if err := l.RefreshSpot(context.Background()); err == nil {
		t.Fatal("RefreshSpot without a client succeeded")
	}
	// EC2 never answered: spot is the on-demand price less the discount.
	if p, ok := l.SpotPrice("m5.large", "us-east-1a"); !ok || math.Abs(p-0.096*(1-DefaultSpotDiscount)) > 1e-12 || !l.SpotEstimated() {
		t.Fatalf("SpotPrice(m5.large) after a failed refresh = %v, %v (estimated %v), want %v", p, ok, l.SpotEstimated(), 0.096*(1-DefaultSpotDiscount))
	}
	if _, ok := l.SpotPrice("m5.huge", "us-east-1a"); ok {
		t.Fatal("spot price estimated for a type with no on-demand price")
	}
	l.SetOnDemandPrices(map[string]float64{"x.large": 1})
	if _, ok := l.OnDemandPrice("m5.large"); ok {
		t.Fatal("SetOnDemandPrices did not replace the table")
	}
	if p, ok := l.OnDemandPrice("x.large"); !ok || p != 1 {
		t.Fatalf("OnDemandPrice(x.large) = %v, %v", p, ok)
	}
}

func TestLiveSpotFromMoto(t *testing.T) {
	m := env.StartMotoT(t)
	ctx := context.Background()
	l, err := NewLive(awsec2.NewFromConfig(m.AWSConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.RefreshSpot(ctx); err != nil {
		t.Fatal(err)
	}
	if l.SpotUpdated().IsZero() {
		t.Fatal("SpotUpdated not set")
	}
	// moto answers with a placeholder price for every offered type and zone.
	if p, ok := l.SpotPrice("m5.large", "us-east-1a"); !ok || p <= 0 || p != answered(t, m, "m5.large", "us-east-1a") {
		t.Fatalf("SpotPrice(m5.large, us-east-1a) = %v, %v; not what DescribeSpotPriceHistory answered", p, ok)
	}
	// moto does not offer m5.large in us-east-1e: no price, not a made-up one.
	if p, ok := l.SpotPrice("m5.large", "us-east-1e"); ok {
		t.Fatalf("SpotPrice(m5.large, us-east-1e) = %v, want unknown", p)
	}
	if _, ok := l.SpotPrice("m5.huge", "us-east-1a"); ok {
		t.Fatal("spot price for an unknown type")
	}

	// A failing refresh keeps the last good table.
	l.api = awsec2.NewFromConfig(m.UnreachableAWSConfig())
	if err := l.RefreshSpot(ctx); err == nil {
		t.Fatal("RefreshSpot against a closed port succeeded")
	}
	if p, ok := l.SpotPrice("m5.large", "us-east-1a"); !ok || p != answered(t, m, "m5.large", "us-east-1a") {
		t.Fatalf("failed refresh dropped the previous spot prices: %v, %v", p, ok)
	}
	// Cached prices, not estimates: a type and zone EC2 gave no price for
	// still has none.
	if p, ok := l.SpotPrice("m5.large", "us-east-1e"); ok || l.SpotEstimated() {
		t.Fatalf("SpotPrice(m5.large, us-east-1e) after a failed refresh = %v, estimated %v; want unknown", p, l.SpotEstimated())
	}
}

// answered is the latest spot price moto's DescribeSpotPriceHistory gives
// for the type and zone.
func answered(t *testing.T, m *env.Moto, instanceType, zone string) float64 {
	t.Helper()
	out, err := awsec2.NewFromConfig(m.AWSConfig()).DescribeSpotPriceHistory(context.Background(), &awsec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: []ec2types.InstanceType{ec2types.InstanceType(instanceType)},
		Filters:       []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{zone}}},
	})
	if err != nil || len(out.SpotPriceHistory) == 0 {
		t.Fatalf("DescribeSpotPriceHistory(%s, %s): %v", instanceType, zone, err)
	}
	p, err := strconv.ParseFloat(aws.ToString(out.SpotPriceHistory[0].SpotPrice), 64)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
