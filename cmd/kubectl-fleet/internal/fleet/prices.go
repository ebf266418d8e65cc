package fleet

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// Prices are the embedded on-demand table, with spot prices from EC2's
// spot price history when a region is set (region, else AWS_REGION) and
// EC2 answers within 10s, else estimated from on-demand prices; and a
// sentence saying which.
func Prices(ctx context.Context, region string) (*pricing.Live, string) {
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	var api pricing.SpotPriceAPI
	if region != "" {
		if cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region)); err == nil {
			api = ec2.NewEC2Client(cfg, ec2.RetryOptions{MaxAttempts: 2, MaxBackoff: time.Second})
		}
	}
	prices, err := pricing.NewLive(api)
	if err != nil {
		return nil, err.Error()
	}
	spotCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := prices.RefreshSpot(spotCtx); err != nil {
		return prices, fmt.Sprintf("on-demand prices from the embedded %s table; spot prices estimated at %.0f%% off on-demand (EC2 spot price history: %v)",
			pricing.EmbeddedRegion, 100*pricing.DefaultSpotDiscount, err)
	}
	return prices, fmt.Sprintf("on-demand prices from the embedded %s table; spot prices from EC2 %s", pricing.EmbeddedRegion, region)
}

// FormatDollars prints an hourly price with 4 decimals, or in full when
// it is smaller (moto's spot prices are $0.00001).
func FormatDollars(p float64) string {
	if p > 0 && p < 0.0001 {
		return strconv.FormatFloat(p, 'f', -1, 64)
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}
