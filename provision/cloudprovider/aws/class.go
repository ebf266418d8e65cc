package aws

import (
	"time"

	v1 "k8s.io/api/core/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// The EC2NodeClass as the launcher takes it: resolved subnets, security
// groups and images from its status, the rest from its spec.

func subnets(class *ec2v1.EC2NodeClass) []ec2.Subnet {
	out := make([]ec2.Subnet, 0, len(class.Status.Subnets))
	for _, s := range class.Status.Subnets {
		out = append(out, ec2.Subnet{ID: s.ID, Zone: s.Zone, ZoneID: s.ZoneID})
	}
	return out
}

func securityGroups(class *ec2v1.EC2NodeClass) []string {
	out := make([]string, 0, len(class.Status.SecurityGroups))
	for _, g := range class.Status.SecurityGroups {
		out = append(out, g.ID)
	}
	return out
}

// amis maps each architecture to the first (newest) image resolved for it.
func amis(class *ec2v1.EC2NodeClass) map[string]string {
	out := map[string]string{}
	for _, ami := range class.Status.AMIs {
		if ami.Deprecated {
			continue
		}
		for _, r := range ami.Requirements {
			if r.Key != v1.LabelArchStable || r.Operator != v1.NodeSelectorOpIn {
				continue
			}
			for _, arch := range r.Values {
				if _, ok := out[arch]; !ok {
					out[arch] = ami.ID
				}
			}
		}
	}
	return out
}

func metadataOptions(class *ec2v1.EC2NodeClass) *ec2.MetadataOptions {
	m := class.Spec.MetadataOptions
	if m == nil {
		return nil // the launcher's defaults: IMDSv2 required, hop limit 1
	}
	out := &ec2.MetadataOptions{
		HTTPEndpoint:     deref(m.HTTPEndpoint),
		HTTPProtocolIPv6: deref(m.HTTPProtocolIPv6),
		HTTPTokens:       deref(m.HTTPTokens),
	}
	if m.HTTPPutResponseHopLimit != nil {
		out.HTTPPutResponseHopLimit = int32(*m.HTTPPutResponseHopLimit)
	}
	return out
}

func blockDevices(class *ec2v1.EC2NodeClass) []ec2.BlockDeviceMapping {
	var out []ec2.BlockDeviceMapping
	for _, b := range class.Spec.BlockDeviceMappings {
		if b == nil || b.EBS == nil {
			continue
		}
		m := ec2.BlockDeviceMapping{
			DeviceName:          deref(b.DeviceName),
			VolumeType:          deref(b.EBS.VolumeType),
			KMSKeyID:            deref(b.EBS.KMSKeyID),
			SnapshotID:          deref(b.EBS.SnapshotID),
			Encrypted:           b.EBS.Encrypted,
			DeleteOnTermination: b.EBS.DeleteOnTermination,
		}
		if b.EBS.VolumeSize != nil {
			// EBS sizes are whole GiB; round a decimal size ("30G") up, never down.
			m.VolumeSizeGiB = int32((b.EBS.VolumeSize.Value() + 1<<30 - 1) >> 30)
		}
		if b.EBS.IOPS != nil {
			v := int32(*b.EBS.IOPS)
			m.IOPS = &v
		}
		if b.EBS.Throughput != nil {
			v := int32(*b.EBS.Throughput)
			m.Throughput = &v
		}
		m.VolumeInitializationRate = b.EBS.VolumeInitializationRate
		out = append(out, m)
	}
	return out
}

func kubeletFlags(class *ec2v1.EC2NodeClass) *bootstrap.KubeletConfig {
	k := class.Spec.Kubelet
	if k == nil {
		return nil
	}
	out := &bootstrap.KubeletConfig{
		ClusterDNS:                  k.ClusterDNS,
		MaxPods:                     k.MaxPods,
		PodsPerCore:                 k.PodsPerCore,
		SystemReserved:              k.SystemReserved,
		KubeReserved:                k.KubeReserved,
		EvictionHard:                k.EvictionHard,
		EvictionSoft:                k.EvictionSoft,
		EvictionMaxPodGracePeriod:   k.EvictionMaxPodGracePeriod,
		ImageGCHighThresholdPercent: k.ImageGCHighThresholdPercent,
		ImageGCLowThresholdPercent:  k.ImageGCLowThresholdPercent,
		CPUCFSQuota:                 k.CPUCFSQuota,
	}
	if len(k.EvictionSoftGracePeriod) > 0 {
		out.EvictionSoftGracePeriod = map[string]time.Duration{}
		for s, d := range k.EvictionSoftGracePeriod {
			out.EvictionSoftGracePeriod[s] = d.Duration
		}
	}
	return out
}

// networkInterface is the class's primary-interface settings, or nil when
// it sets none.
func networkInterface(class *ec2v1.EC2NodeClass) *ec2.NetworkInterface {
	s := &class.Spec
	if s.AssociatePublicIPAddress == nil && s.IPPrefixCount == nil && s.ConnectionTracking == nil {
		return nil
	}
	n := &ec2.NetworkInterface{AssociatePublicIPAddress: s.AssociatePublicIPAddress, IPv4PrefixCount: s.IPPrefixCount}
	if ct := s.ConnectionTracking; ct != nil {
		n.TCPEstablishedTimeout, n.UDPStreamTimeout, n.UDPTimeout = ct.TCPEstablishedTimeout, ct.UDPStreamTimeout, ct.UDPTimeout
	}
	return n
}
