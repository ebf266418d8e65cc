// Package catalog builds the instance-type catalogue of one region from EC2
// (DescribeInstanceTypes, DescribeInstanceTypeOfferings, DescribeAvailabilityZones)
// and the pricing package: for every type we can run, its Karpenter
// well-known labels, capacity, allocatable and its offerings per zone and
// capacity type. Catalog keeps the last good copy in memory and refreshes it.
package catalog

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Well-known label keys (Kubernetes, Karpenter and Karpenter's AWS provider).
const (
	LabelInstanceType   = corev1.LabelInstanceTypeStable
	LabelArch           = corev1.LabelArchStable
	LabelOS             = corev1.LabelOSStable
	LabelZone           = corev1.LabelTopologyZone
	LabelRegion         = corev1.LabelTopologyRegion
	LabelZoneID         = "topology.k8s.aws/zone-id"
	LabelCapacityType   = "karpenter.sh/capacity-type"
	LabelCategory       = "karpenter.k8s.aws/instance-category"
	LabelFamily         = "karpenter.k8s.aws/instance-family"
	LabelGeneration     = "karpenter.k8s.aws/instance-generation"
	LabelSize           = "karpenter.k8s.aws/instance-size"
	LabelCPU            = "karpenter.k8s.aws/instance-cpu"
	LabelCPUMfr         = "karpenter.k8s.aws/instance-cpu-manufacturer"
	LabelCPUClockMhz    = "karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz"
	LabelMemory         = "karpenter.k8s.aws/instance-memory"
	LabelHypervisor     = "karpenter.k8s.aws/instance-hypervisor"
	LabelNetworkBW      = "karpenter.k8s.aws/instance-network-bandwidth"
	LabelEBSBW          = "karpenter.k8s.aws/instance-ebs-bandwidth"
	LabelGPUName        = "karpenter.k8s.aws/instance-gpu-name"
	LabelGPUMfr         = "karpenter.k8s.aws/instance-gpu-manufacturer"
	LabelGPUCount       = "karpenter.k8s.aws/instance-gpu-count"
	LabelGPUMemory      = "karpenter.k8s.aws/instance-gpu-memory"
	LabelAccelName      = "karpenter.k8s.aws/instance-accelerator-name"
	LabelAccelMfr       = "karpenter.k8s.aws/instance-accelerator-manufacturer"
	LabelAccelCount     = "karpenter.k8s.aws/instance-accelerator-count"
	LabelLocalNVMe      = "karpenter.k8s.aws/instance-local-nvme"
	LabelEncInTransit   = "karpenter.k8s.aws/instance-encryption-in-transit-supported"
	CapacityTypeSpot    = "spot"
	CapacityTypeOnDmd   = "on-demand"
	ArchAMD64           = "amd64"
	ArchARM64           = "arm64"
	ResourceNVIDIAGPU   = corev1.ResourceName("nvidia.com/gpu")
	ResourceAMDGPU      = corev1.ResourceName("amd.com/gpu")
	ResourceAWSNeuron   = corev1.ResourceName("aws.amazon.com/neuron")
	ResourceHabanaGaudi = corev1.ResourceName("habana.ai/gaudi")
)

// InstanceType is one EC2 instance type we can launch, as the scheduler sees it.
// Values returned by Catalog are shared: treat them as read-only.
type InstanceType struct {
	Name string
	// Labels are the single-valued well-known labels of the type (instance
	// type, arch, os, region, karpenter.k8s.aws/instance-*). Zone, zone id and
	// capacity type belong to an offering: see Offering.Labels.
	Labels map[string]string
	// Capacity is what the node reports as capacity: vCPUs, memory after the
	// VM overhead, pods, ephemeral storage, GPUs/accelerators where present.
	Capacity corev1.ResourceList
	// Overhead is what kubelet keeps back, computed with Options.Kubelet.
	Overhead Overhead
	// Allocatable is Capacity minus Overhead.
	Allocatable corev1.ResourceList
	// Offerings has one entry per (zone, capacity type) the type is offered in.
	Offerings []Offering
}

// Offering is one zone and capacity type an instance type can launch in.
type Offering struct {
	Zone         string
	ZoneID       string
	CapacityType string
	// Price is USD per hour; meaningful only when PriceKnown.
	Price      float64
	PriceKnown bool
	// Available is false when the price is unknown or EC2 recently reported
	// the offering out of capacity (see Catalog.MarkUnavailable).
	Available bool
}

// OfferingLabels returns the type's labels plus the offering's zone, zone id
// and capacity type: the labels a node launched from this offering carries.
func (it *InstanceType) OfferingLabels(o Offering) map[string]string {
	out := make(map[string]string, len(it.Labels)+3)
	for k, v := range it.Labels {
		out[k] = v
	}
	out[LabelZone] = o.Zone
	if o.ZoneID != "" {
		out[LabelZoneID] = o.ZoneID
	}
	out[LabelCapacityType] = o.CapacityType
	return out
}

// Options tune how capacity and allocatable are computed.
type Options struct {
	// Region is put in the topology.kubernetes.io/region label.
	Region string
	// VMMemoryOverheadPercent is the fraction of the advertised memory the
	// hypervisor and firmware keep (default 0.075).
	VMMemoryOverheadPercent *float64
	// EphemeralStorage is the root volume size, the node's ephemeral-storage
	// capacity (default 20Gi).
	EphemeralStorage *resource.Quantity
	// Kubelet holds maxPods, kubeReserved, systemReserved and evictionHard as
	// an EC2NodeClass's spec.kubelet sets them. Nil means kubeadm/Karpenter
	// defaults.
	Kubelet *KubeletConfig
	// RefreshInterval is how often Run rebuilds the catalogue (default 1h).
	RefreshInterval time.Duration
}

// Defaults for Options.
const (
	DefaultVMMemoryOverheadPercent = 0.075
	DefaultMaxPods                 = int32(110)
	DefaultRefreshInterval         = time.Hour
)

// DefaultEphemeralStorage is the default root volume size.
var DefaultEphemeralStorage = resource.MustParse("20Gi")

func (o Options) withDefaults() (Options, error) {
	if o.VMMemoryOverheadPercent == nil {
		v := DefaultVMMemoryOverheadPercent
		o.VMMemoryOverheadPercent = &v
	}
	if p := *o.VMMemoryOverheadPercent; p < 0 || p >= 1 {
		return o, fmt.Errorf("options.vmMemoryOverheadPercent: must be in [0, 1), got %v", p)
	}
	if o.EphemeralStorage == nil {
		q := DefaultEphemeralStorage.DeepCopy()
		o.EphemeralStorage = &q
	}
	if o.EphemeralStorage.Sign() <= 0 {
		return o, fmt.Errorf("options.ephemeralStorage: must be positive, got %s", o.EphemeralStorage)
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.Kubelet != nil {
		if err := o.Kubelet.Validate(); err != nil {
			return o, fmt.Errorf("options.kubelet.%w", err)
		}
	}
	return o, nil
}
