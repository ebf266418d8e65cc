package catalog

import (
	"bytes"
	"context"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// updateSnapshot rewrites the embedded snapshot from moto_server (run by
// hack/codegen-catalog.sh, i.e. `make generate`).
var updateSnapshot = flag.Bool("update-offline-snapshot", false, "rewrite snapshot/"+OfflineRegion+".json.gz from moto_server")

// describeAll asks EC2 (moto here) the three questions Build asks: the
// instance types, the zones each is offered in, and the zones' ids.
func describeAll(ctx context.Context, tb testing.TB, api EC2API) ([]ec2types.InstanceTypeInfo, map[string][]string, map[string]string) {
	tb.Helper()
	infos, err := describeInstanceTypes(ctx, api)
	if err != nil {
		tb.Fatal(err)
	}
	offerings, err := describeOfferings(ctx, api)
	if err != nil {
		tb.Fatal(err)
	}
	zones, err := describeZones(ctx, api)
	if err != nil {
		tb.Fatal(err)
	}
	return infos, offerings, zones
}

// snapshotFromEC2 keeps, of each instance type EC2 describes, the fields
// Build reads.
func snapshotFromEC2(ctx context.Context, t *testing.T, api EC2API) *Snapshot {
	t.Helper()
	infos, offerings, zones := describeAll(ctx, t, api)
	s := &Snapshot{Region: OfflineRegion, Zones: zones, Offerings: offerings}
	for i := range infos {
		s.InstanceTypes = append(s.InstanceTypes, trimInfo(&infos[i]))
	}
	return s
}

// trimInfo keeps what architecture, supportsBoot, usageClasses,
// computeCapacity and computeLabels read.
func trimInfo(in *ec2types.InstanceTypeInfo) ec2types.InstanceTypeInfo {
	out := ec2types.InstanceTypeInfo{
		InstanceType:                 in.InstanceType,
		Hypervisor:                   in.Hypervisor,
		MemoryInfo:                   in.MemoryInfo,
		GpuInfo:                      in.GpuInfo,
		InferenceAcceleratorInfo:     in.InferenceAcceleratorInfo,
		NeuronInfo:                   in.NeuronInfo,
		SupportedUsageClasses:        in.SupportedUsageClasses,
		SupportedVirtualizationTypes: in.SupportedVirtualizationTypes,
		SupportedRootDeviceTypes:     in.SupportedRootDeviceTypes,
	}
	if p := in.ProcessorInfo; p != nil {
		out.ProcessorInfo = &ec2types.ProcessorInfo{Manufacturer: p.Manufacturer, SupportedArchitectures: p.SupportedArchitectures, SustainedClockSpeedInGhz: p.SustainedClockSpeedInGhz}
	}
	if v := in.VCpuInfo; v != nil {
		out.VCpuInfo = &ec2types.VCpuInfo{DefaultVCpus: v.DefaultVCpus}
	}
	if n := in.NetworkInfo; n != nil {
		ni := &ec2types.NetworkInfo{EncryptionInTransitSupported: n.EncryptionInTransitSupported, DefaultNetworkCardIndex: n.DefaultNetworkCardIndex}
		for _, c := range n.NetworkCards {
			ni.NetworkCards = append(ni.NetworkCards, ec2types.NetworkCardInfo{NetworkCardIndex: c.NetworkCardIndex, BaselineBandwidthInGbps: c.BaselineBandwidthInGbps})
		}
		out.NetworkInfo = ni
	}
	if e := in.EbsInfo; e != nil {
		ei := &ec2types.EbsInfo{EbsOptimizedSupport: e.EbsOptimizedSupport}
		if e.EbsOptimizedInfo != nil {
			ei.EbsOptimizedInfo = &ec2types.EbsOptimizedInfo{MaximumBandwidthInMbps: e.EbsOptimizedInfo.MaximumBandwidthInMbps}
		}
		out.EbsInfo = ei
	}
	if s := in.InstanceStorageInfo; s != nil {
		out.InstanceStorageInfo = &ec2types.InstanceStorageInfo{NvmeSupport: s.NvmeSupport, TotalSizeInGB: s.TotalSizeInGB}
	}
	return out
}

// TestOfflineSnapshotMatchesEC2 builds the catalogue from the embedded
// snapshot and from moto's live answers and requires the same types,
// labels, capacity, allocatable and offerings: the snapshot loses nothing
// Build reads, and is not stale against the moto this repository tests
// with.
func TestOfflineSnapshotMatchesEC2(t *testing.T) {
	ctx := context.Background()
	if *updateSnapshot {
		var buf bytes.Buffer
		if err := WriteSnapshot(&buf, snapshotFromEC2(ctx, t, ec2Client())); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("snapshot/"+OfflineRegion+".json.gz", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote snapshot/%s.json.gz (%d bytes); rebuild to embed it", OfflineRegion, buf.Len())
		return
	}
	live, err := defaultBuild()
	if err != nil {
		t.Fatal(err)
	}
	api, err := Offline()
	if err != nil {
		t.Fatal(err)
	}
	offline, stats, err := Build(ctx, api, staticPrices(t), Options{Region: OfflineRegion})
	if err != nil {
		t.Fatal(err)
	}
	if stats != live.stats {
		t.Errorf("offline build stats %+v, live %+v", stats, live.stats)
	}
	if len(offline) != len(live.types) {
		t.Fatalf("offline catalogue has %d types, EC2's %d: run make generate", len(offline), len(live.types))
	}
	for i, it := range offline {
		want := live.types[i]
		if !reflect.DeepEqual(it, want) {
			t.Errorf("%s differs offline:\n got %+v\nwant %+v\n(run make generate)", it.Name, it, want)
		}
	}
	byType := byName(offline)
	if it := byType["t3a.xlarge"]; it == nil || it.Capacity.Cpu().Value() != 4 || len(it.Offerings) == 0 {
		t.Errorf("offline t3a.xlarge: %+v", it)
	}
}

// TestNewOffline checks the catalogue a plan without a cluster uses: no
// network, the region it was made for, and a refusal for another.
func TestNewOffline(t *testing.T) {
	c, err := NewOffline(staticPrices(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	types, err := c.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(types) < 1000 {
		t.Errorf("offline catalogue has %d types", len(types))
	}
	if got := types[0].Labels[LabelRegion]; got != OfflineRegion {
		t.Errorf("region label %q", got)
	}
	if _, err := NewOffline(staticPrices(t), Options{Region: "eu-west-1"}); err == nil {
		t.Error("NewOffline accepted eu-west-1; its prices and offerings are us-east-1's")
	}
	// The snapshot's answers page as EC2's do: one page, no token.
	out, err := snapshotAPI{mustEmbedded(t)}.DescribeInstanceTypes(context.Background(), &awsec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(100)})
	if err != nil || out.NextToken != nil || len(out.InstanceTypes) == 0 {
		t.Errorf("DescribeInstanceTypes: %d types, token %v, err %v", len(out.InstanceTypes), out.NextToken, err)
	}
}

func mustEmbedded(t *testing.T) *Snapshot {
	s, err := EmbeddedSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
