//go:build warm

package warm

import (
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/ec2"
	_ "github.com/aws/aws-sdk-go-v2/service/ssm"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
	_ "k8s.io/kubernetes/cmd/kubeadm/app/util/pubkeypin"
	_ "k8s.io/cluster-bootstrap/token/util"
	_ "k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)
