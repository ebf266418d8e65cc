package v1

// Node labels fleet-scheduler sets from the instance type, zone and node
// class. Requirements may use every one of them.
const (
	LabelInstanceHypervisor                   = GroupName + "/instance-hypervisor"
	LabelInstanceEncryptionInTransitSupported = GroupName + "/instance-encryption-in-transit-supported"
	LabelInstanceCategory                     = GroupName + "/instance-category"
	LabelInstanceCapabilityFlex               = GroupName + "/instance-capability-flex"
	LabelInstanceFamily                       = GroupName + "/instance-family"
	LabelInstanceGeneration                   = GroupName + "/instance-generation"
	LabelInstanceLocalNVME                    = GroupName + "/instance-local-nvme"
	LabelInstanceSize                         = GroupName + "/instance-size"
	LabelInstanceCPU                          = GroupName + "/instance-cpu"
	LabelInstanceCPUManufacturer              = GroupName + "/instance-cpu-manufacturer"
	LabelInstanceCPUSustainedClockSpeedMhz    = GroupName + "/instance-cpu-sustained-clock-speed-mhz"
	LabelInstanceMemory                       = GroupName + "/instance-memory"
	LabelInstanceEBSBandwidth                 = GroupName + "/instance-ebs-bandwidth"
	LabelInstanceNetworkBandwidth             = GroupName + "/instance-network-bandwidth"
	LabelInstanceGPUName                      = GroupName + "/instance-gpu-name"
	LabelInstanceGPUManufacturer              = GroupName + "/instance-gpu-manufacturer"
	LabelInstanceGPUCount                     = GroupName + "/instance-gpu-count"
	LabelInstanceGPUMemory                    = GroupName + "/instance-gpu-memory"
	LabelInstanceAcceleratorName              = GroupName + "/instance-accelerator-name"
	LabelInstanceAcceleratorManufacturer      = GroupName + "/instance-accelerator-manufacturer"
	LabelInstanceAcceleratorCount             = GroupName + "/instance-accelerator-count"
	LabelInstanceTenancy                      = GroupName + "/instance-tenancy"
	LabelCapacityReservationID                = GroupName + "/capacity-reservation-id"
	LabelCapacityReservationType              = GroupName + "/capacity-reservation-type"
	LabelCapacityReservationInterruptible     = GroupName + "/capacity-reservation-interruptible"
	LabelPlacementGroupID                     = GroupName + "/placement-group-id"
	LabelPlacementGroupPartition              = GroupName + "/placement-group-partition"
	// LabelNodeClass names the EC2NodeClass of a node (also an EC2 tag).
	LabelNodeClass = GroupName + "/ec2nodeclass"
	// LabelTopologyZoneID is the availability zone id (use1-az1) of a node.
	LabelTopologyZoneID = "topology.k8s.aws/zone-id"
)

// WellKnownLabels are the karpenter.k8s.aws labels requirements and template
// labels may use; the rest of the domain is reserved.
func WellKnownLabels() []string {
	return []string{
		LabelInstanceTenancy, LabelCapacityReservationType, LabelCapacityReservationID,
		LabelCapacityReservationInterruptible, LabelNodeClass,
		LabelInstanceEncryptionInTransitSupported, LabelInstanceCategory, LabelInstanceHypervisor,
		LabelInstanceFamily, LabelInstanceGeneration, LabelInstanceLocalNVME, LabelInstanceSize,
		LabelInstanceCPU, LabelInstanceCPUManufacturer, LabelInstanceCPUSustainedClockSpeedMhz,
		LabelInstanceMemory, LabelInstanceEBSBandwidth, LabelInstanceNetworkBandwidth,
		LabelInstanceGPUName, LabelInstanceGPUManufacturer, LabelInstanceGPUCount, LabelInstanceGPUMemory,
		LabelInstanceAcceleratorName, LabelInstanceAcceleratorManufacturer, LabelInstanceAcceleratorCount,
		LabelInstanceCapabilityFlex, LabelPlacementGroupID, LabelPlacementGroupPartition,
	}
}

// EC2 tags fleet-scheduler puts on what it creates, and annotations it uses.
const (
	// TagNodePool names the NodePool of an instance (karpenter.sh/nodepool).
	TagNodePool = "karpenter.sh/nodepool"
	// TagNodeClaim names the NodeClaim of an instance (karpenter.sh/nodeclaim).
	TagNodeClaim = "karpenter.sh/nodeclaim"
	// TagNodeClass names the EC2NodeClass of an instance.
	TagNodeClass = LabelNodeClass
	// TagEKSClusterName is reserved by EKS; users may not set it.
	TagEKSClusterName = "eks:eks-cluster-name"
	// TagName is the EC2 console name of an instance.
	TagName = "Name"
	// TagClusterPrefix + cluster name = "owned" marks an instance as the
	// cluster's.
	TagClusterPrefix = "kubernetes.io/cluster/"

	// AnnotationEC2NodeClassHash is the hash of the class spec a NodeClaim
	// was launched from; a different hash means drift.
	AnnotationEC2NodeClassHash = GroupName + "/ec2nodeclass-hash"
	// AnnotationEC2NodeClassHashVersion is the version of that hash.
	AnnotationEC2NodeClassHashVersion = GroupName + "/ec2nodeclass-hash-version"
	// AnnotationInstanceTagged is "true" once an instance carries its
	// NodeClaim's tags.
	AnnotationInstanceTagged = GroupName + "/tagged"
	// AnnotationInstanceProfile names the instance profile made for a class.
	AnnotationInstanceProfile = GroupName + "/instance-profile-name"
)

// TerminationFinalizer holds an EC2NodeClass until nothing launched from it
// is left.
const TerminationFinalizer = GroupName + "/termination"

// AMI families.
const (
	AMIFamilyAL2          = "AL2"
	AMIFamilyAL2023       = "AL2023"
	AMIFamilyBottlerocket = "Bottlerocket"
	AMIFamilyWindows2019  = "Windows2019"
	AMIFamilyWindows2022  = "Windows2022"
	AMIFamilyWindows2025  = "Windows2025"
	AMIFamilyCustom       = "Custom"
)

// Extended resources instance types may offer.
const (
	ResourceNVIDIAGPU     = "nvidia.com/gpu"
	ResourceAMDGPU        = "amd.com/gpu"
	ResourceAWSNeuron     = "aws.amazon.com/neuron"
	ResourceAWSNeuronCore = "aws.amazon.com/neuroncore"
	ResourceHabanaGaudi   = "habana.ai/gaudi"
	ResourceAWSPodENI     = "vpc.amazonaws.com/pod-eni"
	ResourceEFA           = "vpc.amazonaws.com/efa"
)
