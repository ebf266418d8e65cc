package pricing

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"

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
	if err := l.RefreshSpot(context.Background()); err == nil {
		t.Fatal("RefreshSpot without a client succeeded")
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
	if p, ok := l.SpotPrice("m5.large", "us-east-1a"); !ok || p <= 0 {
		t.Fatalf("SpotPrice(m5.large, us-east-1a) = %v, %v", p, ok)
	}
	// moto does not offer m5.large in us-east-1e: no price, not a made-up one.
	if p, ok := l.SpotPrice("m5.large", "us-east-1e"); ok {
		t.Fatalf("SpotPrice(m5.large, us-east-1e) = %v, want unknown", p)
	}
	if _, ok := l.SpotPrice("m5.huge", "us-east-1a"); ok {
		t.Fatal("spot price for an unknown type")
	}

	// A failing refresh keeps the last good table.
	cfg := m.AWSConfig()
	cfg.BaseEndpoint = aws.String("http://127.0.0.1:1")
	cfg.RetryMaxAttempts = 1
	l.api = awsec2.NewFromConfig(cfg)
	if err := l.RefreshSpot(ctx); err == nil {
		t.Fatal("RefreshSpot against a closed port succeeded")
	}
	if _, ok := l.SpotPrice("m5.large", "us-east-1a"); !ok {
		t.Fatal("failed refresh dropped the previous spot prices")
	}
}
