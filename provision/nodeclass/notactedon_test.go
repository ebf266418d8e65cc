package nodeclass

import (
	"slices"
	"testing"

	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
)

func TestNotActedOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec ec2v1.EC2NodeClassSpec
		want []string
	}{
		{"instance profile, Custom", ec2v1.EC2NodeClassSpec{InstanceProfile: ptr.To("p"), AMIFamily: ptr.To("Custom")}, nil},
		{"role only", ec2v1.EC2NodeClassSpec{Role: "r"}, nil},
		{"AL2023 family", ec2v1.EC2NodeClassSpec{InstanceProfile: ptr.To("p"), AMIFamily: ptr.To("AL2023")},
			[]string{"spec.amiFamily (nodes always join with kubeadm, as with Custom)"}},
		{"network and cpu", ec2v1.EC2NodeClassSpec{
			InstanceProfile:          ptr.To("p"),
			AssociatePublicIPAddress: ptr.To(true),
			IPPrefixCount:            ptr.To[int32](1),
			ConnectionTracking:       &ec2v1.ConnectionTracking{UDPTimeout: ptr.To[int32](30)},
			Context:                  ptr.To("c-1"),
			CPUOptions:               &ec2v1.CPUOptions{},
			BlockDeviceMappings:      []*ec2v1.BlockDeviceMapping{nil, {EBS: &ec2v1.BlockDevice{VolumeInitializationRate: ptr.To[int32](100)}}},
		}, []string{"spec.cpuOptions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NotActedOn(&tc.spec); !slices.Equal(got, tc.want) {
				t.Errorf("NotActedOn = %q, want %q", got, tc.want)
			}
		})
	}
}
