package ec2

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

func TestProviderID(t *testing.T) {
	if got := FormatProviderID("us-east-1a", "i-0123456789abcdef0"); got != "aws:///us-east-1a/i-0123456789abcdef0" {
		t.Fatalf("FormatProviderID = %q", got)
	}
	for _, tc := range []struct {
		in, zone, id string
		ok           bool
	}{
		{"aws:///us-east-1a/i-0123456789abcdef0", "us-east-1a", "i-0123456789abcdef0", true},
		{"aws:///i-0123", "", "i-0123", true},
		{"aws://us-east-1a/i-0123", "us-east-1a", "i-0123", true},
		{"aws:////i-0123", "", "", false},
		{"gce:///us-east-1a/i-0123", "", "", false},
		{"aws:///us-east-1a/vol-0123", "", "", false},
		{"aws:///a/b/i-0123", "", "", false},
		{"", "", "", false},
	} {
		zone, id, err := ParseProviderID(tc.in)
		if (err == nil) != tc.ok || zone != tc.zone || id != tc.id {
			t.Errorf("ParseProviderID(%q) = %q, %q, %v", tc.in, zone, id, err)
		}
	}
	inst := &Instance{ID: "i-1", Zone: "us-east-1b"}
	if zone, id, err := ParseProviderID(inst.ProviderID()); err != nil || zone != "us-east-1b" || id != "i-1" {
		t.Fatalf("round trip: %q %q %v", zone, id, err)
	}
}

func TestLaunchTemplateName(t *testing.T) {
	if got := LaunchTemplateName("prod", "default-abcde"); got != "fleet-scheduler/prod/default-abcde" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("x", 200)
	for _, name := range []string{LaunchTemplateName("prod", long), LaunchTemplateName("my cluster!", "c")} {
		if !ltNameChars.MatchString(name) || !strings.HasPrefix(name, launchTemplatePrefix) {
			t.Errorf("invalid name %q", name)
		}
	}
	if LaunchTemplateName("a", long) == LaunchTemplateName("b", long) {
		t.Error("hashed names collide across clusters")
	}
}

func TestInstanceTagsCannotBeOverridden(t *testing.T) {
	req := &LaunchRequest{ClusterName: "prod", NodePoolName: "pool", NodeClaimName: "claim", NodeClassName: "nc",
		Tags: map[string]string{TagNodeClaim: "other", TagName: "other", "team": "a", ClusterTagKey("prod"): "shared"}}
	want := map[string]string{
		TagNodeClaim: "claim", TagName: "claim", TagNodePool: "pool", TagNodeClass: "nc",
		TagEKSClusterName: "prod", "kubernetes.io/cluster/prod": "owned", "team": "a",
	}
	got := instanceTags(req)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("instanceTags = %v, want %v", got, want)
	}
	if lt := launchTemplateTags(req); lt[TagManagedLaunchTemplate] != "prod" {
		t.Errorf("launch template tags = %v", lt)
	}
}

func TestBuildOverrides(t *testing.T) {
	req := &LaunchRequest{
		CapacityType: CapacityTypeOnDemand,
		Subnets: []Subnet{
			{ID: "subnet-a1", Zone: "us-east-1a", AvailableIPs: 10},
			{ID: "subnet-a2", Zone: "us-east-1a", AvailableIPs: 200},
			{ID: "subnet-b", Zone: "us-east-1b", AvailableIPs: 50},
		},
		AMIs: map[string]string{ArchAMD64: "ami-amd", ArchARM64: "ami-arm"},
		InstanceTypes: []CandidateType{
			{Name: "c7g.large", Architecture: ArchARM64, Offerings: []CandidateOffering{
				{Zone: "us-east-1b", CapacityType: CapacityTypeOnDemand, Price: 0.0725},
				{Zone: "us-east-1a", CapacityType: CapacityTypeOnDemand, Price: 0.0725},
				{Zone: "us-east-1a", CapacityType: CapacityTypeSpot, Price: 0.03},
			}},
			{Name: "m5.large", Architecture: ArchAMD64, Offerings: []CandidateOffering{
				{Zone: "us-east-1c", CapacityType: CapacityTypeOnDemand, Price: 0.096}, // no subnet there
				{Zone: "us-east-1a", CapacityType: CapacityTypeOnDemand, Price: 0.096},
			}},
			{Name: "x.large", Architecture: "s390x", Offerings: []CandidateOffering{ // no AMI
				{Zone: "us-east-1a", CapacityType: CapacityTypeOnDemand, Price: 0.01},
			}},
			{Name: "t3.small", Architecture: ArchAMD64, Offerings: []CandidateOffering{
				{Zone: "us-east-1b", CapacityType: CapacityTypeOnDemand, Price: 0.0208},
			}},
		},
	}
	overrides, zoneOf, err := buildOverrides(req, 60)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, o := range overrides {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s", o.InstanceType, aws.ToString(o.AvailabilityZone), aws.ToString(o.SubnetId), aws.ToString(o.ImageId)))
		if aws.ToFloat64(o.Priority) != float64(i) {
			t.Errorf("override %d has priority %v", i, aws.ToFloat64(o.Priority))
		}
	}
	want := []string{
		"t3.small/us-east-1b/subnet-b/ami-amd",
		"c7g.large/us-east-1b/subnet-b/ami-arm",
		"c7g.large/us-east-1a/subnet-a2/ami-arm",
		"m5.large/us-east-1a/subnet-a2/ami-amd",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("overrides\n got %v\nwant %v", got, want)
	}
	if zoneOf["subnet-a1"] != "us-east-1a" {
		t.Errorf("zoneOf = %v", zoneOf)
	}
	if o, _, _ := buildOverrides(req, 1); len(o) != 2 {
		t.Errorf("MaxInstanceTypes=1 gave %d overrides, want the 2 of c7g.large", len(o))
	}
	req.CapacityType = CapacityTypeSpot
	req.InstanceTypes = req.InstanceTypes[1:]
	if _, _, err := buildOverrides(req, 60); !errors.Is(err, ErrNoCompatibleOfferings) {
		t.Fatalf("err = %v, want ErrNoCompatibleOfferings", err)
	}
}

func TestClientToken(t *testing.T) {
	req := &LaunchRequest{ClusterName: "c", NodeClaimUID: "uid-1", CapacityType: CapacityTypeOnDemand}
	t1, t2 := clientToken(req), clientToken(req)
	if t1 != t2 || len(t1) > 64 {
		t.Fatalf("tokens %q %q", t1, t2)
	}
	// The overrides are not part of it: a retry of a lost request is
	// recognised whatever the catalogue says now.
	fewer := *req
	fewer.InstanceTypes = []CandidateType{{Name: "m5.large"}}
	if clientToken(&fewer) != t1 {
		t.Error("a retry with other offerings got a new token")
	}
	for name, change := range map[string]func(r *LaunchRequest){
		"another claim":           func(r *LaunchRequest) { r.NodeClaimUID = "uid-2" },
		"the next attempt":        func(r *LaunchRequest) { r.LaunchAttempt = 1 },
		"spot after on-demand":    func(r *LaunchRequest) { r.CapacityType = CapacityTypeSpot },
		"another cluster's claim": func(r *LaunchRequest) { r.ClusterName = "d" },
	} {
		other := *req
		change(&other)
		if clientToken(&other) == t1 {
			t.Errorf("%s shares the token", name)
		}
	}
}

func TestClassifyFailures(t *testing.T) {
	fleetErr := func(typ, subnet, zone, code string) ec2types.CreateFleetError {
		return ec2types.CreateFleetError{
			ErrorCode: aws.String(code), ErrorMessage: aws.String(code + " message"), Lifecycle: ec2types.InstanceLifecycleSpot,
			LaunchTemplateAndOverrides: &ec2types.LaunchTemplateAndOverridesResponse{Overrides: &ec2types.FleetLaunchTemplateOverrides{
				InstanceType: ec2types.InstanceType(typ), SubnetId: aws.String(subnet), AvailabilityZone: aws.String(zone)}},
		}
	}
	zoneOf := map[string]string{"subnet-b": "us-east-1b"}
	for _, tc := range []struct {
		name        string
		errs        []ec2types.CreateFleetError
		check       func(error) bool
		unavailable int
	}{
		{"capacity", []ec2types.CreateFleetError{fleetErr("m5.large", "subnet-a", "us-east-1a", "InsufficientInstanceCapacity"),
			fleetErr("m5.xlarge", "subnet-b", "", "UnfulfillableCapacity")}, IsInsufficientCapacity, 2},
		{"capacity wins over quota and others", []ec2types.CreateFleetError{fleetErr("p4d.24xlarge", "subnet-a", "us-east-1a", "VcpuLimitExceeded"),
			fleetErr("m5.large", "subnet-a", "us-east-1a", "InsufficientInstanceCapacity"), fleetErr("m5.large", "subnet-b", "", "InvalidParameterValue")},
			IsInsufficientCapacity, 2},
		{"quota wins over others", []ec2types.CreateFleetError{fleetErr("p4d.24xlarge", "subnet-a", "us-east-1a", "VcpuLimitExceeded"),
			fleetErr("m5.large", "subnet-a", "us-east-1a", "MaxSpotInstanceCountExceeded"), fleetErr("m5.large", "subnet-b", "", "InvalidParameterValue")},
			IsQuotaExceeded, 2},
		{"quota", []ec2types.CreateFleetError{fleetErr("p4d.24xlarge", "subnet-a", "us-east-1a", "VcpuLimitExceeded")}, IsQuotaExceeded, 1},
		{"other", []ec2types.CreateFleetError{fleetErr("m5.large", "subnet-a", "us-east-1a", "InvalidAMIID.Malformed")},
			func(err error) bool { var e *LaunchError; return errors.As(err, &e) }, 0},
		{"empty", nil, func(err error) bool { var e *LaunchError; return errors.As(err, &e) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := fleetFailures(tc.errs, zoneOf)
			err := classifyFailures(failures)
			if !tc.check(err) {
				t.Fatalf("wrong class: %T %v", err, err)
			}
			if got := UnavailableOfferings(err); len(got) != tc.unavailable {
				t.Fatalf("UnavailableOfferings = %v, want %d", got, tc.unavailable)
			}
			for _, f := range failures {
				if f.Zone == "" || f.InstanceType == "" || f.CapacityType != CapacityTypeSpot {
					t.Errorf("incomplete failure %+v", f)
				}
			}
		})
	}
	apiErr := fmt.Errorf("creating fleet: %w", &smithy.GenericAPIError{Code: "VcpuLimitExceeded", Message: "limit"})
	if err := classifyAPIError(apiErr); !IsQuotaExceeded(err) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("API quota error classified as %T %v", err, err)
	}
	if err := classifyAPIError(errors.New("boom")); IsQuotaExceeded(err) || IsInsufficientCapacity(err) {
		t.Errorf("plain error classified as %T", err)
	}
	if !IsNotFound(&smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound"}) || !IsNotFound(fmt.Errorf("x: %w", ErrNotFound)) || IsNotFound(errors.New("x")) {
		t.Error("IsNotFound")
	}
}

func TestValidateRequest(t *testing.T) {
	err := validateRequest(&LaunchRequest{CapacityType: "reserved", UserData: strings.Repeat("x", MaxUserDataBytes+1),
		BlockDeviceMappings: []BlockDeviceMapping{{}}})
	for _, want := range []string{"clusterName: required", "nodeClaimUID: required", "capacityType: must be", "instanceTypes:",
		"subnets:", "amis:", "userData: 16385 bytes", "blockDeviceMappings[0].deviceName"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}
