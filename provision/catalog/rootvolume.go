package catalog

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
)

// familyRootVolume is, per AMI family, the device the kubelet's root
// directory (and so pods' ephemeral storage) lives on and the size the
// family gives it when the class does not: Karpenter's AWS provider's
// defaults (AL2 and AL2023: /dev/xvda, 20Gi; Bottlerocket: its data volume
// /dev/xvdb, 20Gi; Windows: /dev/sda1, 50Gi). Custom has none.
var familyRootVolume = map[string]struct {
	device string
	size   resource.Quantity
}{
	ec2v1.AMIFamilyAL2:          {"/dev/xvda", resource.MustParse("20Gi")},
	ec2v1.AMIFamilyAL2023:       {"/dev/xvda", resource.MustParse("20Gi")},
	ec2v1.AMIFamilyBottlerocket: {"/dev/xvdb", resource.MustParse("20Gi")},
	ec2v1.AMIFamilyWindows2019:  {"/dev/sda1", resource.MustParse("50Gi")},
	ec2v1.AMIFamilyWindows2022:  {"/dev/sda1", resource.MustParse("50Gi")},
	ec2v1.AMIFamilyWindows2025:  {"/dev/sda1", resource.MustParse("50Gi")},
}

// rootVolumeSize is the ephemeral-storage capacity of the class's nodes,
// chosen as Karpenter's AWS provider chooses it:
//  1. the size of the blockDeviceMapping marked rootVolume;
//  2. with mappings and a Custom family (or none), the last mapping's
//     size: the AMI's own layout is unknown;
//  3. with mappings, the one on the family's root device;
//  4. otherwise the family's default size, or DefaultEphemeralStorage
//     (20Gi, Karpenter's default EBS volume) for Custom.
//
// instanceStorePolicy RAID0 (ephemeral storage on the instance store) is
// not acted on here, so it does not count (the class's status says so).
func rootVolumeSize(class *ec2v1.EC2NodeClass) resource.Quantity {
	family := amiFamily(class)
	def, known := familyRootVolume[family]
	if bdms := class.Spec.BlockDeviceMappings; len(bdms) > 0 {
		for _, b := range bdms {
			if b != nil && b.RootVolume && b.EBS != nil && b.EBS.VolumeSize != nil {
				return b.EBS.VolumeSize.DeepCopy()
			}
		}
		if !known {
			if last := bdms[len(bdms)-1]; last != nil && last.EBS != nil && last.EBS.VolumeSize != nil {
				return last.EBS.VolumeSize.DeepCopy()
			}
			return DefaultEphemeralStorage.DeepCopy()
		}
		for _, b := range bdms {
			if b != nil && b.DeviceName != nil && *b.DeviceName == def.device && b.EBS != nil && b.EBS.VolumeSize != nil {
				return b.EBS.VolumeSize.DeepCopy()
			}
		}
	}
	if known {
		return def.size.DeepCopy()
	}
	return DefaultEphemeralStorage.DeepCopy()
}

// amiFamily is the class's amiFamily, or the family of its alias term
// (al2023@latest is AL2023), or "" (as Custom) when neither says.
func amiFamily(class *ec2v1.EC2NodeClass) string {
	if class.Spec.AMIFamily != nil {
		return *class.Spec.AMIFamily
	}
	for _, t := range class.Spec.AMISelectorTerms {
		if t.Alias == "" {
			continue
		}
		name, _, _ := strings.Cut(t.Alias, "@")
		for family := range familyRootVolume {
			if strings.EqualFold(family, name) {
				return family
			}
		}
	}
	return ""
}
