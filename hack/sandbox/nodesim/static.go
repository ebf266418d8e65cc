package nodesim

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// StaticNode is a node that is not one of moto's instances: the
// control-plane node and the workers that were there before
// fleet-scheduler. It joins with UserData (a `kubeadm join` as `kubeadm
// token create --print-join-command` prints it), or, when Config is set,
// uses those credentials directly (the control-plane node's kubelet.conf
// that `kubeadm init` writes).
type StaticNode struct {
	Name         string
	InstanceType string
	Zone         string
	PrivateIP    string
	UserData     string
	Config       *rest.Config
	// Labels and Taints are the kubelet's --node-labels and
	// --register-with-taints when Config is set; with UserData they come
	// from the user data.
	Labels map[string]string
	Taints []corev1.Taint
	// StaticPods run on the node from manifests (control-plane components).
	StaticPods []StaticPod
}

// StartStatic joins (or registers) a static node and runs its kubelet
// until ctx ends (end it no later than Run's). It returns once the Node is
// registered.
func (s *Simulator) StartStatic(ctx context.Context, n StaticNode) (*Kubelet, error) {
	it, err := s.InstanceType(ctx, n.InstanceType)
	if err != nil {
		return nil, err
	}
	hw := Hardware{
		InstanceID: n.Name, InstanceType: n.InstanceType, Zone: n.Zone, Region: s.opts.Region,
		PrivateIP: n.PrivateIP, Hostname: n.Name, Arch: "amd64", RootVolumeGiB: 30,
	}
	if it.ProcessorInfo != nil && len(it.ProcessorInfo.SupportedArchitectures) > 0 {
		hw.Arch = KubernetesArch(string(it.ProcessorInfo.SupportedArchitectures[0]))
	}
	if it.VCpuInfo != nil {
		hw.VCPUs = int64(aws.ToInt32(it.VCpuInfo.DefaultVCpus))
	}
	if it.MemoryInfo != nil {
		hw.MemoryMiB = aws.ToInt64(it.MemoryInfo.SizeInMiB)
	}
	log := s.log.WithValues("node", n.Name)
	ctx = klog.NewContext(ctx, log)
	var k *Kubelet
	if n.Config != nil {
		k, err = s.kubelet(n.Name, n.Config, hw, nil, &n)
	} else {
		var joined *Joined
		joined, err = Join(ctx, n.UserData, n.Name, s.opts.Kubelet, JoinOptions{
			Dir: filepath.Join(s.opts.StateDir, n.Name), DiscoveryTimeout: s.opts.DiscoveryTimeout, CSRTimeout: time.Minute,
		})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		k, err = s.kubelet(joined.NodeName, joined.Config, hw, joined, &n)
	}
	if err != nil {
		return nil, err
	}
	if err := k.Register(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.running(ctx, k)
	}()
	return k, nil
}
