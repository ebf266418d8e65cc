package workload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clires "k8s.io/cli-runtime/pkg/resource"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
)

const scanYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: scan-worker, namespace: scan}
spec:
  replicas: 20
  selector: {matchLabels: {app: scan-worker}}
  template:
    metadata: {labels: {app: scan-worker}}
    spec:
      containers: [{name: w, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 500m, memory: 512Mi}}}]
`

func read(t *testing.T, content string) *Set {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Read(&clires.FilenameOptions{Filenames: []string{path}}, "default")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// existing is the cluster the seed runs: scan-worker at 3 replicas, its
// ReplicaSet and pods as the controllers made them (the template the API
// server stored: defaulted).
func existing(t *testing.T, template v1.PodTemplateSpec) *cluster.Snapshot {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "scan-worker", Namespace: "scan", UID: "deploy-uid"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Template: template}}
	hash := controller.ComputeHash(&template, nil)
	rsTemplate := template.DeepCopy()
	rsTemplate.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "scan-worker-" + hash, Namespace: "scan", UID: "rs-uid",
		Labels:          map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: hash},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3), Template: *rsTemplate}}
	snap := &cluster.Snapshot{Deployments: []*appsv1.Deployment{d}, ReplicaSets: []*appsv1.ReplicaSet{rs}}
	for i := range 3 {
		snap.Pods = append(snap.Pods, &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scan-worker-%s-%d", hash, i), Namespace: "scan", UID: types.UID(fmt.Sprint("pod-", i)),
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
			Spec:   rsTemplate.Spec,
			Status: v1.PodStatus{Phase: v1.PodRunning},
		})
	}
	return snap
}

// Scaling the seed's scan-worker to 20 adds the 17 pods it lacks, from the
// ReplicaSet that runs the 3, with the API server's defaults applied to
// the file's template.
func TestExpandDeploymentScale(t *testing.T) {
	set := read(t, scanYAML)
	d := set.Workloads[0].(*appsv1.Deployment)
	if d.Spec.Template.Spec.SchedulerName != v1.DefaultSchedulerName || d.Spec.Template.Spec.RestartPolicy != v1.RestartPolicyAlways {
		t.Fatalf("template not defaulted: %+v", d.Spec.Template.Spec)
	}
	snap := existing(t, d.Spec.Template)
	exp, err := Expand(set, snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Pods) != 17 || len(exp.Replaced) != 0 {
		t.Fatalf("%d new pods, %d replaced; want 17 and 0 (notes %v)", len(exp.Pods), len(exp.Replaced), exp.Notes)
	}
	rs := snap.ReplicaSets[0]
	for _, p := range exp.Pods {
		if !strings.HasPrefix(p.Name, rs.Name+"-") || p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] ||
			p.Namespace != "scan" || p.Spec.Priority == nil || p.Annotations[OriginAnnotation] != "Deployment scan/scan-worker" {
			t.Errorf("pod %s/%s labels %v priority %v annotations %v", p.Namespace, p.Name, p.Labels, p.Spec.Priority, p.Annotations)
		}
	}
	if !strings.Contains(strings.Join(exp.Notes, ";"), "3 of its 20 replicas run already") {
		t.Errorf("notes %v", exp.Notes)
	}
}

// A changed template is a rollout: all 20 are new, the 3 old pods go.
func TestExpandDeploymentRollout(t *testing.T) {
	set := read(t, scanYAML)
	old := set.Workloads[0].(*appsv1.Deployment).Spec.Template.DeepCopy()
	old.Spec.Containers[0].Image = "registry.k8s.io/pause:3.9"
	exp, err := Expand(set, existing(t, *old))
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Pods) != 20 || len(exp.Replaced) != 3 {
		t.Errorf("%d new pods, %d replaced; want 20 and 3", len(exp.Pods), len(exp.Replaced))
	}
}

// A DaemonSet runs a pod pinned to each existing node it tolerates, as the
// DaemonSet controller pins it, and is overhead for the pools.
func TestExpandDaemonSet(t *testing.T) {
	set := read(t, `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: a, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: 100m}}}]
`)
	rl := v1.ResourceList{v1.ResourceCPU: resource.MustParse("2"), v1.ResourcePods: resource.MustParse("110")}
	worker := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker"}, Status: v1.NodeStatus{Allocatable: rl, Capacity: rl}}
	cp := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "control-plane"}, Status: v1.NodeStatus{Allocatable: rl, Capacity: rl},
		Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: v1.TaintEffectNoSchedule}}}}
	exp, err := Expand(set, &cluster.Snapshot{Nodes: []*v1.Node{worker, cp}})
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.DaemonSets) != 1 || len(exp.Pods) != 1 {
		t.Fatalf("%d daemonsets, %d pods; want 1 and 1 (the control plane's taint is not tolerated)", len(exp.DaemonSets), len(exp.Pods))
	}
	terms := exp.Pods[0].Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != "worker" {
		t.Errorf("daemon pod affinity %+v, want pinned to worker", terms)
	}
}

// An unknown PriorityClass is an error that names it; a known one sets
// the priority, as admission would.
func TestExpandPriority(t *testing.T) {
	set := read(t, `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  priorityClassName: system-cluster-critical
  containers: [{name: c, image: registry.k8s.io/pause:3.10}]
---
apiVersion: v1
kind: Pod
metadata: {name: q}
spec:
  priorityClassName: gold
  containers: [{name: c, image: registry.k8s.io/pause:3.10}]
`)
	_, err := Expand(set, nil)
	if err == nil || !strings.Contains(err.Error(), `PriorityClass "gold" does not exist`) {
		t.Fatalf("err %v", err)
	}
	set.Workloads = set.Workloads[:1]
	exp, err := Expand(set, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := exp.Pods[0]; p.Spec.Priority == nil || *p.Spec.Priority != 2000000000 {
		t.Errorf("priority %v", p.Spec.Priority)
	}
}
