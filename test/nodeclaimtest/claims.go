package nodeclaimtest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	v1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"k8s.io/kubernetes/pkg/util/taints"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/join"
	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/bootstrap"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// Pool is a NodePool on the example EC2NodeClass.
type Pool struct {
	Name          string
	Labels        map[string]string
	Requirements  []karpv1.NodeSelectorRequirementWithMinValues
	Taints        []v1.Taint
	StartupTaints []v1.Taint
	// NodeClass defaults to the example's.
	NodeClass string
	// Weight is set when above zero.
	Weight int32
	Limits v1.ResourceList
}

// Req is a NodePool requirement.
func Req(key string, op v1.NodeSelectorOperator, values ...string) karpv1.NodeSelectorRequirementWithMinValues {
	return karpv1.NodeSelectorRequirementWithMinValues{Key: key, Operator: op, Values: values}
}

// OnDemand is the requirement most test pools carry: spot would make the
// launcher prefer spot.
var OnDemand = Req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeOnDemand)

// NodePool is the NodePool p describes.
func (p Pool) NodePool() *karpv1.NodePool {
	class := p.NodeClass
	if class == "" {
		class = NodeClassName
	}
	np := &karpv1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name},
		Spec: karpv1.NodePoolSpec{
			Template: karpv1.NodeClaimTemplate{
				ObjectMeta: karpv1.ObjectMeta{Labels: p.Labels},
				Spec: karpv1.NodeClaimTemplateSpec{
					Requirements:  p.Requirements,
					Taints:        p.Taints,
					StartupTaints: p.StartupTaints,
					NodeClassRef:  &karpv1.NodeClassReference{Group: ec2v1.GroupName, Kind: "EC2NodeClass", Name: class},
					ExpireAfter:   karpv1.NewNillableDuration(720 * time.Hour),
				},
			},
			Disruption: karpv1.Disruption{ConsolidateAfter: karpv1.NewNillableDuration(30 * time.Second), ConsolidationPolicy: karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized},
			Limits:     karpv1.Limits(p.Limits),
		},
	}
	if p.Weight > 0 {
		np.Spec.Weight = ptr.To(p.Weight)
	}
	return np
}

// CreatePool creates the NodePool.
func (e *Env) CreatePool(t *testing.T, p Pool) *karpv1.NodePool {
	t.Helper()
	created, err := e.Karp.KarpenterV1().NodePools().Create(e.Ctx, p.NodePool(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating nodepool %s: %v", p.Name, err)
	}
	return created
}

// Options waits until the operator offers the pool and returns its options
// of the given instance types (all when none), cheapest first.
func (o *Operator) Options(t *testing.T, pool string, instanceTypes ...string) []*packing.PoolOption {
	t.Helper()
	var out []*packing.PoolOption
	why := "it is not listed"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out = nil
		for _, p := range o.Source.Pools() {
			if p.Name != pool {
				continue
			}
			why = fmt.Sprintf("unavailable: %q, %d options", p.Unavailable, len(p.Options))
			for _, opt := range p.Options {
				if len(instanceTypes) == 0 || slices.Contains(instanceTypes, opt.InstanceType) {
					out = append(out, opt)
				}
			}
		}
		if len(out) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodepool %s offers none of %v: %s", pool, instanceTypes, why)
		}
	}
	return out
}

// CreateClaim creates a NodeClaim the way the Provisioner plugin does when
// a batch closes: nodepool.Creator with a planned claim named
// <pool>-<random>, its options narrowed to the instance types given.
func (o *Operator) CreateClaim(t *testing.T, e *Env, pool string, instanceTypes ...string) *karpv1.NodeClaim {
	t.Helper()
	name := pool + "-" + utilrand.String(5)
	spec := packing.ClaimSpec{
		Name: name, NodePool: pool, Options: o.Options(t, pool, instanceTypes...),
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("256Mi")},
	}
	if err := o.Creator.Create(e.Ctx, spec); err != nil {
		t.Fatalf("creating nodeclaim %s: %v", name, err)
	}
	return e.Claim(t, name)
}

// Claim gets a NodeClaim.
func (e *Env) Claim(t *testing.T, name string) *karpv1.NodeClaim {
	t.Helper()
	nc, err := e.Karp.KarpenterV1().NodeClaims().Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting nodeclaim %s: %v", name, err)
	}
	return nc
}

// WaitClaim waits until the claim satisfies cond and returns it.
func (e *Env) WaitClaim(t *testing.T, name, what string, cond func(*karpv1.NodeClaim) bool) *karpv1.NodeClaim {
	t.Helper()
	var nc *karpv1.NodeClaim
	Eventually(t, 60*time.Second, "nodeclaim "+name+" "+what, func() bool {
		got, err := e.Karp.KarpenterV1().NodeClaims().Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		nc = got
		return cond(got)
	})
	return nc
}

// WaitLaunched waits for Launched=True.
func (e *Env) WaitLaunched(t *testing.T, name string) *karpv1.NodeClaim {
	t.Helper()
	return e.WaitClaim(t, name, "launched", func(nc *karpv1.NodeClaim) bool {
		return karpv1.IsConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched)
	})
}

// WaitClaimGone waits until the claim no longer exists.
func (e *Env) WaitClaimGone(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, "nodeclaim "+name+" to be gone", func() bool {
		_, err := e.Karp.KarpenterV1().NodeClaims().Get(e.Ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// Instance is an EC2 instance as moto reports it.
type Instance struct {
	ID, Type, Zone, State, ImageID string
	Tags                           map[string]string
}

// ClaimInstances lists every instance tagged with the claim, in any state.
func (e *Env) ClaimInstances(t *testing.T, claim string) []Instance {
	t.Helper()
	out, err := e.EC2.DescribeInstances(e.Ctx, &awsec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + karpv1.NodeClaimTagKey), Values: []string{claim}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []Instance
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			inst := Instance{ID: aws.ToString(i.InstanceId), Type: string(i.InstanceType), ImageID: aws.ToString(i.ImageId), Tags: map[string]string{}}
			if i.Placement != nil {
				inst.Zone = aws.ToString(i.Placement.AvailabilityZone)
			}
			if i.State != nil {
				inst.State = string(i.State.Name)
			}
			for _, tag := range i.Tags {
				inst.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			got = append(got, inst)
		}
	}
	return got
}

// LiveInstances are the claim's instances that are pending or running.
func (e *Env) LiveInstances(t *testing.T, claim string) []Instance {
	t.Helper()
	var out []Instance
	for _, i := range e.ClaimInstances(t, claim) {
		if i.State == "pending" || i.State == "running" {
			out = append(out, i)
		}
	}
	return out
}

// Gone reports whether an instance state means the machine is going or gone.
func Gone(state string) bool { return state == "terminated" || state == "shutting-down" }

// CheckMachineGone checks that the claim's machine is released: every
// instance tagged with the claim is going or gone and its launch template
// is deleted. when ends the errors ("after Delete"). It returns the
// instances tagged with the claim, in any state.
func (e *Env) CheckMachineGone(t *testing.T, claim, when string) []Instance {
	t.Helper()
	all := e.ClaimInstances(t, claim)
	for _, i := range all {
		if !Gone(i.State) {
			t.Errorf("instance %s is %s %s", i.ID, i.State, when)
		}
	}
	if e.LaunchTemplateExists(t, claim) {
		t.Errorf("launch template left %s", when)
	}
	return all
}

// LaunchTemplateExists reports whether the claim's launch template exists.
func (e *Env) LaunchTemplateExists(t *testing.T, claim string) bool {
	t.Helper()
	out, err := e.EC2.DescribeLaunchTemplates(e.Ctx, &awsec2.DescribeLaunchTemplatesInput{
		Filters: []ec2types.Filter{{Name: aws.String("launch-template-name"), Values: []string{ec2.LaunchTemplateName(ClusterName, claim)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.LaunchTemplates) > 0
}

// LaunchTemplate is the claim's launch template data.
func (e *Env) LaunchTemplate(t *testing.T, claim string) *ec2types.ResponseLaunchTemplateData {
	t.Helper()
	out, err := e.EC2.DescribeLaunchTemplateVersions(e.Ctx, &awsec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(ec2.LaunchTemplateName(ClusterName, claim)), Versions: []string{"$Latest"},
	})
	if err != nil || len(out.LaunchTemplateVersions) == 0 {
		t.Fatalf("no launch template for claim %s: %v", claim, err)
	}
	return out.LaunchTemplateVersions[0].LaunchTemplateData
}

// UserData is the claim's launch template user data, decoded.
func (e *Env) UserData(t *testing.T, claim string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(e.LaunchTemplate(t, claim).UserData))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// Join is the join the claim's instance performs, read from its user data.
func (e *Env) Join(t *testing.T, claim string) join.JoinScript {
	t.Helper()
	j, err := join.ParseJoin(e.UserData(t, claim))
	if err != nil {
		t.Fatalf("parsing the user data of %s: %v", claim, err)
	}
	return j
}

// TokenSecrets lists the bootstrap token Secrets minted for the node.
func (e *Env) TokenSecrets(t *testing.T, node string) []string {
	t.Helper()
	list, err := e.Kube.CoreV1().Secrets(metav1.NamespaceSystem).List(e.Ctx, metav1.ListOptions{
		LabelSelector: bootstrap.LabelManagedBy + "=" + bootstrap.ManagedByValue,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		if s.Annotations[bootstrap.AnnotationTokenNode] == node {
			out = append(out, s.Name)
		}
	}
	return out
}

// RegisterNode creates the Node the kubelet on the claim's instance would
// register: named by --node-name, with the kubelet's own labels, the
// --node-labels and the --register-with-taints from the user data, no
// provider ID (kubeadm nodes run without a cloud provider). mutate, if not
// nil, changes it before it is created. The Node is not Ready yet.
func (e *Env) RegisterNode(t *testing.T, claim string, mutate func(*v1.Node)) *v1.Node {
	t.Helper()
	j := e.Join(t, claim)
	if j.NodeName != claim {
		t.Fatalf("user data joins as %q, want the claim's name %q", j.NodeName, claim)
	}
	labels := map[string]string{
		v1.LabelHostname: j.NodeName, v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64",
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
	}
	for k, v := range j.Labels {
		labels[k] = v
	}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: j.NodeName, Labels: labels},
		Spec:       v1.NodeSpec{Taints: j.Taints},
	}
	if mutate != nil {
		mutate(node)
	}
	created, err := e.Kube.CoreV1().Nodes().Create(e.Ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("registering node %s: %v", node.Name, err)
	}
	return created
}

// SetNodeReady writes the kubelet's status: capacity, allocatable and the
// Ready condition; when ready, it also takes off the not-ready taint the API
// server put on the new Node, as node lifecycle would.
func (e *Env) SetNodeReady(t *testing.T, name string, ready bool) {
	t.Helper()
	status := v1.ConditionFalse
	if ready {
		status = v1.ConditionTrue
	}
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourceMemory: resource.MustParse("3800Mi"), v1.ResourcePods: resource.MustParse("110")}
	e.UpdateNode(t, name, true, func(node *v1.Node) {
		node.Status.Capacity, node.Status.Allocatable = rl, rl
		node.Status.Conditions = []v1.NodeCondition{{
			Type: v1.NodeReady, Status: status, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}}
	})
	if ready {
		e.UpdateNode(t, name, false, func(node *v1.Node) {
			node.Spec.Taints, _ = taints.DeleteTaintsByKey(node.Spec.Taints, v1.TaintNodeNotReady)
		})
	}
}

// UpdateNode changes the Node (its status if status is set), retrying on
// conflicts with the controllers' writes.
func (e *Env) UpdateNode(t *testing.T, name string, status bool, change func(*v1.Node)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(node)
		if status {
			_, err = e.Kube.CoreV1().Nodes().UpdateStatus(e.Ctx, node, metav1.UpdateOptions{})
		} else {
			_, err = e.Kube.CoreV1().Nodes().Update(e.Ctx, node, metav1.UpdateOptions{})
		}
		return err
	})
	if err != nil {
		t.Fatalf("updating node %s: %v", name, err)
	}
}

// Node gets a Node.
func (e *Env) Node(t *testing.T, name string) *v1.Node {
	t.Helper()
	node, err := e.Kube.CoreV1().Nodes().Get(e.Ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", name, err)
	}
	return node
}

// Events are the events about the object with the reason.
func (e *Env) Events(t *testing.T, name, reason string) []eventsv1.Event {
	t.Helper()
	return env.Events(e.Ctx, t, e.Kube, "", name, reason)
}

// WaitEvent waits for an event about the object with the reason and returns its note.
func (e *Env) WaitEvent(t *testing.T, name, reason string) string {
	t.Helper()
	return env.WaitEvent(t, e.Kube, "", name, reason, "", 30*time.Second)
}

// HasTaint reports whether the taints hold one with t's key and effect.
func HasTaint(taints []v1.Taint, key string, effect v1.TaintEffect) bool {
	return slices.ContainsFunc(taints, func(x v1.Taint) bool { return x.Key == key && x.Effect == effect })
}

// LaunchTagged launches an instance for the claim straight through the
// EC2 layer, as a launch that died before writing the claim's status
// leaves it: tagged with the claim, its launch template made, nothing on
// the claim.
func (e *Env) LaunchTagged(t *testing.T, o *Operator, nc *karpv1.NodeClaim) Instance {
	t.Helper()
	zone := e.Moto.Region + "a"
	inst, err := o.EC2.Launch(e.Ctx, ec2.LaunchRequest{
		ClusterName: ClusterName, NodePoolName: nc.Labels[karpv1.NodePoolLabelKey], NodeClaimName: nc.Name, NodeClaimUID: string(nc.UID),
		CapacityType: ec2.CapacityTypeOnDemand,
		InstanceTypes: []ec2.CandidateType{{Name: "t3.medium", Architecture: ec2.ArchAMD64,
			Offerings: []ec2.CandidateOffering{{Zone: zone, CapacityType: ec2.CapacityTypeOnDemand, Price: 0.0416}}}},
		Subnets:          []ec2.Subnet{{ID: e.World.SubnetIDs[0], Zone: zone}},
		SecurityGroupIDs: []string{e.World.SecurityGroupID},
		AMIs:             map[string]string{ec2.ArchAMD64: e.World.ImageID},
		UserData:         "#!/bin/bash\ntrue\n",
	})
	if err != nil {
		t.Fatalf("launching an instance tagged with %s: %v", nc.Name, err)
	}
	return Instance{ID: inst.ID, Type: inst.Type, Zone: inst.Zone, State: inst.State, ImageID: inst.ImageID, Tags: inst.Tags}
}
