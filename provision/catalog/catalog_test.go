package catalog

import (
	"context"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// moto is shared by the tests of this package: the catalogue only reads.
var moto *env.Moto

func TestMain(m *testing.M) { os.Exit(env.RunWithMoto(m, &moto)) }

func ec2Client() *awsec2.Client { return awsec2.NewFromConfig(moto.AWSConfig()) }

func staticPrices(t testing.TB) *pricing.Live {
	l, err := pricing.NewLive(nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func byName(types []*InstanceType) map[string]*InstanceType {
	out := make(map[string]*InstanceType, len(types))
	for _, it := range types {
		out[it.Name] = it
	}
	return out
}

// defaultBuild is one Build with default options and the static price
// table, shared by the tests that only read it (moto takes ~3s to list the
// instance types).
var defaultBuild = sync.OnceValues(func() (built, error) {
	l, err := pricing.NewLive(nil)
	if err != nil {
		return built{}, err
	}
	types, stats, err := Build(context.Background(), ec2Client(), l, Options{Region: "us-east-1"})
	return built{types, stats}, err
})

type built struct {
	types []*InstanceType
	stats BuildStats
}

func TestBuildFullSet(t *testing.T) {
	b, err := defaultBuild()
	if err != nil {
		t.Fatal(err)
	}
	types, stats := b.types, b.stats
	t.Logf("stats: %+v", stats)
	if len(types) <= 1000 {
		t.Fatalf("catalogue has %d types, want > 1000", len(types))
	}
	if stats.Described != 1263 {
		t.Errorf("described %d types, moto 5.2 serves 1263", stats.Described)
	}
	skipped := stats.UnsupportedArch + stats.UnsupportedUsage + stats.UnsupportedBoot + stats.NoZoneOffering + stats.NoPricedOffering
	if stats.Kept != len(types) || stats.Kept+skipped != stats.Described {
		t.Errorf("stats do not add up: %+v", stats)
	}
	if stats.UnsupportedArch == 0 {
		t.Error("no type skipped for its architecture; moto serves mac and i386 types")
	}
	idx := byName(types)
	for _, gone := range []string{
		"mac1.metal",     // x86_64_mac
		"mac2.metal",     // arm64_mac
		"hpc6a.48xlarge", // not offered in any us-east-1 zone
	} {
		if _, ok := idx[gone]; ok {
			t.Errorf("%s should not be in the catalogue", gone)
		}
	}
	for _, it := range types {
		if a := it.Labels[LabelArch]; a != ArchAMD64 && a != ArchARM64 {
			t.Fatalf("%s has arch %q", it.Name, a)
		}
		if len(it.Offerings) == 0 {
			t.Fatalf("%s has no offerings", it.Name)
		}
		for _, o := range it.Offerings {
			if o.CapacityType == CapacityTypeOnDmd && (!o.PriceKnown || o.Price <= 0 || !o.Available) {
				t.Fatalf("%s on-demand offering without a price: %+v", it.Name, o)
			}
			if o.CapacityType == CapacityTypeSpot && (o.PriceKnown || o.Available) {
				t.Fatalf("%s: spot offering priced without any spot price source: %+v", it.Name, o)
			}
		}
		if i := it.Allocatable[corev1.ResourceCPU]; i.Sign() <= 0 {
			t.Fatalf("%s has allocatable cpu %s", it.Name, i.String())
		}
	}
}

func TestKnownTypes(t *testing.T) {
	b, err := defaultBuild()
	if err != nil {
		t.Fatal(err)
	}
	idx := byName(b.types)
	for _, tc := range []struct {
		name     string
		labels   map[string]string
		absent   []string
		capacity []string
		alloc    []string
	}{{
		name: "m5.large",
		labels: map[string]string{
			LabelInstanceType: "m5.large", LabelArch: "amd64", LabelOS: "linux", LabelRegion: "us-east-1",
			LabelCategory: "m", LabelFamily: "m5", LabelGeneration: "5", LabelSize: "large",
			LabelCPU: "2", LabelCPUMfr: "intel", LabelCPUClockMhz: "3100", LabelMemory: "8192", LabelHypervisor: "nitro",
			LabelNetworkBW: "750", LabelEBSBW: "4750", LabelEncInTransit: "false",
		},
		absent:   []string{LabelGPUName, LabelGPUCount, LabelLocalNVMe, LabelAccelName, LabelZone, LabelCapacityType},
		capacity: []string{"cpu", "2", "memory", "7577Mi", "pods", "110", "ephemeral-storage", "20Gi"},
		alloc:    []string{"cpu", "1930m", "memory", "6012Mi", "pods", "110", "ephemeral-storage", "17Gi"},
	}, {
		name: "t3.large",
		labels: map[string]string{
			LabelArch: "amd64", LabelCategory: "t", LabelFamily: "t3", LabelGeneration: "3", LabelSize: "large",
			LabelCPU: "2", LabelMemory: "8192", LabelNetworkBW: "512", LabelEBSBW: "2780", LabelHypervisor: "nitro",
		},
		capacity: []string{"cpu", "2", "memory", "7577Mi", "pods", "110", "ephemeral-storage", "20Gi"},
	}, {
		name: "c7g.large",
		labels: map[string]string{
			LabelArch: "arm64", LabelCategory: "c", LabelFamily: "c7g", LabelGeneration: "7",
			LabelCPUMfr: "aws", LabelCPU: "2", LabelMemory: "4096", LabelEncInTransit: "true",
		},
		capacity: []string{"cpu", "2", "memory", "3788Mi", "pods", "110", "ephemeral-storage", "20Gi"},
	}, {
		name:   "c7gn.large",
		labels: map[string]string{LabelArch: "arm64", LabelCategory: "c", LabelFamily: "c7gn", LabelGeneration: "7", LabelSize: "large"},
	}, {
		name: "g4dn.xlarge",
		labels: map[string]string{
			LabelCategory: "g", LabelFamily: "g4dn", LabelGeneration: "4",
			LabelGPUName: "t4", LabelGPUMfr: "nvidia", LabelGPUCount: "1", LabelGPUMemory: "16384", LabelLocalNVMe: "125",
		},
		capacity: []string{"cpu", "4", "memory", "15155Mi", "pods", "110", "ephemeral-storage", "20Gi", "nvidia.com/gpu", "1"},
	}, {
		name:     "g4ad.xlarge",
		labels:   map[string]string{LabelGPUName: "radeon-pro-v520", LabelGPUMfr: "amd", LabelCPUMfr: "amd"},
		capacity: []string{"cpu", "4", "memory", "15155Mi", "pods", "110", "ephemeral-storage", "20Gi", "amd.com/gpu", "1"},
	}, {
		name:     "p4d.24xlarge",
		labels:   map[string]string{LabelGPUName: "a100", LabelGPUCount: "8", LabelGPUMemory: "40960", LabelLocalNVMe: "8000"},
		capacity: []string{"cpu", "96", "memory", "1091174Mi", "pods", "110", "ephemeral-storage", "20Gi", "nvidia.com/gpu", "8"},
	}, {
		name:     "inf2.xlarge",
		labels:   map[string]string{LabelCategory: "inf", LabelGeneration: "2", LabelAccelName: "inferentia2", LabelAccelMfr: "aws", LabelAccelCount: "1"},
		capacity: []string{"cpu", "4", "memory", "15155Mi", "pods", "110", "ephemeral-storage", "20Gi", "aws.amazon.com/neuron", "1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := idx[tc.name]
			if !ok {
				t.Fatalf("%s missing from the catalogue", tc.name)
			}
			for k, want := range tc.labels {
				if got := it.Labels[k]; got != want {
					t.Errorf("label %s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if v, ok := it.Labels[k]; ok {
					t.Errorf("label %s = %q, want absent", k, v)
				}
			}
			if tc.capacity != nil {
				assertResources(t, "capacity", it.Capacity, rl(tc.capacity...))
			}
			if tc.alloc != nil {
				assertResources(t, "allocatable", it.Allocatable, rl(tc.alloc...))
			}
		})
	}
}

func TestOfferingsPerZone(t *testing.T) {
	ctx := context.Background()
	live, err := pricing.NewLive(ec2Client())
	if err != nil {
		t.Fatal(err)
	}
	if err := live.RefreshSpot(ctx); err != nil {
		t.Fatal(err)
	}
	types, _, err := Build(ctx, ec2Client(), live, Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	it := byName(types)["m5.large"]
	// moto offers m5.large in five of the six us-east-1 zones (not 1e).
	zoneIDs := map[string]string{"us-east-1a": "use1-az6", "us-east-1b": "use1-az1", "us-east-1c": "use1-az2",
		"us-east-1d": "use1-az4", "us-east-1f": "use1-az5"}
	seen := map[string]bool{}
	for _, o := range it.Offerings {
		id, ok := zoneIDs[o.Zone]
		if !ok {
			t.Errorf("offering in unexpected zone %s", o.Zone)
		}
		if o.ZoneID != id {
			t.Errorf("zone %s has id %s, want %s", o.Zone, o.ZoneID, id)
		}
		if !o.Available || !o.PriceKnown {
			t.Errorf("offering %+v not available", o)
		}
		switch o.CapacityType {
		case CapacityTypeOnDmd:
			if o.Price != 0.096 {
				t.Errorf("on-demand price %v, want 0.096", o.Price)
			}
		case CapacityTypeSpot:
			if p, _ := live.SpotPrice("m5.large", o.Zone); o.Price != p {
				t.Errorf("spot price %v, want %v", o.Price, p)
			}
		}
		key := o.Zone + "/" + o.CapacityType
		if seen[key] {
			t.Errorf("duplicate offering %s", key)
		}
		seen[key] = true
	}
	if len(seen) != 10 {
		t.Errorf("m5.large has %d offerings, want 5 zones x 2 capacity types", len(seen))
	}
	labels := it.OfferingLabels(it.Offerings[0])
	if labels[LabelZone] != it.Offerings[0].Zone || labels[LabelCapacityType] == "" || labels[LabelZoneID] == "" ||
		labels[LabelInstanceType] != "m5.large" {
		t.Errorf("OfferingLabels = %v", labels)
	}
}

// TestSpotPrices: spot offerings are priced by DescribeSpotPriceHistory and
// rank below on-demand; when it fails before ever answering, by the
// on-demand price less the discount, still below on-demand and usable; a
// catalogue refresh then retries the prices.
func TestSpotPrices(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		api  pricing.SpotPriceAPI
		// price is the m5.large spot price wanted in us-east-1a.
		price func(t *testing.T) float64
	}{{
		name: "from DescribeSpotPriceHistory",
		api:  ec2Client(),
		price: func(t *testing.T) float64 {
			out, err := ec2Client().DescribeSpotPriceHistory(ctx, &awsec2.DescribeSpotPriceHistoryInput{
				InstanceTypes: []ec2types.InstanceType{"m5.large"},
				Filters:       []ec2types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1a"}}},
			})
			if err != nil || len(out.SpotPriceHistory) == 0 {
				t.Fatalf("DescribeSpotPriceHistory: %v", err)
			}
			p, err := strconv.ParseFloat(aws.ToString(out.SpotPriceHistory[0].SpotPrice), 64)
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	}, {
		name:  "estimated while EC2 does not answer",
		api:   awsec2.NewFromConfig(moto.UnreachableAWSConfig()),
		price: func(*testing.T) float64 { return 0.096 * (1 - pricing.DefaultSpotDiscount) },
	}} {
		t.Run(tc.name, func(t *testing.T) {
			live, err := pricing.NewLive(tc.api)
			if err != nil {
				t.Fatal(err)
			}
			c, err := New(ec2Client(), live, Options{Region: "us-east-1"})
			if err != nil {
				t.Fatal(err)
			}
			c.SpotRefresher = live.RefreshSpot
			if err := c.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			types, err := c.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.price(t)
			var spot, onDemand *Offering
			for i, o := range byName(types)["m5.large"].Offerings {
				if o.Zone != "us-east-1a" {
					continue
				}
				if o.CapacityType == CapacityTypeSpot {
					spot = &byName(types)["m5.large"].Offerings[i]
				} else {
					onDemand = &byName(types)["m5.large"].Offerings[i]
				}
			}
			if spot == nil || onDemand == nil {
				t.Fatalf("m5.large in us-east-1a: spot %v, on-demand %v", spot, onDemand)
			}
			if !spot.Available || !spot.PriceKnown || math.Abs(spot.Price-want) > 1e-12 {
				t.Errorf("spot offering %+v, want available at %v", *spot, want)
			}
			if !(spot.Price < onDemand.Price) {
				t.Errorf("spot %v does not rank below on-demand %v", spot.Price, onDemand.Price)
			}
			c.mu.RLock()
			failed := c.spotFailed
			c.mu.RUnlock()
			if failed != live.SpotEstimated() {
				t.Errorf("catalogue retries spot prices sooner: %v; prices estimated: %v", failed, live.SpotEstimated())
			}
		})
	}
}

func TestCatalogRefreshKeepsLastGood(t *testing.T) {
	ctx := context.Background()
	c, err := New(ec2Client(), staticPrices(t), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	built, stats, lastErr := c.Status()
	if built.IsZero() || stats.Kept != len(first) || lastErr != nil {
		t.Fatalf("Status = %v, %+v, %v", built, stats, lastErr)
	}

	c.api = awsec2.NewFromConfig(moto.UnreachableAWSConfig())
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh against a closed port succeeded")
	}
	again, err := c.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(first) {
		t.Fatalf("after a failed refresh Get returned %d types, want the last good %d", len(again), len(first))
	}
	if _, _, lastErr := c.Status(); lastErr == nil {
		t.Fatal("Status does not report the failed refresh")
	}

	// Run survives failures and stops with its context.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(runCtx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestMarkUnavailable(t *testing.T) {
	ctx := context.Background()
	c, err := New(ec2Client(), staticPrices(t), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clk := clocktesting.NewFakePassiveClock(now)
	c.clock = clk
	if _, err := c.Get(ctx); err != nil {
		t.Fatal(err)
	}
	c.MarkUnavailable("m5.large", "us-east-1a", CapacityTypeOnDmd, time.Minute)
	types, _ := c.Get(ctx)
	check := func(types []*InstanceType, wantAvailable bool) {
		t.Helper()
		for _, o := range byName(types)["m5.large"].Offerings {
			marked := o.Zone == "us-east-1a" && o.CapacityType == CapacityTypeOnDmd
			if marked && o.Available != wantAvailable {
				t.Errorf("marked offering Available = %v, want %v", o.Available, wantAvailable)
			}
			if !marked && o.CapacityType == CapacityTypeOnDmd && !o.Available {
				t.Errorf("unmarked offering %+v unavailable", o)
			}
		}
	}
	check(types, false)
	// The shared catalogue itself is not modified.
	c.mu.RLock()
	check(c.types, true)
	c.mu.RUnlock()
	now = now.Add(2 * time.Minute)
	clk.SetTime(now)
	types, _ = c.Get(ctx)
	check(types, true)
}

func TestOptionsValidation(t *testing.T) {
	bad := -0.1
	if _, err := New(ec2Client(), staticPrices(t), Options{VMMemoryOverheadPercent: &bad}); err == nil {
		t.Error("negative VM overhead accepted")
	}
	if _, err := New(ec2Client(), staticPrices(t), Options{Kubelet: &KubeletConfig{KubeReserved: map[string]string{"x": "1"}}}); err == nil {
		t.Error("invalid kubelet config accepted")
	}
}

func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	api := ec2Client()
	prices := staticPrices(b)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		types, _, err := Build(ctx, api, prices, Options{Region: "us-east-1"})
		if err != nil {
			b.Fatal(err)
		}
		n = len(types)
	}
	b.ReportMetric(float64(n), "types")
}

// BenchmarkAssemble measures our side of Build alone: EC2's answers are
// fetched from moto once, outside the timer.
func BenchmarkAssemble(b *testing.B) {
	ctx := context.Background()
	api := ec2Client()
	infos, zonesByType, zoneIDs := describeAll(ctx, b, api)
	opts, _ := Options{Region: "us-east-1"}.withDefaults()
	prices := staticPrices(b)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		types, _, err := assemble(ctx, infos, zonesByType, zoneIDs, prices, opts)
		if err != nil {
			b.Fatal(err)
		}
		n = len(types)
	}
	b.ReportMetric(float64(n), "types")
}
