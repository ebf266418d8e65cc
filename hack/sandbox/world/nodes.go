package world

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/motogaps"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/nodesim"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/seed"
)

// The control-plane node: kubeadm init's host, where the sandbox's own
// programs (the control plane, KEDA) stand.
const (
	controlPlaneNode = "ip-10-0-1-21"
	controlPlaneIP   = "10.0.1.21"
)

// startNodes runs the simulator for moto's instances (and fills in the
// security groups moto leaves off spot instances) and brings up the control
// plane and two workers that fleet-scheduler does not manage.
func (w *World) startNodes(ctx context.Context) error {
	w.simDone = make(chan struct{})
	go func() {
		defer close(w.simDone)
		w.Sim.Run(w.ctx)
	}()
	go motogaps.SpotSecurityGroups(w.ctx, w.EC2, ClusterName, 500*time.Millisecond, klog.Background().WithName("motogaps"))
	return w.staticNodes(ctx)
}

// staticNodes starts the control-plane node (its kubelet.conf issued from
// the CA, as `kubeadm init` writes it) and joins the two workers with the
// runbook's join command, then waits until all three are Ready and
// schedulable.
func (w *World) staticNodes(ctx context.Context) error {
	w.ControlPlaneNode = controlPlaneNode
	kubeletConf, err := w.PKI.WriteKubeconfig(filepath.Join(w.Dir, "nodes", w.ControlPlaneNode, "kubelet.conf"), w.Server,
		"system:node:"+w.ControlPlaneNode, "system:node:"+w.ControlPlaneNode, "system:nodes")
	if err != nil {
		return err
	}
	logs := filepath.Join(w.Dir, "logs")
	staticPod := func(name, image, log string, labels map[string]string) nodesim.StaticPod {
		l := map[string]string{"component": name, "tier": "control-plane"}
		for k, v := range labels {
			l[k] = v
		}
		return nodesim.StaticPod{Name: name, Namespace: metav1.NamespaceSystem, Labels: l, Image: image, Command: []string{name}, LogPath: filepath.Join(logs, log)}
	}
	// One static pod per fleet-scheduler replica (a kubeadm HA control
	// plane has one per node; here they share the one node).
	var schedulerPods []nodesim.StaticPod
	for i := range w.Schedulers {
		name := "fleet-scheduler"
		if i > 0 {
			name = fmt.Sprintf("fleet-scheduler-%d", i)
		}
		schedulerPods = append(schedulerPods, staticPod(name, "fleet-scheduler:dev", schedulerLog(i), map[string]string{"app.kubernetes.io/name": "karpenter"}))
	}
	if _, err := w.Sim.StartStatic(w.ctx, nodesim.StaticNode{
		Name: w.ControlPlaneNode, InstanceType: "t3.medium", Zone: "us-east-1a", PrivateIP: controlPlaneIP,
		Config: kubeletConf.Config, Taints: []corev1.Taint{seed.ControlPlaneTaint},
		// kubeadm's static pods, their logs the real components'. The
		// scheduler's carries the label the runbook finds the autoscaler's
		// logs by (kubectl logs -n kube-system -l app.kubernetes.io/name=karpenter).
		StaticPods: append([]nodesim.StaticPod{
			staticPod("etcd", "registry.k8s.io/etcd:3.7.0-0", "etcd.log", nil),
			staticPod("kube-apiserver", "registry.k8s.io/kube-apiserver:"+controlplane.KubernetesVersion, "kube-apiserver.log", nil),
			staticPod("kube-controller-manager", "registry.k8s.io/kube-controller-manager:"+controlplane.KubernetesVersion, "kube-controller-manager.log", nil),
		}, schedulerPods...),
	}); err != nil {
		return fmt.Errorf("control-plane node: %w", err)
	}
	if err := seed.MarkControlPlane(ctx, w.Client, w.ControlPlaneNode); err != nil {
		return fmt.Errorf("marking the control-plane node: %w", err)
	}
	workers := []struct{ name, zone, ip string }{
		{"ip-10-0-1-31", "us-east-1a", "10.0.1.31"},
		{"ip-10-0-2-32", "us-east-1b", "10.0.2.32"},
	}
	errs := make(chan error, len(workers))
	for _, wk := range workers {
		w.Workers = append(w.Workers, wk.name)
		go func() {
			userData := WorkerUserData(w.Endpoint, w.Token.Token, w.CACertHash, wk.name, map[string]string{
				corev1.LabelInstanceTypeStable: "t3.large", corev1.LabelTopologyZone: wk.zone, corev1.LabelTopologyRegion: Region,
			})
			_, err := w.Sim.StartStatic(w.ctx, nodesim.StaticNode{Name: wk.name, InstanceType: "t3.large", Zone: wk.zone, PrivateIP: wk.ip, UserData: userData})
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}
	names := append([]string{w.ControlPlaneNode}, w.Workers...)
	if err := w.WaitNodesSchedulable(ctx, names, time.Minute); err != nil {
		return err
	}
	w.progress("nodes Ready: %s (control plane, t3.medium, tainted), %s (t3.large workers, joined with the SSM token)",
		w.ControlPlaneNode, strings.Join(w.Workers, ", "))
	return nil
}

// WorkerUserData is how a worker was joined by hand: the runbook's `kubeadm
// join` with its kubelet flags.
func WorkerUserData(endpoint, token, caCertHash, name string, labels map[string]string) string {
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		pairs = append(pairs, k+"="+labels[k])
	}
	return fmt.Sprintf("#!/bin/bash\nset -euo pipefail\nprintf '%%s\\n' 'KUBELET_EXTRA_ARGS=--node-labels=%s' > /etc/default/kubelet\n%s --node-name %s\n",
		strings.Join(pairs, ","), seed.JoinCommand(endpoint, seed.Token{Token: token}, caCertHash), name)
}

// WaitNodesSchedulable waits until the nodes are Ready and carry no
// not-ready/unreachable taint.
func (w *World) WaitNodesSchedulable(ctx context.Context, names []string, timeout time.Duration) error {
	var pending []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pending = pending[:0]
		for _, n := range names {
			node, err := w.Client.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !Schedulable(node) {
				pending = append(pending, n)
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not Ready and schedulable: %v", pending)
	}
	return nil
}

// Schedulable reports whether a node is Ready without a not-ready or
// unreachable taint.
func Schedulable(n *corev1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	return ready
}

// mapValues are m's values in the order of their keys.
func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}
