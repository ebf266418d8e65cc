package nodesim

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/utils/ptr"
)

// leaseLoop keeps the node's Lease in kube-node-lease renewed, every
// quarter of its duration, as the kubelet's node lease controller does.
func (k *Kubelet) leaseLoop(ctx context.Context) {
	leases := k.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	seconds := int32(k.opts.Settings.LeaseDuration / time.Second)
	var lease *coordinationv1.Lease
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		now := metav1.NewMicroTime(time.Now())
		if lease != nil {
			l := lease.DeepCopy()
			l.Spec.RenewTime = &now
			updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
			if err == nil {
				lease = updated
				return
			}
			if ctx.Err() == nil {
				k.log.V(2).Info("Renewing lease failed", "err", err)
			}
			lease = nil
		}
		got, err := leases.Get(ctx, k.opts.NodeName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			k.mu.Lock()
			node := k.node
			k.mu.Unlock()
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: k.opts.NodeName, Namespace: corev1.NamespaceNodeLease},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity: ptr.To(k.opts.NodeName), LeaseDurationSeconds: &seconds, RenewTime: &now,
				},
			}
			if node != nil {
				l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
			}
			lease, err = leases.Create(ctx, l, metav1.CreateOptions{})
		case err == nil:
			got.Spec.RenewTime, got.Spec.HolderIdentity, got.Spec.LeaseDurationSeconds = &now, ptr.To(k.opts.NodeName), &seconds
			lease, err = leases.Update(ctx, got, metav1.UpdateOptions{})
		}
		if err != nil {
			lease = nil
			if ctx.Err() == nil {
				k.log.Info("Lease update failed", "err", err)
			}
		}
	}, k.opts.Settings.LeaseDuration/4)
}

// statusLoop posts node status when it changes and at least every
// StatusReportFrequency. Until the Node has a pod CIDR it checks every
// 250ms, so the Node turns Ready promptly.
func (k *Kubelet) statusLoop(ctx context.Context) {
	for {
		interval := k.opts.Settings.StatusUpdateFrequency
		if err := k.syncStatus(ctx); err != nil && ctx.Err() == nil {
			k.log.Info("Node status update failed", "err", err)
		}
		if !k.Ready() {
			interval = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (k *Kubelet) syncStatus(ctx context.Context) error {
	node, err := k.client.CoreV1().Nodes().Get(ctx, k.opts.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	k.mu.Lock()
	if node.Spec.PodCIDR != "" && !k.podCIDR.IsValid() {
		if p, err := netip.ParsePrefix(node.Spec.PodCIDR); err == nil {
			k.podCIDR = p
		}
	}
	last := k.lastReport
	k.mu.Unlock()

	now := time.Now()
	want := node.DeepCopy()
	k.setStatus(want, now)
	if !statusChanged(&node.Status, &want.Status) && now.Sub(last) < k.opts.Settings.StatusReportFrequency {
		k.mu.Lock()
		k.node = node
		k.mu.Unlock()
		return nil
	}
	updated, err := k.client.CoreV1().Nodes().UpdateStatus(ctx, want, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	k.mu.Lock()
	wasReady := k.ready
	k.node, k.lastReport = updated, now
	k.ready = nodeutil.IsNodeReady(updated)
	k.mu.Unlock()
	if !wasReady && nodeutil.IsNodeReady(updated) {
		k.event(ctx, updated, "NodeReady", fmt.Sprintf("Node %s status is now: NodeReady", updated.Name))
		k.log.Info("Node Ready", "podCIDR", updated.Spec.PodCIDR)
	}
	return nil
}

// setStatus fills in the status the kubelet reports. The node is Ready
// once it has a pod CIDR: until then the (simulated) CNI has no range.
func (k *Kubelet) setStatus(node *corev1.Node, now time.Time) {
	o := k.opts
	k.mu.Lock()
	haveCIDR := k.podCIDR.IsValid() || node.Spec.PodCIDR != ""
	k.mu.Unlock()
	node.Status.Capacity = k.capacity.DeepCopy()
	node.Status.Allocatable = k.allocatable.DeepCopy()
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: o.Hardware.PrivateIP},
		{Type: corev1.NodeHostName, Address: o.NodeName},
	}
	node.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}}
	node.Status.NodeInfo = corev1.NodeSystemInfo{
		MachineID:               randomID(o.Hardware.InstanceID + "machine"),
		SystemUUID:              o.Hardware.InstanceID,
		BootID:                  k.bootID,
		KernelVersion:           "6.8.0-1021-aws",
		OSImage:                 "Ubuntu 24.04.1 LTS (fleet-scheduler nodesim)",
		ContainerRuntimeVersion: "containerd://2.1.0-nodesim",
		KubeletVersion:          KubeletVersion,
		OperatingSystem:         "linux",
		Architecture:            o.Hardware.Arch,
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"}
	if !haveCIDR {
		ready = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
			Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"}
	}
	want := []corev1.NodeCondition{
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
		ready,
	}
	heartbeat := metav1.NewTime(now)
	for _, c := range want {
		c.LastHeartbeatTime = heartbeat
		c.LastTransitionTime = heartbeat
		for _, old := range node.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		replaced := false
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == c.Type {
				node.Status.Conditions[i] = c
				replaced = true
			}
		}
		if !replaced {
			node.Status.Conditions = append(node.Status.Conditions, c)
		}
	}
}

// statusChanged compares statuses ignoring heartbeat times, as the
// kubelet's nodeStatusHasChanged does.
func statusChanged(a, b *corev1.NodeStatus) bool {
	strip := func(s *corev1.NodeStatus) *corev1.NodeStatus {
		s = s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	x, y := strip(a), strip(b)
	if len(x.Conditions) != len(y.Conditions) {
		return true
	}
	for i := range x.Conditions {
		if x.Conditions[i] != y.Conditions[i] {
			return true
		}
	}
	return !resourceListEqual(x.Capacity, y.Capacity) || !resourceListEqual(x.Allocatable, y.Allocatable) ||
		fmt.Sprint(x.Addresses) != fmt.Sprint(y.Addresses) || x.NodeInfo != y.NodeInfo
}

func resourceListEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for n, q := range a {
		if o, ok := b[n]; !ok || o.Cmp(q) != 0 {
			return false
		}
	}
	return true
}
