package catalog

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleet-scheduler/fleet-scheduler/provision/pricing"
)

// The offline catalogue answers what the catalogue reads from EC2 with no
// network: a snapshot of DescribeInstanceTypes, DescribeInstanceTypeOfferings
// and DescribeAvailabilityZones for one region, embedded in the binary. Build
// turns it into instance types exactly as it does EC2's live answers, so a
// plan made offline uses the same labels, capacity and allocatable as the
// scheduler. The snapshot holds only the fields Build reads; it is written
// by `make generate` (hack/codegen-catalog.sh) from moto_server, which
// serves AWS's published instance-type data, and a test checks it still
// matches.

// OfflineRegion is the region of the embedded snapshot; the embedded
// on-demand price table (pricing.EmbeddedRegion) is for the same one.
const OfflineRegion = "us-east-1"

//go:embed snapshot/us-east-1.json.gz
var offlineSnapshot []byte

// Snapshot is one region's answers to the three calls Build makes.
type Snapshot struct {
	Region string `json:"region"`
	// Zones maps each available zone to its zone id.
	Zones map[string]string `json:"zones"`
	// Offerings maps each instance type to the zones it is offered in.
	Offerings map[string][]string `json:"offerings"`
	// InstanceTypes are DescribeInstanceTypes' answers, cut to what Build reads.
	InstanceTypes []ec2types.InstanceTypeInfo `json:"instanceTypes"`
}

var embedded = sync.OnceValues(func() (*Snapshot, error) {
	return ReadSnapshot(bytes.NewReader(offlineSnapshot))
})

// ReadSnapshot decodes a gzipped JSON snapshot.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("offline instance-type snapshot: %w", err)
	}
	defer zr.Close()
	s := &Snapshot{}
	if err := json.NewDecoder(zr).Decode(s); err != nil {
		return nil, fmt.Errorf("offline instance-type snapshot: %w", err)
	}
	return s, nil
}

// WriteSnapshot encodes s gzipped, in a stable order (types by name).
func WriteSnapshot(w io.Writer, s *Snapshot) error {
	sort.Slice(s.InstanceTypes, func(i, j int) bool { return s.InstanceTypes[i].InstanceType < s.InstanceTypes[j].InstanceType })
	for _, zones := range s.Offerings {
		sort.Strings(zones)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(zw)
	if err := enc.Encode(s); err != nil {
		return err
	}
	return zw.Close()
}

// Offline returns the EC2 answers of the embedded snapshot, for New: a
// catalogue built from it needs no network and no credentials.
func Offline() (EC2API, error) {
	s, err := embedded()
	if err != nil {
		return nil, err
	}
	return snapshotAPI{s}, nil
}

// NewOffline is a catalogue of the embedded snapshot priced by prices.
func NewOffline(prices pricing.Provider, opts Options) (*Catalog, error) {
	api, err := Offline()
	if err != nil {
		return nil, err
	}
	if opts.Region == "" {
		opts.Region = OfflineRegion
	}
	if opts.Region != OfflineRegion {
		return nil, fmt.Errorf("the offline catalogue is for %s, not %s", OfflineRegion, opts.Region)
	}
	return New(api, prices, opts)
}

// snapshotAPI serves a Snapshot through the calls Build makes, each in one
// page.
type snapshotAPI struct{ s *Snapshot }

func (a snapshotAPI) DescribeInstanceTypes(context.Context, *awsec2.DescribeInstanceTypesInput, ...func(*awsec2.Options)) (*awsec2.DescribeInstanceTypesOutput, error) {
	return &awsec2.DescribeInstanceTypesOutput{InstanceTypes: a.s.InstanceTypes}, nil
}

func (a snapshotAPI) DescribeInstanceTypeOfferings(context.Context, *awsec2.DescribeInstanceTypeOfferingsInput, ...func(*awsec2.Options)) (*awsec2.DescribeInstanceTypeOfferingsOutput, error) {
	out := &awsec2.DescribeInstanceTypeOfferingsOutput{}
	for t, zones := range a.s.Offerings {
		for _, z := range zones {
			out.InstanceTypeOfferings = append(out.InstanceTypeOfferings, ec2types.InstanceTypeOffering{
				InstanceType: ec2types.InstanceType(t), Location: aws.String(z), LocationType: ec2types.LocationTypeAvailabilityZone,
			})
		}
	}
	return out, nil
}

func (a snapshotAPI) DescribeAvailabilityZones(context.Context, *awsec2.DescribeAvailabilityZonesInput, ...func(*awsec2.Options)) (*awsec2.DescribeAvailabilityZonesOutput, error) {
	out := &awsec2.DescribeAvailabilityZonesOutput{}
	names := make([]string, 0, len(a.s.Zones))
	for z := range a.s.Zones {
		names = append(names, z)
	}
	sort.Strings(names)
	for _, z := range names {
		out.AvailabilityZones = append(out.AvailabilityZones, ec2types.AvailabilityZone{
			ZoneName: aws.String(z), ZoneId: aws.String(a.s.Zones[z]), ZoneType: aws.String("availability-zone"),
			State: ec2types.AvailabilityZoneStateAvailable, RegionName: aws.String(a.s.Region),
		})
	}
	return out, nil
}

// ZoneNames lists the snapshot's zones, sorted.
func (s *Snapshot) ZoneNames() []string {
	out := make([]string, 0, len(s.Zones))
	for z := range s.Zones {
		out = append(out, z)
	}
	sort.Strings(out)
	return out
}

// EmbeddedSnapshot returns the embedded snapshot (shared: do not modify).
func EmbeddedSnapshot() (*Snapshot, error) { return embedded() }
