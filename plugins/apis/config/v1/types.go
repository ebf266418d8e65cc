package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ProvisionerArgs configures the Provisioner plugin and the provisioning
// controllers. Pointer fields are defaulted when left out.
type ProvisionerArgs struct {
	metav1.TypeMeta `json:",inline"`

	// ClusterName names the cluster in EC2 tags and resource names. Required;
	// a DNS-1123 label.
	ClusterName string `json:"clusterName,omitempty"`
	// Region is the AWS region; empty means the AWS SDK's default chain.
	Region string `json:"region,omitempty"`
	// ClusterEndpoint is the API server new nodes join, as host:port or
	// https://host:port; empty means read it from kube-public/cluster-info.
	ClusterEndpoint string `json:"clusterEndpoint,omitempty"`
	// Bootstrap says where kubeadm join credentials come from.
	Bootstrap BootstrapArgs `json:"bootstrap"`
	// BatchIdleDuration closes a provisioning batch after this long without a
	// new pod. Default 1s.
	BatchIdleDuration *metav1.Duration `json:"batchIdleDuration,omitempty"`
	// BatchMaxDuration closes a batch this long after it opened. Default 10s;
	// must be >= batchIdleDuration.
	BatchMaxDuration *metav1.Duration `json:"batchMaxDuration,omitempty"`
	// RegistrationTTL is how long a launched instance has to register its
	// Node before it is terminated. Default 15m.
	RegistrationTTL *metav1.Duration `json:"registrationTTL,omitempty"`
	// VMMemoryOverheadPercent is the share of an instance type's memory lost
	// to the hypervisor and OS, in [0,1). Default 0.075.
	VMMemoryOverheadPercent *float64 `json:"vmMemoryOverheadPercent,omitempty"`
	// DisruptionInterval is the period of the scale-down loop. Default 10s.
	DisruptionInterval *metav1.Duration `json:"disruptionInterval,omitempty"`
	// InterruptionQueue is the name (not the URL) of the SQS queue that the
	// EventBridge rules for spot interruptions, rebalance recommendations,
	// AWS Health scheduled changes and instance state changes send to, as
	// Karpenter's interruptionQueue setting. Empty (the default) turns
	// interruption handling off.
	InterruptionQueue string `json:"interruptionQueue,omitempty"`
	// AWSCallTimeouts bound each AWS API call, its retries included: a call
	// that does not answer in time fails the step that made it (retried
	// later) instead of holding a worker.
	AWSCallTimeouts AWSCallTimeouts `json:"awsCallTimeouts"`
	// UnregisteredNodesToPause is how many nodes of a NodePool in a row may
	// be launched and never register (within registrationTTL) before the
	// NodePool's launches pause, with NodeRegistrationHealthy=False saying
	// why, until the NodePool or its EC2NodeClass changes. Default 3.
	UnregisteredNodesToPause *int32 `json:"unregisteredNodesToPause,omitempty"`
}

// AWSCallTimeouts bound each AWS API call, its retries included.
type AWSCallTimeouts struct {
	// Default bounds every call not named in perCall. Default 15s; the
	// slower operations have longer built-in deadlines (CreateFleet 45s,
	// DescribeInstanceTypes, DescribeInstanceTypeOfferings and
	// DescribeSpotPriceHistory 30s, ReceiveMessage 40s) unless default is
	// longer still.
	Default *metav1.Duration `json:"default,omitempty"`
	// PerCall bounds named operations, by their AWS API name
	// (CreateFleet: 1m).
	PerCall map[string]metav1.Duration `json:"perCall,omitempty"`
}

// BootstrapArgs selects the source of kubeadm join credentials.
type BootstrapArgs struct {
	// TokenSSMParameter names the SSM parameter holding a bootstrap token,
	// e.g. /sesacthon/dev/karpenter/bootstrap-token. Set both SSM parameters
	// or neither; neither means the scheduler mints short-lived tokens.
	TokenSSMParameter string `json:"tokenSSMParameter,omitempty"`
	// CACertHashSSMParameter names the SSM parameter holding the discovery CA
	// cert hash, e.g. /sesacthon/dev/karpenter/ca-cert-hash.
	CACertHashSSMParameter string `json:"caCertHashSSMParameter,omitempty"`
	// TokenTTL is the lifetime of minted tokens, 1m..1h. Default 30m.
	TokenTTL *metav1.Duration `json:"tokenTTL,omitempty"`
}
