package config

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// ProvisionerArgs configures the Provisioner plugin and the provisioning
// controllers that run beside it. Defaults are already applied when the
// plugin receives it.
type ProvisionerArgs struct {
	metav1.TypeMeta

	// ClusterName names the cluster in EC2 tags and resource names.
	ClusterName string
	// Region is the AWS region; empty means the SDK's default chain.
	Region string
	// ClusterEndpoint is the API server that new nodes join, as host:port or
	// https://host:port; empty means read it from kube-public/cluster-info.
	ClusterEndpoint string
	// Bootstrap says where join credentials come from.
	Bootstrap BootstrapArgs
	// BatchIdleDuration closes a batch after this long without a new pod.
	BatchIdleDuration metav1.Duration
	// BatchMaxDuration closes a batch this long after it opened, whatever comes.
	BatchMaxDuration metav1.Duration
	// RegistrationTTL is how long a launched instance has to register its Node.
	RegistrationTTL metav1.Duration
	// VMMemoryOverheadPercent is the share of an instance type's memory the
	// hypervisor and OS take before the kubelet sees it, in [0,1).
	VMMemoryOverheadPercent float64
	// DisruptionInterval is the period of the scale-down loop.
	DisruptionInterval metav1.Duration
	// InterruptionQueue names the SQS queue that EventBridge sends EC2
	// interruption events to; empty turns interruption handling off.
	InterruptionQueue string
	// AWSCallTimeouts bound each AWS API call.
	AWSCallTimeouts AWSCallTimeouts
	// UnregisteredNodesToPause is how many launched nodes of a NodePool in a
	// row may fail to register before its launches pause.
	UnregisteredNodesToPause int32
}

// AWSCallTimeouts bound each AWS API call, its retries included.
type AWSCallTimeouts struct {
	// Default bounds every call not named in PerCall.
	Default metav1.Duration
	// PerCall bounds named operations (CreateFleet, DescribeInstances...).
	PerCall map[string]metav1.Duration
}

// BootstrapArgs selects the source of kubeadm join credentials.
type BootstrapArgs struct {
	// TokenSSMParameter names the SSM parameter that holds a bootstrap token.
	// Set together with CACertHashSSMParameter; both empty means the
	// scheduler mints short-lived tokens itself.
	TokenSSMParameter string
	// CACertHashSSMParameter names the SSM parameter that holds the
	// discovery CA cert hash.
	CACertHashSSMParameter string
	// TokenTTL is the lifetime of tokens the scheduler mints.
	TokenTTL metav1.Duration
}

// UsesSSM reports whether join credentials come from SSM Parameter Store
// rather than from tokens the scheduler mints.
func (b *BootstrapArgs) UsesSSM() bool {
	return b.TokenSSMParameter != "" || b.CACertHashSSMParameter != ""
}
