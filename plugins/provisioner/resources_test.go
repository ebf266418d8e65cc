package provisioner

import (
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
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// TestExtendedResources: GPUs and ephemeral storage are in the fit, from
// the catalogue (DescribeInstanceTypes in moto) and the EC2NodeClass's
// root volume, against the real apiserver and scheduler.
func TestExtendedResources(t *testing.T) {
	s := startStack(t)
	s.run(t, "a GPU pod gets a claim whose instance types all have the GPU", s.testGPUPod)
	s.run(t, "ephemeral-storage comes from the EC2NodeClass root volume", s.testEphemeralStorage)
}

func (s *stack) testGPUPod(t *testing.T) {
	s.createPool(poolSpec{name: "gpu", labels: map[string]string{"resources-test": "gpu"}, requirements: []karpv1.NodeSelectorRequirementWithMinValues{
		req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeOnDemand),
	}})
	gpu := v1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cuda", Namespace: metav1.NamespaceDefault},
		Spec: v1.PodSpec{
			SchedulerName: env.SchedulerName,
			NodeSelector:  map[string]string{"resources-test": "gpu"},
			Containers: []v1.Container{{Name: "cuda", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("2Gi"), "nvidia.com/gpu": resource.MustParse("1")},
				Limits:   gpu,
			}}},
		},
	}
	if _, err := s.kube.CoreV1().Pods(pod.Namespace).Create(s.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	nc := s.launched(s.nominated("cuda"))
	types := sets.List(requirementValues(nc, v1.LabelInstanceTypeStable))
	if len(types) == 0 {
		t.Fatal("the claim names no instance type")
	}
	// What EC2 (moto) says of each type the claim may launch as.
	client := awsec2.NewFromConfig(s.moto.AWSConfig())
	names := make([]ec2types.InstanceType, len(types))
	for i, n := range types {
		names[i] = ec2types.InstanceType(n)
	}
	out, err := client.DescribeInstanceTypes(s.ctx, &awsec2.DescribeInstanceTypesInput{InstanceTypes: names})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceTypes) != len(types) {
		t.Fatalf("DescribeInstanceTypes answered %d of the claim's %d types", len(out.InstanceTypes), len(types))
	}
	for _, it := range out.InstanceTypes {
		n := int32(0)
		if it.GpuInfo != nil {
			for _, g := range it.GpuInfo.Gpus {
				if aws.ToString(g.Manufacturer) == "NVIDIA" {
					n += aws.ToInt32(g.Count)
				}
			}
		}
		if n < 1 {
			t.Errorf("claim instance type %s has no NVIDIA GPU (%+v)", it.InstanceType, it.GpuInfo)
		}
	}
	if q := nc.Status.Allocatable["nvidia.com/gpu"]; q.Value() < 1 {
		t.Errorf("claim allocatable %v, want nvidia.com/gpu", nc.Status.Allocatable)
	}
	if q := nc.Spec.Resources.Requests["nvidia.com/gpu"]; q.Value() != 1 {
		t.Errorf("claim requests %v, want the pod's GPU", nc.Spec.Resources.Requests)
	}
	t.Logf("GPU claim %s launched as %s; its types: %s", nc.Name, nc.Labels[v1.LabelInstanceTypeStable], strings.Join(types, " "))
}

func (s *stack) testEphemeralStorage(t *testing.T) {
	// The example class has one 30Gi volume (amiFamily Custom): 26Gi
	// allocatable after kubelet's 1Gi and the 10% nodefs threshold. A
	// second class puts 100Gi on the root volume: 89Gi allocatable.
	big := &ec2v1.EC2NodeClass{}
	env.ReadExample(t, "ec2nodeclass.yaml", big)
	big.Name = "big-disk"
	big.Spec.BlockDeviceMappings = append(big.Spec.BlockDeviceMappings, &ec2v1.BlockDeviceMapping{
		DeviceName: ptr.To("/dev/xvdb"), EBS: &ec2v1.BlockDevice{VolumeSize: ptr.To(resource.MustParse("100Gi"))}, RootVolume: true})
	if _, err := s.karp.EC2V1().EC2NodeClasses().Create(s.ctx, big, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	onDemandM5 := []karpv1.NodeSelectorRequirementWithMinValues{
		req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "m5.large"),
		req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeOnDemand),
	}
	s.createPool(poolSpec{name: "small-disk", labels: map[string]string{"disk": "small"}, requirements: onDemandM5})
	s.createPoolOnClass(poolSpec{name: "big-disk", labels: map[string]string{"disk": "big"}, requirements: onDemandM5}, "big-disk")

	storagePod := func(name, disk, size string) {
		pod := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
			Spec: v1.PodSpec{SchedulerName: env.SchedulerName, NodeSelector: map[string]string{"disk": disk},
				Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceEphemeralStorage: resource.MustParse(size)}}}}},
		}
		if _, err := s.kube.CoreV1().Pods(pod.Namespace).Create(s.ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	storagePod("scratch-small", "small", "28Gi")
	msg := s.podEvent("scratch-small", "FailedProvisioning")
	if !strings.Contains(msg, "small-disk") || !strings.Contains(msg, "ephemeral-storage") {
		t.Errorf("FailedProvisioning %q: want small-disk ruled out for ephemeral-storage", msg)
	}
	storagePod("scratch-big", "big", "28Gi")
	nc := s.launched(s.nominated("scratch-big"))
	if nc.Labels[karpv1.NodePoolLabelKey] != "big-disk" {
		t.Fatalf("scratch-big on %s, want nodepool big-disk", nc.Name)
	}
	capacity, allocatable := nc.Status.Capacity[v1.ResourceEphemeralStorage], nc.Status.Allocatable[v1.ResourceEphemeralStorage]
	if capacity.Cmp(resource.MustParse("100Gi")) != 0 || allocatable.Cmp(resource.MustParse("89Gi")) != 0 {
		t.Errorf("claim ephemeral-storage capacity %s allocatable %s, want 100Gi and 89Gi", capacity.String(), allocatable.String())
	}
	s.never("scratch-small nominated", 2*time.Second, func() bool {
		p, err := s.kube.CoreV1().Pods(metav1.NamespaceDefault).Get(s.ctx, "scratch-small", metav1.GetOptions{})
		return err == nil && p.Status.NominatedNodeName != ""
	})
}

// createPoolOnClass is createPool with the pool's nodeClassRef naming class.
func (s *stack) createPoolOnClass(p poolSpec, class string) {
	s.t.Helper()
	s.createPool(p)
	s.eventually("nodepool "+p.name+" on class "+class, func() bool {
		np, err := s.karp.KarpenterV1().NodePools().Get(s.ctx, p.name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		np.Spec.Template.Spec.NodeClassRef.Name = class
		_, err = s.karp.KarpenterV1().NodePools().Update(s.ctx, np, metav1.UpdateOptions{})
		return err == nil
	})
	s.eventually("class "+class+" ready", func() bool {
		c, err := s.karp.EC2V1().EC2NodeClasses().Get(s.ctx, class, metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(c.Status.Conditions, ec2v1.ConditionTypeReady)
	})
}
