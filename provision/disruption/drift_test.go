package disruption

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodepool"
)

// driftPool has the requirements the drift cases judge claims' labels by.
func driftPool() *karpv1.NodePool {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
		{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: []string{"t3.medium", "t3.large"}},
		{Key: "karpenter.k8s.aws/instance-cpu", Operator: v1.NodeSelectorOpGt, Values: []string{"1"}},
	}
	return np
}

func TestDrift(t *testing.T) {
	np := driftPool()
	hash := nodepool.TemplateHash(np)
	claim := func(mod func(*karpv1.NodeClaim)) *karpv1.NodeClaim {
		nc := &karpv1.NodeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: map[string]string{
				karpv1.NodePoolHashAnnotationKey: hash, karpv1.NodePoolHashVersionAnnotationKey: nodepool.NodePoolHashVersion}, Labels: map[string]string{
				v1.LabelInstanceTypeStable: "t3.medium", "karpenter.k8s.aws/instance-cpu": "2"}},
			Status: karpv1.NodeClaimStatus{ImageID: "ami-1"},
		}
		if mod != nil {
			mod(nc)
		}
		return nc
	}
	ready := &ec2v1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Status: ec2v1.EC2NodeClassStatus{
		AMIs:           []ec2v1.AMI{{ID: "ami-1"}},
		Subnets:        []ec2v1.Subnet{{ID: "subnet-a"}, {ID: "subnet-b"}},
		SecurityGroups: []ec2v1.SecurityGroup{{ID: "sg-1"}, {ID: "sg-2"}},
		Conditions:     []metav1.Condition{{Type: ec2v1.ConditionTypeReady, Status: metav1.ConditionTrue}},
	}}
	moved := ready.DeepCopy()
	moved.Status.AMIs = []ec2v1.AMI{{ID: "ami-2"}}
	launchedFrom := func(c *ec2v1.EC2NodeClass) func(*karpv1.NodeClaim) {
		return func(nc *karpv1.NodeClaim) {
			nc.Annotations[ec2v1.AnnotationEC2NodeClassHash] = c.Hash()
			nc.Annotations[ec2v1.AnnotationEC2NodeClassHashVersion] = ec2v1.EC2NodeClassHashVersion
		}
	}
	newUserData := ready.DeepCopy()
	newUserData.Spec.UserData = ptr.To("#!/bin/bash\necho changed\n")
	for _, tc := range []struct {
		name    string
		nc      *karpv1.NodeClaim
		class   *ec2v1.EC2NodeClass
		machine *cloudprovider.Machine
		want    string
	}{
		{name: "current", nc: claim(nil), class: ready},
		{name: "template changed", nc: claim(func(nc *karpv1.NodeClaim) { nc.Annotations[karpv1.NodePoolHashAnnotationKey] = "1" }), want: DriftReasonNodePool},
		{name: "no hash is not judged", nc: claim(func(nc *karpv1.NodeClaim) { nc.Annotations = nil })},
		{name: "other hash version is not judged", nc: claim(func(nc *karpv1.NodeClaim) {
			nc.Annotations[karpv1.NodePoolHashAnnotationKey] = "1"
			nc.Annotations[karpv1.NodePoolHashVersionAnnotationKey] = "v0"
		})},
		{name: "instance type left the pool", nc: claim(func(nc *karpv1.NodeClaim) { nc.Labels[v1.LabelInstanceTypeStable] = "m5.large" }), want: DriftReasonRequirements},
		{name: "numeric requirement", nc: claim(func(nc *karpv1.NodeClaim) { nc.Labels["karpenter.k8s.aws/instance-cpu"] = "1" }), want: DriftReasonRequirements},
		{name: "label not carried is not judged", nc: claim(func(nc *karpv1.NodeClaim) { delete(nc.Labels, v1.LabelInstanceTypeStable) })},
		{name: "AMI no longer resolved", nc: claim(nil), class: moved, want: DriftReasonAMI},
		{name: "class unchanged", nc: claim(launchedFrom(ready)), class: ready},
		{name: "class user data changed", nc: claim(launchedFrom(ready)), class: newUserData, want: DriftReasonNodeClass},
		{name: "class hash of another version is not judged", nc: claim(func(nc *karpv1.NodeClaim) {
			launchedFrom(ready)(nc)
			nc.Annotations[ec2v1.AnnotationEC2NodeClassHashVersion] = "v0"
		}), class: newUserData},
		{name: "machine where the class says", nc: claim(nil), class: ready, machine: &cloudprovider.Machine{SubnetID: "subnet-b", SecurityGroupIDs: []string{"sg-2", "sg-1"}}},
		{name: "subnet no longer selected", nc: claim(nil), class: ready, machine: &cloudprovider.Machine{SubnetID: "subnet-old", SecurityGroupIDs: []string{"sg-1", "sg-2"}}, want: DriftReasonSubnet},
		{name: "security group added to the class", nc: claim(nil), class: ready, machine: &cloudprovider.Machine{SubnetID: "subnet-a", SecurityGroupIDs: []string{"sg-1"}}, want: DriftReasonSecurityGrp},
		{name: "security groups unknown are not judged", nc: claim(nil), class: ready, machine: &cloudprovider.Machine{SubnetID: "subnet-a"}},
		{name: "subnet not judged while class not ready", nc: claim(nil), class: &ec2v1.EC2NodeClass{Status: ec2v1.EC2NodeClassStatus{Subnets: ready.Status.Subnets}},
			machine: &cloudprovider.Machine{SubnetID: "subnet-old"}},
		{name: "AMI not judged while class not ready", nc: claim(nil), class: &ec2v1.EC2NodeClass{Status: ec2v1.EC2NodeClassStatus{AMIs: moved.Status.AMIs}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := drift(tc.nc, np, hash, tc.class, tc.machine)
			if got != tc.want {
				t.Errorf("drift = %q (%s), want %q", got, msg, tc.want)
			}
			if got != "" && !strings.Contains(msg, "default") {
				t.Errorf("message %q does not name the pool", msg)
			}
		})
	}
}
