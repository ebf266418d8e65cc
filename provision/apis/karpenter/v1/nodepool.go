package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodePool is a set of constraints for the nodes fleet-scheduler may launch:
// what a node may look like (template), how much may be launched (limits),
// which pool is tried first (weight), and when nodes may be taken away again
// (disruption).
//
// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:path=nodepools,scope=Cluster,categories=karpenter
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.nodes
// +kubebuilder:printcolumn:name="NodeClass",type="string",JSONPath=".spec.template.spec.nodeClassRef.name",description=""
// +kubebuilder:printcolumn:name="Nodes",type="string",JSONPath=".status.nodes",description=""
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status",description=""
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp",description=""
// +kubebuilder:printcolumn:name="Weight",type="integer",JSONPath=".spec.weight",priority=1,description=""
// +kubebuilder:printcolumn:name="CPU",type="string",JSONPath=".status.resources.cpu",priority=1,description=""
// +kubebuilder:printcolumn:name="Memory",type="string",JSONPath=".status.resources.memory",priority=1,description=""
type NodePool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec NodePoolSpec `json:"spec"`
	// +optional
	Status NodePoolStatus `json:"status,omitempty"`
}

// NodePoolList is a list of NodePools.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type NodePoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NodePool `json:"items"`
}

// NodePoolSpec is the desired state of a NodePool.
//
// +kubebuilder:validation:XValidation:rule="has(self.replicas) == has(oldSelf.replicas)",message="Cannot transition NodePool between static (replicas set) and dynamic (replicas unset) provisioning modes"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || (!has(self.limits) || size(self.limits) == 0 || (size(self.limits) == 1 && 'nodes' in self.limits))",message="only 'limits.nodes' is supported on static NodePools"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || !has(self.weight)",message="'weight' is not supported on static NodePools"
type NodePoolSpec struct {
	// Template describes the NodeClaims this pool creates. A NodeClaim is
	// usually narrower than its template: it keeps only the instance types,
	// zones and capacity types that fit the pods packed onto it.
	// +required
	Template NodeClaimTemplate `json:"template"`

	// Disruption says when nodes of this pool may be consolidated away.
	// +kubebuilder:default:={consolidateAfter: "0s"}
	// +optional
	Disruption Disruption `json:"disruption"`

	// Limits caps the total resources of all nodes of this pool (for example
	// cpu, memory, nodes). A launch that would exceed a limit is not made.
	// On a static pool (replicas set) only limits.nodes is allowed.
	// +optional
	Limits Limits `json:"limits,omitempty"`

	// Weight orders pools: a pod is offered to the pools with the highest
	// weight first. No weight counts as 0. Not allowed with replicas.
	// +kubebuilder:validation:Minimum:=1
	// +kubebuilder:validation:Maximum:=100
	// +optional
	Weight *int32 `json:"weight,omitempty"`

	// Replicas, when set, makes the pool static: it keeps exactly this many
	// nodes regardless of pending pods, and consolidation settings are
	// ignored. Alpha in Karpenter; accepted here so such manifests apply.
	// +kubebuilder:validation:Minimum:=0
	// +optional
	Replicas *int64 `json:"replicas,omitempty"`
}

// Limits are upper bounds on the summed capacity of a pool's nodes.
type Limits corev1.ResourceList

// ExceededBy returns the names of the limits that usage goes over, or nil.
func (l Limits) ExceededBy(usage corev1.ResourceList) []corev1.ResourceName {
	var over []corev1.ResourceName
	for name, limit := range l {
		if used, ok := usage[name]; ok && used.Cmp(limit) > 0 {
			over = append(over, name)
		}
	}
	return over
}

// Disruption holds the consolidation settings of a NodePool.
// +kubebuilder:validation:XValidation:message="consolidationThreshold may only be set with consolidationPolicy Balanced",rule="!has(self.consolidationThreshold) || (has(self.consolidationPolicy) && self.consolidationPolicy == 'Balanced')"
type Disruption struct {
	// ConsolidateAfter is how long a node must have been empty (or, with
	// WhenEmptyOrUnderutilized, without pod churn) before it may be
	// consolidated. "Never" switches consolidation off.
	// +kubebuilder:default:="0s"
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:Type="string"
	// +kubebuilder:validation:Schemaless
	// +optional
	ConsolidateAfter NillableDuration `json:"consolidateAfter,omitempty"`

	// ConsolidationPolicy says which nodes may be consolidated: only empty
	// ones (WhenEmpty), also those whose pods fit elsewhere
	// (WhenEmptyOrUnderutilized, the default), or those whose move saves
	// enough for the disruption it causes (Balanced).
	// +kubebuilder:default:="WhenEmptyOrUnderutilized"
	// +kubebuilder:validation:Enum:=WhenEmpty;WhenEmptyOrUnderutilized;Balanced
	// +optional
	ConsolidationPolicy ConsolidationPolicy `json:"consolidationPolicy,omitempty"`

	// ConsolidationThreshold is k for the Balanced policy (1 to 3; 2 when
	// unset): a move is made when its share of the pool's disruption is at
	// most k times its share of the pool's cost saved. Only with Balanced.
	// +kubebuilder:validation:Minimum:=1
	// +kubebuilder:validation:Maximum:=3
	// +optional
	ConsolidationThreshold *int32 `json:"consolidationThreshold,omitempty"`

	// Budgets limit how many of the pool's nodes may be disrupted at once.
	// When several are active the smallest wins. Unset means one budget of
	// 10%.
	// +kubebuilder:validation:XValidation:message="'schedule' must be set with 'duration'",rule="self.all(x, has(x.schedule) == has(x.duration))"
	// +kubebuilder:default:={{nodes: "10%"}}
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Budgets []Budget `json:"budgets,omitempty"`
}

// Budget caps the number of a pool's nodes that may be disrupting at the same
// time, optionally only during a recurring window and only for some reasons.
type Budget struct {
	// Reasons restricts the budget to these disruption reasons; empty means
	// all reasons.
	// +kubebuilder:validation:MaxItems=50
	// +listType=set
	// +optional
	Reasons []DisruptionReason `json:"reasons,omitempty"`

	// Nodes is a count ("5") or a percentage of the pool's nodes ("10%").
	// A string, not an int-or-string, so that both forms can be checked by
	// one pattern.
	// +kubebuilder:validation:Pattern:="^((100|[0-9]{1,2})%|[0-9]+)$"
	// +kubebuilder:default:="10%"
	Nodes string `json:"nodes"`

	// Schedule is a cron expression (UTC, or an @-macro such as @daily) at
	// which the budget becomes active for Duration. Unset means always
	// active. Must be set together with Duration.
	// +kubebuilder:validation:Pattern:=`^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$`
	// +optional
	Schedule *string `json:"schedule,omitempty"`

	// Duration is how long the budget stays active after each Schedule hit,
	// in hours and minutes. Must be set together with Schedule.
	// +kubebuilder:validation:Pattern=`^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$`
	// +kubebuilder:validation:Type="string"
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// ConsolidationPolicy selects the nodes consolidation may act on.
type ConsolidationPolicy string

// Consolidation policies.
const (
	ConsolidationPolicyWhenEmpty                ConsolidationPolicy = "WhenEmpty"
	ConsolidationPolicyWhenEmptyOrUnderutilized ConsolidationPolicy = "WhenEmptyOrUnderutilized"
	ConsolidationPolicyBalanced                 ConsolidationPolicy = "Balanced"
)

// DisruptionReason is why a node is being disrupted; budgets may be limited
// to some reasons.
// +kubebuilder:validation:Enum={Underutilized,Empty,Drifted}
type DisruptionReason string

// Disruption reasons.
const (
	DisruptionReasonUnderutilized DisruptionReason = "Underutilized"
	DisruptionReasonEmpty         DisruptionReason = "Empty"
	DisruptionReasonDrifted       DisruptionReason = "Drifted"
)

// NodeClaimTemplate is the part of a NodePool copied into each NodeClaim.
type NodeClaimTemplate struct {
	// +optional
	ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec NodeClaimTemplateSpec `json:"spec"`
}

// ObjectMeta is the metadata a NodePool template may carry: the labels and
// annotations given to each NodeClaim and its Node.
type ObjectMeta struct {
	// Labels are put on each NodeClaim and Node of the pool. Keys in the
	// karpenter.sh and karpenter.k8s.aws domains are reserved, except the
	// well-known ones, and so is kubernetes.io/hostname.
	// +kubebuilder:validation:MaxProperties=100
	// +kubebuilder:validation:XValidation:message="label domain \"karpenter.sh\" is restricted",rule="self.all(x, x in [\"karpenter.sh/capacity-type\", \"karpenter.sh/nodepool\"] || !x.find(\"^([^/]+)\").endsWith(\"karpenter.sh\"))"
	// +kubebuilder:validation:XValidation:message="label \"karpenter.sh/nodepool\" is restricted",rule="self.all(x, x != \"karpenter.sh/nodepool\")"
	// +kubebuilder:validation:XValidation:message="label \"kubernetes.io/hostname\" is restricted",rule="self.all(x, x != \"kubernetes.io/hostname\")"
	// +kubebuilder:validation:XValidation:message="label domain \"karpenter.k8s.aws\" is restricted",rule="self.all(x, x in [\"karpenter.k8s.aws/instance-tenancy\", \"karpenter.k8s.aws/capacity-reservation-type\", \"karpenter.k8s.aws/capacity-reservation-id\", \"karpenter.k8s.aws/capacity-reservation-interruptible\", \"karpenter.k8s.aws/ec2nodeclass\", \"karpenter.k8s.aws/instance-encryption-in-transit-supported\", \"karpenter.k8s.aws/instance-category\", \"karpenter.k8s.aws/instance-hypervisor\", \"karpenter.k8s.aws/instance-family\", \"karpenter.k8s.aws/instance-generation\", \"karpenter.k8s.aws/instance-local-nvme\", \"karpenter.k8s.aws/instance-size\", \"karpenter.k8s.aws/instance-cpu\", \"karpenter.k8s.aws/instance-cpu-manufacturer\", \"karpenter.k8s.aws/instance-cpu-sustained-clock-speed-mhz\", \"karpenter.k8s.aws/instance-memory\", \"karpenter.k8s.aws/instance-ebs-bandwidth\", \"karpenter.k8s.aws/instance-network-bandwidth\", \"karpenter.k8s.aws/instance-gpu-name\", \"karpenter.k8s.aws/instance-gpu-manufacturer\", \"karpenter.k8s.aws/instance-gpu-count\", \"karpenter.k8s.aws/instance-gpu-memory\", \"karpenter.k8s.aws/instance-accelerator-name\", \"karpenter.k8s.aws/instance-accelerator-manufacturer\", \"karpenter.k8s.aws/instance-accelerator-count\", \"karpenter.k8s.aws/instance-capability-flex\", \"karpenter.k8s.aws/placement-group-id\", \"karpenter.k8s.aws/placement-group-partition\"] || !x.find(\"^([^/]+)\").endsWith(\"karpenter.k8s.aws\"))"
	// +mapType=atomic
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Annotations are put on each NodeClaim and Node of the pool.
	// +mapType=granular
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// NodeClaimTemplateSpec is a NodeClaimSpec without resource requests, which
// come from the pods and not from the pool.
type NodeClaimTemplateSpec struct {
	// Taints are put on each node of the pool; pods must tolerate them.
	// +listType=atomic
	// +optional
	Taints []corev1.Taint `json:"taints,omitempty"`

	// StartupTaints are put on each node at launch and are expected to be
	// removed by something on the node (typically a DaemonSet) once it is
	// ready. Pods need not tolerate them to get a node launched.
	// +listType=atomic
	// +optional
	StartupTaints []corev1.Taint `json:"startupTaints,omitempty"`

	// Requirements constrain the labels of the pool's nodes: instance
	// types, zones, capacity types, architectures and any other label.
	// +kubebuilder:validation:XValidation:message="requirements with operator 'In' must have a value defined",rule="self.all(x, x.operator == 'In' ? (has(x.values) && x.values.size() != 0) : true)"
	// +kubebuilder:validation:XValidation:message="requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",rule="self.all(x, (x.operator == 'Gt' || x.operator == 'Lt' || x.operator == 'Gte' || x.operator == 'Lte') ? (has(x.values) && x.values.size() == 1 && int(x.values[0]) >= 0) : true)"
	// +kubebuilder:validation:XValidation:message="requirements with 'minValues' must have at least that many values specified in the 'values' field",rule="self.all(x, (x.operator == 'In' && has(x.minValues)) ? (has(x.values) && x.values.size() >= x.minValues) : true)"
	// +kubebuilder:validation:XValidation:message="label \"karpenter.sh/nodepool\" is restricted",rule="self.all(x, x.key != 'karpenter.sh/nodepool')"
	// +kubebuilder:validation:MaxItems:=100
	// +listType=atomic
	// +required
	Requirements []NodeSelectorRequirementWithMinValues `json:"requirements"`

	// NodeClassRef names the cloud-specific configuration (an EC2NodeClass)
	// of the pool's nodes. Its group and kind cannot change.
	// +kubebuilder:validation:XValidation:rule="self.group == oldSelf.group",message="nodeClassRef.group is immutable"
	// +kubebuilder:validation:XValidation:rule="self.kind == oldSelf.kind",message="nodeClassRef.kind is immutable"
	// +required
	NodeClassRef *NodeClassReference `json:"nodeClassRef"`

	// TerminationGracePeriod bounds how long draining a node may take once
	// its deletion began; after it, remaining pods are deleted even if a
	// PodDisruptionBudget or karpenter.sh/do-not-disrupt would block them.
	// Unset means wait forever.
	// +kubebuilder:validation:Pattern=`^([0-9]+(s|m|h))+$`
	// +kubebuilder:validation:Type="string"
	// +optional
	TerminationGracePeriod *metav1.Duration `json:"terminationGracePeriod,omitempty"`

	// ExpireAfter is the age at which a node is replaced, or "Never".
	// +kubebuilder:default:="720h"
	// +kubebuilder:validation:Pattern=`^(([0-9]+(s|m|h))+|Never)$`
	// +kubebuilder:validation:Type="string"
	// +kubebuilder:validation:Schemaless
	// +optional
	ExpireAfter NillableDuration `json:"expireAfter,omitempty"`
}

// ToNodeClaim returns a NodeClaim with the template's metadata and spec; the
// caller names it, labels it with its pool and fills the resource requests.
func (in *NodeClaimTemplate) ToNodeClaim() *NodeClaim {
	c := in.DeepCopy()
	return &NodeClaim{
		ObjectMeta: metav1.ObjectMeta{Labels: c.Labels, Annotations: c.Annotations},
		Spec: NodeClaimSpec{
			Taints:                 c.Spec.Taints,
			StartupTaints:          c.Spec.StartupTaints,
			Requirements:           c.Spec.Requirements,
			NodeClassRef:           c.Spec.NodeClassRef,
			TerminationGracePeriod: c.Spec.TerminationGracePeriod,
			ExpireAfter:            c.Spec.ExpireAfter,
		},
	}
}
