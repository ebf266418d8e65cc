package ec2

import "time"

// Capacity types, as in karpenter.sh/capacity-type.
const (
	CapacityTypeOnDemand = "on-demand"
	CapacityTypeSpot     = "spot"
)

// Kubernetes architectures (kubernetes.io/arch).
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
)

// SubnetSelectorTerm selects subnets by id, or by tags (all must match; a
// value of "*" matches any value of the key).
type SubnetSelectorTerm struct {
	ID   string
	Tags map[string]string
}

// SecurityGroupSelectorTerm selects security groups by id, name or tags.
type SecurityGroupSelectorTerm struct {
	ID   string
	Name string
	Tags map[string]string
}

// AMISelectorTerm selects images: by alias ("al2023@latest"), by id, by
// name (with an optional owner; self and amazon by default), by tags, or by
// an SSM parameter whose value is an image id.
type AMISelectorTerm struct {
	Alias        string
	ID           string
	Name         string
	Owner        string
	Tags         map[string]string
	SSMParameter string
}

// Subnet is a resolved subnet.
type Subnet struct {
	ID           string
	Zone         string
	ZoneID       string
	AvailableIPs int32
}

// SecurityGroup is a resolved security group.
type SecurityGroup struct {
	ID   string
	Name string
}

// AMI is a resolved image.
type AMI struct {
	ID           string
	Name         string
	Architecture string // amd64 or arm64
	CreationDate time.Time
}

// MetadataOptions are the instance metadata service settings of the launch
// template. Empty fields take the defaults: endpoint enabled, IPv6 endpoint
// disabled, hop limit 1, tokens required (IMDSv2 only).
type MetadataOptions struct {
	HTTPEndpoint            string // "enabled" | "disabled"
	HTTPProtocolIPv6        string // "enabled" | "disabled"
	HTTPPutResponseHopLimit int32
	HTTPTokens              string // "required" | "optional"
}

// BlockDeviceMapping is one EBS volume of the launch template.
type BlockDeviceMapping struct {
	DeviceName          string
	VolumeSizeGiB       int32
	VolumeType          string // gp3, gp2, io1, io2, ...
	IOPS                *int32
	Throughput          *int32 // MiB/s, gp3 only
	Encrypted           *bool
	KMSKeyID            string
	DeleteOnTermination *bool
	SnapshotID          string
	// VolumeInitializationRate is the MiB/s at which a volume made from a
	// snapshot is initialized (optional).
	VolumeInitializationRate *int32
}

// CandidateType is one instance type a claim may launch as, with the
// offerings (zone x capacity type) still open to it.
type CandidateType struct {
	Name         string
	Architecture string // amd64 or arm64: picks the AMI
	Offerings    []CandidateOffering
}

// CandidateOffering is one zone and capacity type of a candidate type.
type CandidateOffering struct {
	Zone         string
	CapacityType string
	Price        float64
}

// LaunchRequest is everything Launch needs for one NodeClaim.
type LaunchRequest struct {
	ClusterName   string
	NodePoolName  string
	NodeClassName string // optional; tagged as karpenter.k8s.aws/ec2nodeclass
	NodeClaimName string
	NodeClaimUID  string
	// LaunchAttempt numbers the claim's launches that EC2 answered without
	// an instance; CreateFleet's ClientToken is derived from it (see
	// clientToken).
	LaunchAttempt int
	// CapacityType is on-demand or spot: the only offerings used.
	CapacityType string
	// InstanceTypes are the candidates, cheapest first.
	InstanceTypes []CandidateType
	// Subnets are the resolved subnets; per zone the one with the most free
	// addresses is used.
	Subnets          []Subnet
	SecurityGroupIDs []string
	// AMIs maps an architecture (amd64, arm64) to the image to launch.
	AMIs map[string]string
	// UserData is the plain-text user data; Launch base64-encodes it. It is
	// never logged.
	UserData            string
	MetadataOptions     *MetadataOptions
	BlockDeviceMappings []BlockDeviceMapping
	// InstanceProfile is the IAM instance profile name (optional).
	InstanceProfile    string
	DetailedMonitoring bool
	// Tags are extra tags for the instance, its volumes and the launch
	// template. They cannot override the tags Launch sets itself.
	Tags map[string]string
	// Network configures the primary network interface; nil leaves it to
	// the subnet's defaults.
	Network *NetworkInterface
	// Context is CreateFleet's reserved Context parameter (optional).
	Context string
}

// NetworkInterface is what the launch template sets on the primary
// network interface. Setting any of it makes the template describe the
// interface, with the security groups on it.
type NetworkInterface struct {
	AssociatePublicIPAddress *bool
	IPv4PrefixCount          *int32
	// Connection tracking idle timeouts, in seconds.
	TCPEstablishedTimeout, UDPStreamTimeout, UDPTimeout *int32
}

// Instance is an EC2 instance this package launched or found.
type Instance struct {
	ID       string
	Type     string
	Zone     string
	SubnetID string
	// SecurityGroupIDs are those of the primary network interface.
	SecurityGroupIDs []string
	CapacityType     string
	ImageID          string
	Architecture     string
	State            string // pending, running, shutting-down, terminated, stopping, stopped
	LaunchTime       time.Time
	PrivateDNSName   string
	PrivateIP        string
	Tags             map[string]string
	NodeClaimName    string // from the karpenter.sh/nodeclaim tag
	NodePoolName     string // from the karpenter.sh/nodepool tag
	// SkippedOfferings is set by Launch only: offerings EC2 Fleet reported
	// failing while it fulfilled the request with another one. Callers
	// should mark them unavailable like those of an InsufficientCapacityError.
	SkippedOfferings []OfferingFailure
}

// ProviderID is the node's spec.providerID for this instance.
func (i *Instance) ProviderID() string { return FormatProviderID(i.Zone, i.ID) }
