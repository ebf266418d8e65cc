// Package v1 is the karpenter.k8s.aws/v1 API as fleet-scheduler serves it:
// EC2NodeClass, the AWS side of a node (subnets, security groups, AMIs, IAM
// role, user data, disks, metadata options), with the field names, JSON tags
// and meanings of karpenter-provider-aws v1.
//
// +k8s:deepcopy-gen=package
// +groupName=karpenter.k8s.aws
// +groupGoName=EC2
package v1
