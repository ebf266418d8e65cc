package catalog

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// EC2API is the part of the EC2 client the catalogue reads.
type EC2API interface {
	awsec2.DescribeInstanceTypesAPIClient
	awsec2.DescribeInstanceTypeOfferingsAPIClient
	DescribeAvailabilityZones(context.Context, *awsec2.DescribeAvailabilityZonesInput, ...func(*awsec2.Options)) (*awsec2.DescribeAvailabilityZonesOutput, error)
}

var _ EC2API = (*awsec2.Client)(nil)

// BuildStats counts what Build saw and why it left types out.
type BuildStats struct {
	Described int // types DescribeInstanceTypes returned
	Kept      int // types in the catalogue
	// Skipped types, by reason.
	UnsupportedArch   int // no x86_64/arm64 (i386-only, mac)
	UnsupportedUsage  int // neither on-demand nor spot
	UnsupportedBoot   int // no HVM or no EBS root device
	NoZoneOffering    int // not offered in any available zone of the region
	NoPricedOffering  int // offered, but no offering left after pricing
	NoOnDemandPrice   int // types whose on-demand offerings were dropped for lack of a price
	UnknownSpotPrices int // spot offerings with no known price (kept, unavailable)
}

// Build reads the region's instance types and offerings from EC2 and returns
// the supported ones sorted by name. Prices come from prices.
func Build(ctx context.Context, api EC2API, prices pricing.Provider, opts Options) ([]*InstanceType, BuildStats, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, BuildStats{}, err
	}
	var (
		wg               sync.WaitGroup
		infos            []ec2types.InstanceTypeInfo
		zonesByType      map[string][]string
		zoneIDs          map[string]string
		errI, errO, errZ error
	)
	wg.Add(3)
	go func() { defer wg.Done(); infos, errI = describeInstanceTypes(ctx, api) }()
	go func() { defer wg.Done(); zonesByType, errO = describeOfferings(ctx, api) }()
	go func() { defer wg.Done(); zoneIDs, errZ = describeZones(ctx, api) }()
	wg.Wait()
	for _, err := range []error{errI, errO, errZ} {
		if err != nil {
			return nil, BuildStats{}, err
		}
	}
	return assemble(ctx, infos, zonesByType, zoneIDs, prices, opts)
}

// assemble turns EC2's answers into the catalogue. opts has its defaults.
func assemble(ctx context.Context, infos []ec2types.InstanceTypeInfo, zonesByType map[string][]string, zoneIDs map[string]string,
	prices pricing.Provider, opts Options) ([]*InstanceType, BuildStats, error) {
	stats := BuildStats{Described: len(infos)}
	out := make([]*InstanceType, 0, len(infos))
	for i := range infos {
		info := &infos[i]
		arch := architecture(info)
		switch {
		case arch == "":
			stats.UnsupportedArch++
			continue
		case !supportsBoot(info):
			stats.UnsupportedBoot++
			continue
		}
		capacityTypes := usageClasses(info)
		if len(capacityTypes) == 0 {
			stats.UnsupportedUsage++
			continue
		}
		zones := availableZones(zonesByType[string(info.InstanceType)], zoneIDs)
		if len(zones) == 0 {
			stats.NoZoneOffering++
			continue
		}
		offerings, noOD, unknownSpot := buildOfferings(string(info.InstanceType), zones, zoneIDs, capacityTypes, prices)
		if noOD {
			stats.NoOnDemandPrice++
		}
		stats.UnknownSpotPrices += unknownSpot
		if len(offerings) == 0 {
			stats.NoPricedOffering++
			continue
		}
		capacity := computeCapacity(info, opts)
		overhead, err := ComputeOverhead(capacity, opts.Kubelet)
		if err != nil {
			return nil, stats, fmt.Errorf("%s: %w", info.InstanceType, err)
		}
		out = append(out, &InstanceType{
			Name:        string(info.InstanceType),
			Labels:      computeLabels(info, arch, opts.Region),
			Capacity:    capacity,
			Overhead:    overhead,
			Allocatable: Allocatable(capacity, overhead),
			Offerings:   offerings,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	stats.Kept = len(out)
	klog.FromContext(ctx).V(4).Info("Built instance-type catalogue", "stats", stats)
	return out, stats, nil
}

// supportsBoot says whether the type can boot the HVM, EBS-backed images we
// launch. Types that do not report these fields are given the benefit of the doubt.
func supportsBoot(info *ec2types.InstanceTypeInfo) bool {
	if v := info.SupportedVirtualizationTypes; len(v) > 0 && !contains(v, ec2types.VirtualizationTypeHvm) {
		return false
	}
	if r := info.SupportedRootDeviceTypes; len(r) > 0 && !contains(r, ec2types.RootDeviceTypeEbs) {
		return false
	}
	return true
}

// usageClasses are the capacity types we launch that the type supports,
// on-demand first.
func usageClasses(info *ec2types.InstanceTypeInfo) []string {
	var out []string
	if contains(info.SupportedUsageClasses, ec2types.UsageClassTypeOnDemand) {
		out = append(out, CapacityTypeOnDmd)
	}
	if contains(info.SupportedUsageClasses, ec2types.UsageClassTypeSpot) {
		out = append(out, CapacityTypeSpot)
	}
	return out
}

func availableZones(zones []string, zoneIDs map[string]string) []string {
	out := make([]string, 0, len(zones))
	for _, z := range zones {
		if _, ok := zoneIDs[z]; ok {
			out = append(out, z)
		}
	}
	sort.Strings(out)
	return out
}

func describeInstanceTypes(ctx context.Context, api EC2API) ([]ec2types.InstanceTypeInfo, error) {
	var out []ec2types.InstanceTypeInfo
	pages := awsec2.NewDescribeInstanceTypesPaginator(api, &awsec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(100)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instance types: %w", err)
		}
		out = append(out, page.InstanceTypes...)
	}
	return out, nil
}

// describeOfferings maps each instance type to the zones it is offered in.
func describeOfferings(ctx context.Context, api EC2API) (map[string][]string, error) {
	out := map[string][]string{}
	pages := awsec2.NewDescribeInstanceTypeOfferingsPaginator(api, &awsec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		MaxResults:   aws.Int32(1000),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instance type offerings: %w", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			t := string(o.InstanceType)
			out[t] = append(out[t], aws.ToString(o.Location))
		}
	}
	return out, nil
}

// describeZones maps the region's available zones to their zone ids.
func describeZones(ctx context.Context, api EC2API) (map[string]string, error) {
	resp, err := api.DescribeAvailabilityZones(ctx, &awsec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"available"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("describing availability zones: %w", err)
	}
	out := make(map[string]string, len(resp.AvailabilityZones))
	for _, z := range resp.AvailabilityZones {
		if z.ZoneType != nil && *z.ZoneType != "availability-zone" {
			continue
		}
		out[aws.ToString(z.ZoneName)] = aws.ToString(z.ZoneId)
	}
	return out, nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
