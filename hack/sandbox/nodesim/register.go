package nodesim

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Register creates the Node with the kubelet's credentials, as the
// kubelet's registerWithAPIServer does. An existing Node of the same name
// is taken over (a kubelet restarting).
func (k *Kubelet) Register(ctx context.Context) error {
	o := k.opts
	labels := map[string]string{
		corev1.LabelHostname:      o.NodeName,
		corev1.LabelOSStable:      "linux",
		corev1.LabelArchStable:    o.Hardware.Arch,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": o.Hardware.Arch,
	}
	maps.Copy(labels, o.Labels)
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        o.NodeName,
			Labels:      labels,
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
		Spec: corev1.NodeSpec{Taints: o.Taints, ProviderID: o.ProviderID},
	}
	k.setStatus(node, time.Now())
	created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = k.client.CoreV1().Nodes().Get(ctx, o.NodeName, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", o.NodeName, err)
	}
	k.mu.Lock()
	k.node = created
	k.lastReport = time.Now()
	k.mu.Unlock()
	k.event(ctx, created, "Starting", "Starting kubelet.")
	k.createMirrorPods(ctx, created)
	k.log.Info("Node registered", "instanceType", o.Hardware.InstanceType, "cpu", k.allocatable.Cpu(), "memory", k.allocatable.Memory())
	return nil
}

func (k *Kubelet) event(ctx context.Context, node *corev1.Node, reason, message string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: node.Name + ".", Namespace: metav1.NamespaceDefault},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Node", Name: node.Name, UID: types.UID(node.Name), APIVersion: "v1",
		},
		Reason: reason, Message: message, Type: corev1.EventTypeNormal,
		Source:         corev1.EventSource{Component: "kubelet", Host: node.Name},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kubelet", ReportingInstance: node.Name,
	}
	if _, err := k.client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		k.log.V(2).Info("Recording event failed", "reason", reason, "err", err)
	}
}
