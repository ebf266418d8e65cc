package provisioner

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// One stack serves every scenario: each uses its own NodePools, told apart
// by a template label the scenario's pods select.
func TestProvisioner(t *testing.T) {
	s := startStack(t)
	s.run(t, "pack pods onto one claim, launch it, nominate to it in flight", s.testPackAndLaunch)
	s.run(t, "taints, weights, limits and a pod no pool admits", s.testPoolConstraints)
}

func (s *stack) testPackAndLaunch(t *testing.T) {
	s.createPool(poolSpec{name: "general", labels: map[string]string{"managed-by": "karpenter", "tier": "general"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large", "m5.xlarge", "m5.2xlarge"),
	}})
	sel := map[string]string{"tier": "general"}
	for _, name := range []string{"pack-1", "pack-2", "pack-3"} {
		s.createPod(podSpec{name: name, cpu: "1", memory: "1Gi", nodeSelector: sel})
	}
	claim := s.nominated("pack-1")
	if !strings.HasPrefix(claim, "general-") {
		t.Fatalf("pack-1 nominated to %q, want a claim of nodepool general", claim)
	}
	for _, name := range []string{"pack-2", "pack-3"} {
		if got := s.nominated(name); got != claim {
			t.Fatalf("%s nominated to %q, want %q: 3 x 1 cpu fit one m5.xlarge", name, got, claim)
		}
	}

	nc := s.nodeClaim(claim, func(nc *karpv1.NodeClaim) bool {
		return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionTypeLaunched)
	})
	types := requirementValues(nc, v1.LabelInstanceTypeStable)
	if types.Has("m5.large") || !types.Has("m5.xlarge") {
		t.Errorf("claim instance types %v: m5.large holds only 1.93 cpu, the 3 pods need 3", sets.List(types))
	}
	if nc.Labels[karpv1.NodePoolLabelKey] != "general" || nc.Labels["managed-by"] != "karpenter" {
		t.Errorf("claim labels %v lack the pool's", nc.Labels)
	}
	if got := nc.Labels[v1.LabelInstanceTypeStable]; !types.Has(got) {
		t.Errorf("launched as %q, not one of %v", got, sets.List(types))
	}
	if !strings.HasPrefix(nc.Status.ProviderID, "aws:///us-east-1") || nc.Status.Allocatable.Cpu().MilliValue() < 3000 {
		t.Errorf("status providerID %q allocatable %v", nc.Status.ProviderID, nc.Status.Allocatable)
	}
	s.checkInstance(t, claim)

	// The claim is in flight (its node has not joined): a pod that fits
	// the room left is nominated to it rather than to a new claim.
	s.createPod(podSpec{name: "pack-4", cpu: "500m", memory: "512Mi", nodeSelector: sel})
	if got := s.nominated("pack-4"); got != claim {
		t.Fatalf("pack-4 nominated to %q, want the in-flight claim %q", got, claim)
	}
}

// checkInstance proves the launch in EC2: one running instance tagged
// with the claim, launched from a template whose user data joins with a
// bootstrap token and CA pin, with IMDSv2 required.
func (s *stack) checkInstance(t *testing.T, claim string) {
	client := awsec2.NewFromConfig(s.moto.AWSConfig())
	out, err := client.DescribeInstances(s.ctx, &awsec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:karpenter.sh/nodeclaim"), Values: []string{claim}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	if len(ids) != 1 {
		t.Fatalf("instances tagged with claim %s: %v, want exactly one", claim, ids)
	}
	lts, err := client.DescribeLaunchTemplateVersions(s.ctx, &awsec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(ec2.LaunchTemplateName(clusterName, claim)), Versions: []string{"$Latest"},
	})
	if err != nil || len(lts.LaunchTemplateVersions) == 0 {
		t.Fatalf("no launch template for claim %s: %v", claim, err)
	}
	data := lts.LaunchTemplateVersions[0].LaunchTemplateData
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(data.UserData))
	if err != nil {
		t.Fatal(err)
	}
	userData := string(raw)
	// The token and the node's name reach kubeadm in a JoinConfiguration
	// file, not on its command line.
	for _, want := range []string{"kubeadm join --config ", "kind: JoinConfiguration", "token: ", "- sha256:", "name: " + claim, "karpenter.sh/unregistered", "managed-by=karpenter", "swapoff -a"} {
		if !strings.Contains(userData, want) {
			t.Errorf("user data lacks %q", want)
		}
	}
	if strings.Contains(userData, "--token") {
		t.Errorf("user data passes the token on a command line")
	}
	if strings.Index(userData, "swapoff -a") > strings.LastIndex(userData, "kubeadm join") {
		t.Errorf("the EC2NodeClass userData must run before the join")
	}
	if data.MetadataOptions == nil || data.MetadataOptions.HttpTokens != ec2types.LaunchTemplateHttpTokensStateRequired {
		t.Errorf("launch template metadata options %+v: IMDSv2 must be required", data.MetadataOptions)
	}
}

func (s *stack) testPoolConstraints(t *testing.T) {
	m5large := req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large")
	s.createPool(poolSpec{name: "tainted", labels: map[string]string{"tier": "batch"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{m5large},
		taints: []v1.Taint{{Key: "dedicated", Value: "batch", Effect: v1.TaintEffectNoSchedule}}})
	s.createPool(poolSpec{name: "heavy", weight: 90, labels: map[string]string{"tier": "web"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{m5large}})
	s.createPool(poolSpec{name: "light", weight: 10, labels: map[string]string{"tier": "web"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{m5large}})
	s.createPool(poolSpec{name: "capped", labels: map[string]string{"tier": "capped"},
		requirements: []karpv1.NodeSelectorRequirementWithMinValues{req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "t3.large")},
		limits:       v1.ResourceList{v1.ResourceCPU: resource.MustParse("2")}})

	// Taints: without a toleration the tainted pool is ruled out, and says why.
	s.createPod(podSpec{name: "untolerated", cpu: "500m", memory: "256Mi", nodeSelector: map[string]string{"tier": "batch"}})
	msg := s.podEvent("untolerated", "FailedProvisioning")
	if !strings.Contains(msg, `nodepool "tainted": the pod does not tolerate taint dedicated=batch:NoSchedule`) {
		t.Errorf("event %q does not name the untolerated taint", msg)
	}
	s.createPod(podSpec{name: "tolerated", cpu: "500m", memory: "256Mi", nodeSelector: map[string]string{"tier": "batch"},
		tolerations: []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "batch", Effect: v1.TaintEffectNoSchedule}}})
	if got := s.nominated("tolerated"); !strings.HasPrefix(got, "tainted-") {
		t.Errorf("tolerated pod nominated to %q, want a claim of nodepool tainted", got)
	}

	// Weights: both pools admit the pod; the heavier one provisions it.
	s.createPod(podSpec{name: "web", cpu: "500m", memory: "256Mi", nodeSelector: map[string]string{"tier": "web"}})
	if got := s.nominated("web"); !strings.HasPrefix(got, "heavy-") {
		t.Errorf("web pod nominated to %q, want a claim of the heavier nodepool", got)
	}

	// Limits: one t3.large (2 cpu) uses the whole limit; a second pod that
	// does not fit beside the first cannot open another claim.
	s.secondPodOverLimit("capped", "the limits")
	s.never("capped-2 nominated", 2*time.Second, func() bool {
		pod, err := s.kube.CoreV1().Pods("default").Get(s.ctx, "capped-2", metav1.GetOptions{})
		return err == nil && pod.Status.NominatedNodeName != ""
	})

	// limits.nodes: one node, whatever its size; a second pod that does
	// not fit beside the first cannot open another claim.
	s.createPool(poolSpec{name: "onenode", labels: map[string]string{"tier": "onenode"},
		requirements: []karpv1.NodeSelectorRequirementWithMinValues{m5large},
		limits:       v1.ResourceList{"nodes": resource.MustParse("1")}})
	s.secondPodOverLimit("onenode", "the node limit")

	// minValues: a claim keeps at least two instance families; a pod that
	// allows only one cannot be provisioned, and the event says why.
	family := "karpenter.k8s.aws/instance-family"
	s.createPool(poolSpec{name: "diverse", labels: map[string]string{"tier": "diverse"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		{Key: family, Operator: v1.NodeSelectorOpIn, Values: []string{"m5", "c5", "t3"}, MinValues: ptr.To(2)},
		req("karpenter.k8s.aws/instance-size", v1.NodeSelectorOpIn, "large"),
	}})
	s.createPod(podSpec{name: "diverse-1", cpu: "500m", memory: "256Mi", nodeSelector: map[string]string{"tier": "diverse"}})
	name := s.nominated("diverse-1")
	if !strings.HasPrefix(name, "diverse-") {
		t.Fatalf("diverse-1 nominated to %q", name)
	}
	nc := s.nodeClaim(name, func(*karpv1.NodeClaim) bool { return true })
	families := sets.New[string]()
	for _, it := range sets.List(requirementValues(nc, v1.LabelInstanceTypeStable)) {
		families.Insert(strings.SplitN(it, ".", 2)[0])
	}
	if families.Len() < 2 {
		t.Errorf("claim %s may launch as families %v, want at least 2 (minValues)", name, sets.List(families))
	}
	for _, r := range nc.Spec.Requirements {
		if r.Key == family && (r.MinValues == nil || *r.MinValues != 2) {
			t.Errorf("claim's %s requirement lost its minValues: %+v", family, r)
		}
	}
	s.createPod(podSpec{name: "one-family", cpu: "500m", memory: "256Mi", nodeSelector: map[string]string{"tier": "diverse", family: "m5"}})
	if msg := s.podEvent("one-family", "FailedProvisioning"); !strings.Contains(msg, `nodepool "diverse": the offerings left for the pod cannot meet minValues: `+family+` has 1 value(s) left, minValues is 2`) {
		t.Errorf("event %q does not blame minValues", msg)
	}

	// No pool admits the pod: the event says, per pool, what ruled it out.
	s.createPod(podSpec{name: "nowhere", cpu: "500m", memory: "256Mi", nodeSelector: map[string]string{v1.LabelArchStable: "s390x"}})
	msg = s.podEvent("nowhere", "FailedProvisioning")
	for _, pool := range []string{"general", "tainted", "heavy", "light", "capped", "onenode", "diverse"} {
		if !strings.Contains(msg, `nodepool "`+pool+`"`) {
			t.Errorf("event %q does not say why nodepool %s was ruled out", msg, pool)
		}
	}
	if !strings.Contains(msg, "node selector") {
		t.Errorf("event %q does not name the node selector as the cause", msg)
	}
	// A pod waiting for the pools to change is forgotten once deleted.
	nowhere, err := s.kube.CoreV1().Pods("default").Get(s.ctx, "nowhere", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The requeue loop may be retrying it at this moment (other scenarios'
	// pools change): it is back among the waiting once its retry fails.
	s.eventually("the pod no pool admits waiting for the pools to change", func() bool { return s.waiting(nowhere.UID) })
	if err := s.kube.CoreV1().Pods("default").Delete(s.ctx, "nowhere", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	s.eventually("the deleted pod no longer waiting", func() bool { return !s.waiting(nowhere.UID) })
}

// secondPodOverLimit: a first 1500m pod of the pool's tier (the pool's
// name) is nominated to a claim of the pool; a second, which does not fit
// beside it, gets no claim: its event blames the pool's limits (what says
// which, in the failure).
func (s *stack) secondPodOverLimit(pool, what string) {
	s.t.Helper()
	first, second := pool+"-1", pool+"-2"
	s.createPod(podSpec{name: first, cpu: "1500m", memory: "256Mi", nodeSelector: map[string]string{"tier": pool}})
	if got := s.nominated(first); !strings.HasPrefix(got, pool+"-") {
		s.t.Fatalf("%s nominated to %q", first, got)
	}
	s.createPod(podSpec{name: second, cpu: "1500m", memory: "256Mi", nodeSelector: map[string]string{"tier": pool}})
	if msg := s.podEvent(second, "FailedProvisioning"); !strings.Contains(msg, `nodepool "`+pool+`": its limits leave no room for another node`) {
		s.t.Errorf("event %q does not blame %s", msg, what)
	}
}

// waiting reports whether the plugin keeps the pod to retry when the pools
// change.
func (s *stack) waiting(uid types.UID) bool {
	st := s.state.Load()
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.waiting[uid]
	return ok
}

func requirementValues(nc *karpv1.NodeClaim, key string) sets.Set[string] {
	out := sets.New[string]()
	for _, r := range nc.Spec.Requirements {
		if r.Key == key && r.Operator == v1.NodeSelectorOpIn {
			out.Insert(r.Values...)
		}
	}
	return out
}
