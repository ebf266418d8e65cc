package catalog

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
)

func bdm(device, size string, root bool) *ec2v1.BlockDeviceMapping {
	q := resource.MustParse(size)
	return &ec2v1.BlockDeviceMapping{DeviceName: ptr.To(device), EBS: &ec2v1.BlockDevice{VolumeSize: &q}, RootVolume: root}
}

func TestRootVolumeSize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		family string
		alias  string
		bdms   []*ec2v1.BlockDeviceMapping
		want   string
	}{
		{name: "the rootVolume mapping", family: ec2v1.AMIFamilyAL2023, bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/xvda", "40Gi", false), bdm("/dev/xvdb", "80Gi", true)}, want: "80Gi"},
		{name: "Custom: the last mapping (the seed's class)", family: ec2v1.AMIFamilyCustom, bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/xvda", "30Gi", false)}, want: "30Gi"},
		{name: "no family: as Custom", bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/sdb", "5Gi", false), bdm("/dev/sda1", "60Gi", false)}, want: "60Gi"},
		{name: "AL2023: the mapping on /dev/xvda", family: ec2v1.AMIFamilyAL2023, bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/xvda", "100Gi", false), bdm("/dev/xvdz", "5Gi", false)}, want: "100Gi"},
		{name: "Bottlerocket: the data volume /dev/xvdb", family: ec2v1.AMIFamilyBottlerocket, bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/xvda", "4Gi", false), bdm("/dev/xvdb", "64Gi", false)}, want: "64Gi"},
		{name: "AL2023 without a mapping on its device: its default", family: ec2v1.AMIFamilyAL2023, bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/xvdz", "5Gi", false)}, want: "20Gi"},
		{name: "Windows default", family: ec2v1.AMIFamilyWindows2022, want: "50Gi"},
		{name: "alias family", alias: "bottlerocket@latest", want: "20Gi"},
		{name: "alias family with its device", alias: "al2023@v20250101", bdms: []*ec2v1.BlockDeviceMapping{bdm("/dev/xvda", "35Gi", false)}, want: "35Gi"},
		{name: "Custom without mappings: 20Gi", family: ec2v1.AMIFamilyCustom, want: "20Gi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class := &ec2v1.EC2NodeClass{}
			if tc.family != "" {
				class.Spec.AMIFamily = ptr.To(tc.family)
			}
			if tc.alias != "" {
				class.Spec.AMISelectorTerms = []ec2v1.AMISelectorTerm{{Alias: tc.alias}}
			}
			class.Spec.BlockDeviceMappings = tc.bdms
			if got := rootVolumeSize(class); got.Cmp(resource.MustParse(tc.want)) != 0 {
				t.Errorf("rootVolumeSize = %s, want %s", got.String(), tc.want)
			}
		})
	}
}

// TestForClassEphemeralStorage: capacity is the root volume; allocatable
// is less kubelet's kube-reserved storage (1Gi) and the nodefs.available
// eviction threshold (10% by default, or the class's evictionHard).
func TestForClassEphemeralStorage(t *testing.T) {
	it := &InstanceType{Name: "m5.large", Capacity: v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("7440Mi"), v1.ResourcePods: resource.MustParse("110"),
		v1.ResourceEphemeralStorage: resource.MustParse("20Gi"), "nvidia.com/gpu": resource.MustParse("1"),
	}}
	for _, tc := range []struct {
		name        string
		kubelet     *KubeletConfig
		allocatable string
	}{
		{"defaults", nil, "26Gi"}, // 30 - 1 - 3
		{"evictionHard nodefs 20%", &KubeletConfig{EvictionHard: map[string]string{SignalNodeFSAvailable: "20%"}}, "23Gi"},
		{"kubeReserved storage 2Gi", &KubeletConfig{KubeReserved: map[string]string{"ephemeral-storage": "2Gi"}}, "25Gi"},
	} {
		capacity, allocatable, err := forClass(it, tc.kubelet, resource.MustParse("30Gi"))
		if err != nil {
			t.Fatal(err)
		}
		if c := capacity[v1.ResourceEphemeralStorage]; c.Cmp(resource.MustParse("30Gi")) != 0 {
			t.Errorf("%s: capacity %s, want the 30Gi root volume", tc.name, c.String())
		}
		if a := allocatable[v1.ResourceEphemeralStorage]; a.Cmp(resource.MustParse(tc.allocatable)) != 0 {
			t.Errorf("%s: allocatable %s, want %s", tc.name, a.String(), tc.allocatable)
		}
		if g := allocatable["nvidia.com/gpu"]; g.Value() != 1 {
			t.Errorf("%s: the GPU went missing from allocatable: %v", tc.name, allocatable)
		}
	}
	if s := it.Capacity[v1.ResourceEphemeralStorage]; s.Cmp(resource.MustParse("20Gi")) != 0 {
		t.Error("the catalogue's type was changed")
	}
}
