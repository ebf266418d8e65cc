package pricing

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Provider answers price lookups in USD per hour. The bool is false when the
// price is unknown; callers must treat that as "no price", not as zero.
type Provider interface {
	OnDemandPrice(instanceType string) (float64, bool)
	SpotPrice(instanceType, zone string) (float64, bool)
}

// SpotPriceAPI is the one EC2 call the live provider makes.
type SpotPriceAPI = awsec2.DescribeSpotPriceHistoryAPIClient

// LinuxProductDescriptions are the spot product descriptions for Linux
// instances in a VPC. EC2 reports VPC prices under either name depending on
// the account's platform history.
var LinuxProductDescriptions = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

var _ Provider = &Live{}

// DefaultSpotDiscount is the share of the on-demand price a spot instance is
// taken to save while DescribeSpotPriceHistory has never answered. Spot
// saves 60-90% on most types; the low end keeps the estimate from making
// spot look cheaper than it is, while it still ranks below on-demand.
const DefaultSpotDiscount = 0.6

// Live serves on-demand prices from a table (the embedded one by default) and
// spot prices from the last successful DescribeSpotPriceHistory answer. It is
// safe for concurrent use; RefreshSpot swaps the spot table atomically and a
// failed refresh keeps the previous one. Until a refresh first succeeds, a
// failed one makes spot prices estimates: the on-demand price less
// DefaultSpotDiscount.
type Live struct {
	api   SpotPriceAPI
	clock clock.PassiveClock

	mu          sync.RWMutex
	onDemand    map[string]float64
	spot        map[spotKey]float64
	spotUpdated time.Time
	spotFailed  bool // the last refresh failed
}

type spotKey struct{ instanceType, zone string }

// NewLive builds a provider. api may be nil, in which case spot prices stay
// unknown. The on-demand table starts as the embedded one.
func NewLive(api SpotPriceAPI) (*Live, error) {
	table, err := OnDemandTable()
	if err != nil {
		return nil, err
	}
	return &Live{api: api, clock: clock.RealClock{}, onDemand: table, spot: map[spotKey]float64{}}, nil
}

// OnDemandPrice implements Provider.
func (l *Live) OnDemandPrice(instanceType string) (float64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	p, ok := l.onDemand[instanceType]
	return p, ok
}

// SpotPrice implements Provider: the latest spot price EC2 reported for the
// type in the zone. When DescribeSpotPriceHistory failed and never
// answered, it is the estimate from the on-demand price (SpotEstimated);
// otherwise a type and zone EC2 reported no price for has none.
func (l *Live) SpotPrice(instanceType, zone string) (float64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if p, ok := l.spot[spotKey{instanceType, zone}]; ok {
		return p, true
	}
	if l.estimating() {
		if od, ok := l.onDemand[instanceType]; ok {
			return od * (1 - DefaultSpotDiscount), true
		}
	}
	return 0, false
}

// SpotEstimated reports whether spot prices are estimates from the
// on-demand table: DescribeSpotPriceHistory failed and never answered.
func (l *Live) SpotEstimated() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.estimating()
}

func (l *Live) estimating() bool { return l.spotFailed && l.spotUpdated.IsZero() }

// SpotUpdated is when the spot table was last replaced (zero if never).
func (l *Live) SpotUpdated() time.Time {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.spotUpdated
}

// SetOnDemandPrices replaces the on-demand table, for a refresher that reads
// a live source (the AWS Pricing API) or a table for another region.
func (l *Live) SetOnDemandPrices(prices map[string]float64) {
	cp := make(map[string]float64, len(prices))
	for k, v := range prices {
		cp[k] = v
	}
	l.mu.Lock()
	l.onDemand = cp
	l.mu.Unlock()
}

// RefreshSpot reads current Linux spot prices for every type and zone. On any
// error, or an answer with no usable price, the previous table is kept and
// the error returned.
func (l *Live) RefreshSpot(ctx context.Context) error {
	err := l.refreshSpot(ctx)
	l.mu.Lock()
	l.spotFailed = err != nil
	l.mu.Unlock()
	return err
}

func (l *Live) refreshSpot(ctx context.Context) error {
	if l.api == nil {
		return fmt.Errorf("spot prices: no EC2 client configured")
	}
	logger := klog.FromContext(ctx)
	latest := map[spotKey]ec2types.SpotPrice{}
	pages := awsec2.NewDescribeSpotPriceHistoryPaginator(l.api, &awsec2.DescribeSpotPriceHistoryInput{
		ProductDescriptions: LinuxProductDescriptions,
		// With a start time of now EC2 returns the price in effect now for
		// each type and zone, rather than the whole history.
		StartTime: aws.Time(l.clock.Now()),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing spot price history: %w", err)
		}
		for _, sp := range page.SpotPriceHistory {
			k := spotKey{string(sp.InstanceType), aws.ToString(sp.AvailabilityZone)}
			if prev, ok := latest[k]; ok && aws.ToTime(prev.Timestamp).After(aws.ToTime(sp.Timestamp)) {
				continue
			}
			latest[k] = sp
		}
	}
	table := make(map[spotKey]float64, len(latest))
	skipped := 0
	for k, sp := range latest {
		p, err := strconv.ParseFloat(aws.ToString(sp.SpotPrice), 64)
		if err != nil || p <= 0 {
			skipped++
			continue
		}
		table[k] = p
	}
	if len(table) == 0 {
		return fmt.Errorf("describing spot price history: no usable prices in the answer (%d unparsable)", skipped)
	}
	l.mu.Lock()
	l.spot = table
	l.spotUpdated = l.clock.Now()
	l.mu.Unlock()
	logger.V(2).Info("Refreshed spot prices", "prices", len(table), "skipped", skipped)
	return nil
}
