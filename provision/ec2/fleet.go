package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"k8s.io/klog/v2"
)

// ErrNoCompatibleOfferings is wrapped when no candidate offering has a
// subnet in its zone, an AMI for its architecture and the requested
// capacity type: nothing could be asked of EC2.
var ErrNoCompatibleOfferings = errors.New("no compatible offerings")

// DefaultMaxInstanceTypes caps the candidate types sent in one CreateFleet,
// as Karpenter does, to keep the override list within EC2 Fleet's limits.
const DefaultMaxInstanceTypes = 60

// Provider launches, finds and terminates the instances of NodeClaims.
type Provider struct {
	ec2     EC2API
	opts    ProviderOptions
	lookups claimLookups
}

// ProviderOptions tune Launch.
type ProviderOptions struct {
	// MaxInstanceTypes is how many of the cheapest candidates are sent to EC2
	// (default DefaultMaxInstanceTypes).
	MaxInstanceTypes int
}

// NewProvider returns a provider calling ec2 (build it with NewEC2Client to
// get the retry policy).
func NewProvider(ec2 EC2API, opts ProviderOptions) *Provider {
	if opts.MaxInstanceTypes <= 0 {
		opts.MaxInstanceTypes = DefaultMaxInstanceTypes
	}
	return &Provider{ec2: ec2, opts: opts}
}

// Launch starts the one instance of a NodeClaim. If a live instance tagged
// with the claim already exists (an earlier attempt got that far), it is
// returned and nothing is launched. Otherwise Launch ensures the claim's
// launch template and calls CreateFleet (type instant, one unit) with the
// candidates' offerings as overrides. Failures come back typed:
// *InsufficientCapacityError, *QuotaExceededError or *LaunchError.
func (p *Provider) Launch(ctx context.Context, req LaunchRequest) (*Instance, error) {
	if err := validateRequest(&req); err != nil {
		return nil, fmt.Errorf("invalid launch request: %w", err)
	}
	logger := klog.FromContext(ctx).WithValues("nodeClaim", req.NodeClaimName, "nodePool", req.NodePoolName)
	ctx = klog.NewContext(ctx, logger)

	existing, err := p.findClaimInstance(ctx, req.ClusterName, req.NodeClaimName)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		logger.V(2).Info("Instance for claim already exists", "instance", existing.ID, "state", existing.State)
		return existing, nil
	}

	overrides, zoneOf, err := buildOverrides(&req, p.opts.MaxInstanceTypes)
	if err != nil {
		return nil, err
	}
	lt, err := p.ensureLaunchTemplate(ctx, &req, aws.ToString(overrides[0].ImageId))
	if err != nil {
		return nil, err
	}
	tags := toEC2Tags(instanceTags(&req))
	input := &awsec2.CreateFleetInput{
		Type:    ec2types.FleetTypeInstant,
		Context: nonEmpty(req.Context),
		TargetCapacitySpecification: &ec2types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity:       aws.Int32(1),
			DefaultTargetCapacityType: ec2types.DefaultTargetCapacityType(req.CapacityType),
		},
		LaunchTemplateConfigs: []ec2types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &ec2types.FleetLaunchTemplateSpecificationRequest{
				LaunchTemplateId: aws.String(lt.ID),
				Version:          aws.String("$Latest"),
			},
			Overrides: overrides,
		}},
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tags},
			{ResourceType: ec2types.ResourceTypeFleet, Tags: tags},
		},
		ClientToken: aws.String(clientToken(&req)),
	}
	if req.CapacityType == CapacityTypeSpot {
		input.SpotOptions = &ec2types.SpotOptionsRequest{AllocationStrategy: ec2types.SpotAllocationStrategyPriceCapacityOptimized}
	} else {
		input.OnDemandOptions = &ec2types.OnDemandOptionsRequest{AllocationStrategy: ec2types.FleetOnDemandAllocationStrategyLowestPrice}
	}
	out, err := p.ec2.CreateFleet(ctx, input)
	if err != nil {
		return nil, classifyAPIError(fmt.Errorf("creating fleet: %w", err))
	}
	failures := fleetFailures(out.Errors, zoneOf)
	inst := instanceFromFleet(out.Instances, zoneOf, tags, req.CapacityType)
	if inst == nil {
		err := classifyFailures(failures)
		logger.V(2).Info("Fleet launched nothing", "error", err.Error())
		return nil, err
	}
	inst.SkippedOfferings = failures
	logger.V(2).Info("Launched instance", "instance", inst.ID, "instanceType", inst.Type, "zone", inst.Zone,
		"capacityType", inst.CapacityType, "skippedOfferings", len(failures))
	// Fill in what only DescribeInstances knows (addresses, launch time).
	// Right after launch EC2 may not list the instance yet; the fleet's
	// answer is then good enough.
	if described, err := p.describeInstance(ctx, inst.ID); err == nil && described != nil {
		described.SkippedOfferings = failures
		return described, nil
	} else if err != nil {
		logger.V(4).Info("Describing the new instance failed; returning the fleet's view", "instance", inst.ID, "error", err.Error())
	}
	return inst, nil
}

// buildOverrides crosses the candidates with the subnets: per candidate
// offering of the requested capacity type, the subnet of its zone with the
// most free addresses and the AMI of its architecture. Overrides are ordered
// by price, then by candidate order (cheapest type first), then by zone.
func buildOverrides(req *LaunchRequest, maxTypes int) ([]ec2types.FleetLaunchTemplateOverridesRequest, map[string]string, error) {
	bestSubnet := map[string]Subnet{}
	zoneOf := map[string]string{}
	for _, s := range req.Subnets {
		zoneOf[s.ID] = s.Zone
		if cur, ok := bestSubnet[s.Zone]; !ok || s.AvailableIPs > cur.AvailableIPs {
			bestSubnet[s.Zone] = s
		}
	}
	type candidate struct {
		typ, zone, subnet, image string
		price                    float64
	}
	var cands []candidate
	seen := map[[2]string]bool{}
	types := req.InstanceTypes
	if len(types) > maxTypes {
		types = types[:maxTypes]
	}
	for _, t := range types {
		image := req.AMIs[t.Architecture]
		if image == "" {
			continue
		}
		for _, o := range t.Offerings {
			s, ok := bestSubnet[o.Zone]
			if o.CapacityType != req.CapacityType || !ok || seen[[2]string{t.Name, o.Zone}] {
				continue
			}
			seen[[2]string{t.Name, o.Zone}] = true
			cands = append(cands, candidate{typ: t.Name, zone: o.Zone, subnet: s.ID, image: image, price: o.Price})
		}
	}
	if len(cands) == 0 {
		return nil, nil, fmt.Errorf("%w: %d candidate types, capacity type %s, subnet zones %v, AMI architectures %v",
			ErrNoCompatibleOfferings, len(req.InstanceTypes), req.CapacityType, slices.Sorted(maps.Keys(bestSubnet)), slices.Sorted(maps.Keys(req.AMIs)))
	}
	// Equal prices (an on-demand type costs the same in every zone) are
	// ordered by a rotation of the zones that depends on the claim, so a
	// claim its pods let span zones does not start in the first zone by
	// name every time: claims of one pool spread over the zones.
	zones := slices.Sorted(maps.Keys(bestSubnet))
	h := fnv.New32a()
	_, _ = h.Write([]byte(req.NodeClaimName))
	shift := int(h.Sum32() % uint32(len(zones)))
	rank := func(zone string) int { return (slices.Index(zones, zone) - shift + len(zones)) % len(zones) }
	typeOrder := map[string]int{}
	for _, c := range cands {
		if _, ok := typeOrder[c.typ]; !ok {
			typeOrder[c.typ] = len(typeOrder)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.price != b.price {
			return a.price < b.price
		}
		if a.typ != b.typ {
			return typeOrder[a.typ] < typeOrder[b.typ]
		}
		return rank(a.zone) < rank(b.zone)
	})
	out := make([]ec2types.FleetLaunchTemplateOverridesRequest, len(cands))
	for i, c := range cands {
		out[i] = ec2types.FleetLaunchTemplateOverridesRequest{
			InstanceType:     ec2types.InstanceType(c.typ),
			SubnetId:         aws.String(c.subnet),
			AvailabilityZone: aws.String(c.zone),
			ImageId:          aws.String(c.image),
			// Priority only matters to the "prioritized" strategies; it
			// records the order for them and for anyone reading the request.
			Priority: aws.Float64(float64(i)),
		}
	}
	return out, zoneOf, nil
}

// clientToken makes CreateFleet idempotent on AWS: a request repeated
// with the same token launches nothing new and answers what the first one
// did. It is the same for every request of one launch attempt of one
// claim and capacity type, whatever the overrides (the catalogue or the
// unavailable offerings may have changed since a call whose answer was
// lost: it must still be recognised). The attempt moves on only after EC2
// answered an attempt without an instance, so a request whose outcome is
// unknown (a timeout, a crash) is always repeated under its own token.
// (moto ignores ClientToken; the claim-tag lookup before launching and
// garbage collection of unnamed instances cover that.)
func clientToken(req *LaunchRequest) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", req.ClusterName, req.NodeClaimUID, req.CapacityType, req.LaunchAttempt)
	return "fleet-scheduler-" + hex.EncodeToString(h.Sum(nil))[:40]
}

func instanceFromFleet(instances []ec2types.CreateFleetInstance, zoneOf map[string]string, tags []ec2types.Tag, capacityType string) *Instance {
	for _, fi := range instances {
		if len(fi.InstanceIds) == 0 {
			continue
		}
		inst := &Instance{
			ID:           fi.InstanceIds[0],
			Type:         string(fi.InstanceType),
			CapacityType: capacityType,
			State:        string(ec2types.InstanceStateNamePending),
			Tags:         fromEC2Tags(tags),
		}
		if fi.Lifecycle != "" {
			inst.CapacityType = string(fi.Lifecycle)
		}
		if lto := fi.LaunchTemplateAndOverrides; lto != nil && lto.Overrides != nil {
			inst.SubnetID = aws.ToString(lto.Overrides.SubnetId)
			inst.ImageID = aws.ToString(lto.Overrides.ImageId)
			inst.Zone = aws.ToString(lto.Overrides.AvailabilityZone)
			if inst.Zone == "" {
				inst.Zone = zoneOf[inst.SubnetID]
			}
			if inst.Type == "" {
				inst.Type = string(lto.Overrides.InstanceType)
			}
		}
		inst.NodeClaimName, inst.NodePoolName = inst.Tags[TagNodeClaim], inst.Tags[TagNodePool]
		return inst
	}
	return nil
}

// nonEmpty is s as an optional API string: nil when empty.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
