package catalog

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// familyScheme splits a family such as "c7gn" or "u-6tb1" into its category
// letters, an optional "-<n>tb" memory marker and the generation digits.
var familyScheme = regexp.MustCompile(`^([a-z]+)(-[0-9]+tb)?([0-9]+)`)

// kubeArch maps EC2 architectures to Kubernetes ones; anything else
// (i386, x86_64_mac, arm64_mac) is not something we run.
var kubeArch = map[ec2types.ArchitectureType]string{
	ec2types.ArchitectureTypeX8664: ArchAMD64,
	ec2types.ArchitectureTypeArm64: ArchARM64,
}

// architecture is the Kubernetes architecture of the type, or "" when none
// of its architectures is one we run.
func architecture(info *ec2types.InstanceTypeInfo) string {
	if info.ProcessorInfo == nil {
		return ""
	}
	for _, a := range info.ProcessorInfo.SupportedArchitectures {
		if k, ok := kubeArch[a]; ok {
			return k
		}
	}
	return ""
}

// computeLabels returns the single-valued well-known labels of a type.
// Labels whose source field EC2 does not report are left out.
func computeLabels(info *ec2types.InstanceTypeInfo, arch, region string) map[string]string {
	name := string(info.InstanceType)
	l := make(map[string]string, 24)
	l[LabelInstanceType] = name
	l[LabelArch] = arch
	l[LabelOS] = "linux"
	if region != "" {
		l[LabelRegion] = region
	}
	if family, size, ok := strings.Cut(name, "."); ok {
		l[LabelFamily] = family
		l[LabelSize] = size
		if m := familyScheme.FindStringSubmatch(family); m != nil {
			l[LabelCategory] = m[1]
			l[LabelGeneration] = m[3]
		}
	}
	if info.VCpuInfo != nil && info.VCpuInfo.DefaultVCpus != nil {
		l[LabelCPU] = itoa(int64(*info.VCpuInfo.DefaultVCpus))
	}
	if p := info.ProcessorInfo; p != nil {
		if p.Manufacturer != nil && *p.Manufacturer != "" {
			l[LabelCPUMfr] = kebab(*p.Manufacturer)
		}
		if p.SustainedClockSpeedInGhz != nil && *p.SustainedClockSpeedInGhz > 0 {
			l[LabelCPUClockMhz] = itoa(int64(math.Round(*p.SustainedClockSpeedInGhz * 1000)))
		}
	}
	if info.MemoryInfo != nil && info.MemoryInfo.SizeInMiB != nil {
		l[LabelMemory] = itoa(*info.MemoryInfo.SizeInMiB)
	}
	if info.Hypervisor != "" {
		l[LabelHypervisor] = string(info.Hypervisor)
	}
	if n := info.NetworkInfo; n != nil {
		if n.EncryptionInTransitSupported != nil {
			l[LabelEncInTransit] = strconv.FormatBool(*n.EncryptionInTransitSupported)
		}
		if mbps := baselineNetworkMbps(n); mbps > 0 {
			l[LabelNetworkBW] = itoa(mbps)
		}
	}
	if e := info.EbsInfo; e != nil && e.EbsOptimizedSupport == ec2types.EbsOptimizedSupportDefault &&
		e.EbsOptimizedInfo != nil && e.EbsOptimizedInfo.MaximumBandwidthInMbps != nil {
		l[LabelEBSBW] = itoa(int64(*e.EbsOptimizedInfo.MaximumBandwidthInMbps))
	}
	if s := info.InstanceStorageInfo; s != nil && s.NvmeSupport != ec2types.EphemeralNvmeSupportUnsupported && s.TotalSizeInGB != nil {
		l[LabelLocalNVMe] = itoa(*s.TotalSizeInGB)
	}
	// GPU and accelerator labels are single-valued, so only types with one
	// kind of device get them (as in Karpenter).
	if g := info.GpuInfo; g != nil && len(g.Gpus) == 1 {
		gpu := g.Gpus[0]
		l[LabelGPUName] = kebab(deref(gpu.Name))
		l[LabelGPUMfr] = kebab(deref(gpu.Manufacturer))
		l[LabelGPUCount] = itoa(int64(deref(gpu.Count)))
		if gpu.MemoryInfo != nil && gpu.MemoryInfo.SizeInMiB != nil {
			l[LabelGPUMemory] = itoa(int64(*gpu.MemoryInfo.SizeInMiB))
		}
	}
	if a := info.InferenceAcceleratorInfo; a != nil && len(a.Accelerators) == 1 {
		acc := a.Accelerators[0]
		l[LabelAccelName] = kebab(deref(acc.Name))
		l[LabelAccelMfr] = kebab(deref(acc.Manufacturer))
		l[LabelAccelCount] = itoa(int64(deref(acc.Count)))
	} else if n := info.NeuronInfo; n != nil && len(n.NeuronDevices) == 1 {
		d := n.NeuronDevices[0]
		l[LabelAccelName] = kebab(deref(d.Name))
		l[LabelAccelMfr] = "aws"
		l[LabelAccelCount] = itoa(int64(deref(d.Count)))
	}
	return l
}

// baselineNetworkMbps is the baseline bandwidth of the default network card.
// Karpenter publishes the same figure (Mbps) from the instance-type docs.
func baselineNetworkMbps(n *ec2types.NetworkInfo) int64 {
	idx := int32(0)
	if n.DefaultNetworkCardIndex != nil {
		idx = *n.DefaultNetworkCardIndex
	}
	for _, c := range n.NetworkCards {
		if deref(c.NetworkCardIndex) == idx && c.BaselineBandwidthInGbps != nil {
			return int64(math.Round(*c.BaselineBandwidthInGbps * 1000))
		}
	}
	return 0
}

func kebab(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "-"))
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
