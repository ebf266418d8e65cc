package catalog

import (
	"testing"

	v1 "k8s.io/api/core/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

func opt(name, zone, arch string) *packing.Option {
	return &packing.Option{InstanceType: name, Zone: zone, Labels: map[string]string{
		v1.LabelInstanceTypeStable: name, v1.LabelTopologyZone: zone, v1.LabelArchStable: arch, "karpenter.k8s.aws/instance-cpu": "4"}}
}

func TestLaunchable(t *testing.T) {
	class := &ec2v1.EC2NodeClass{Status: ec2v1.EC2NodeClassStatus{
		Subnets: []ec2v1.Subnet{{ID: "subnet-a", Zone: "us-east-1a"}},
		AMIs: []ec2v1.AMI{{ID: "ami-1", Requirements: []v1.NodeSelectorRequirement{
			{Key: v1.LabelArchStable, Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}}}}},
	}}
	got := launchable([]*packing.Option{
		opt("m5.large", "us-east-1a", "amd64"),
		opt("m5.large", "us-east-1b", "amd64"),  // no subnet in the zone
		opt("m6g.large", "us-east-1a", "arm64"), // no arm64 image
	}, class)
	if len(got) != 1 || got[0].InstanceType != "m5.large" || got[0].Zone != "us-east-1a" {
		t.Errorf("launchable = %v, want only m5.large in us-east-1a", got)
	}
}
