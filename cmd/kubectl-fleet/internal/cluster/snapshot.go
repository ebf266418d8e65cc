// Package cluster reads what kubectl fleet needs of a live cluster, once,
// into a Snapshot: the objects the scheduler and the provisioner read.
package cluster

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
	"github.com/fleet-scheduler/fleet-scheduler/provision/operator/clients"
)

// Clients are the typed clients of one cluster.
type Clients struct {
	Kube kubernetes.Interface
	Karp versioned.Interface
	// Host is the API server's address, for errors.
	Host string
}

// NewClients builds the clients from a REST config (custom resources are
// read as JSON: they have no protobuf form).
func NewClients(cfg *rest.Config) (*Clients, error) {
	kube, karp, err := clients.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Kube: kube, Karp: karp, Host: cfg.Host}, nil
}

// Snapshot is the cluster as read at one moment.
type Snapshot struct {
	Nodes           []*v1.Node
	Pods            []*v1.Pod
	Namespaces      []*v1.Namespace
	PVCs            []*v1.PersistentVolumeClaim
	PVs             []*v1.PersistentVolume
	Services        []*v1.Service
	StorageClasses  []*storagev1.StorageClass
	CSINodes        []*storagev1.CSINode
	PDBs            []*policyv1.PodDisruptionBudget
	PriorityClasses []*schedulingv1.PriorityClass
	Deployments     []*appsv1.Deployment
	ReplicaSets     []*appsv1.ReplicaSet
	StatefulSets    []*appsv1.StatefulSet
	DaemonSets      []*appsv1.DaemonSet
	Jobs            []*batchv1.Job
	NodePools       []*karpv1.NodePool
	NodeClaims      []*karpv1.NodeClaim
	NodeClasses     []*ec2v1.EC2NodeClass
	// NodeOverlays is nil when the cluster does not serve karpenter.sh/v1alpha1.
	NodeOverlays []*v1alpha1.NodeOverlay
}

// Load lists everything a plan or an explanation reads.
func Load(ctx context.Context, c *Clients) (*Snapshot, error) {
	s := &Snapshot{}
	opts := metav1.ListOptions{ResourceVersion: "0"}
	core, apps, karp := c.Kube.CoreV1(), c.Kube.AppsV1(), c.Karp.KarpenterV1()
	steps := []struct {
		what string
		list func() error
	}{
		{"nodes", func() error {
			l, err := core.Nodes().List(ctx, opts)
			s.Nodes = ptrs(l, err, func(l *v1.NodeList) []v1.Node { return l.Items })
			return err
		}},
		{"pods", func() error {
			l, err := core.Pods("").List(ctx, opts)
			s.Pods = ptrs(l, err, func(l *v1.PodList) []v1.Pod { return l.Items })
			return err
		}},
		{"namespaces", func() error {
			l, err := core.Namespaces().List(ctx, opts)
			s.Namespaces = ptrs(l, err, func(l *v1.NamespaceList) []v1.Namespace { return l.Items })
			return err
		}},
		{"persistentvolumeclaims", func() error {
			l, err := core.PersistentVolumeClaims("").List(ctx, opts)
			s.PVCs = ptrs(l, err, func(l *v1.PersistentVolumeClaimList) []v1.PersistentVolumeClaim { return l.Items })
			return err
		}},
		{"persistentvolumes", func() error {
			l, err := core.PersistentVolumes().List(ctx, opts)
			s.PVs = ptrs(l, err, func(l *v1.PersistentVolumeList) []v1.PersistentVolume { return l.Items })
			return err
		}},
		{"services", func() error {
			l, err := core.Services("").List(ctx, opts)
			s.Services = ptrs(l, err, func(l *v1.ServiceList) []v1.Service { return l.Items })
			return err
		}},
		{"storageclasses", func() error {
			l, err := c.Kube.StorageV1().StorageClasses().List(ctx, opts)
			s.StorageClasses = ptrs(l, err, func(l *storagev1.StorageClassList) []storagev1.StorageClass { return l.Items })
			return err
		}},
		{"csinodes", func() error {
			l, err := c.Kube.StorageV1().CSINodes().List(ctx, opts)
			s.CSINodes = ptrs(l, err, func(l *storagev1.CSINodeList) []storagev1.CSINode { return l.Items })
			return err
		}},
		{"poddisruptionbudgets", func() error {
			l, err := c.Kube.PolicyV1().PodDisruptionBudgets("").List(ctx, opts)
			s.PDBs = ptrs(l, err, func(l *policyv1.PodDisruptionBudgetList) []policyv1.PodDisruptionBudget { return l.Items })
			return err
		}},
		{"priorityclasses", func() error {
			l, err := c.Kube.SchedulingV1().PriorityClasses().List(ctx, opts)
			s.PriorityClasses = ptrs(l, err, func(l *schedulingv1.PriorityClassList) []schedulingv1.PriorityClass { return l.Items })
			return err
		}},
		{"deployments", func() error {
			l, err := apps.Deployments("").List(ctx, opts)
			s.Deployments = ptrs(l, err, func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items })
			return err
		}},
		{"replicasets", func() error {
			l, err := apps.ReplicaSets("").List(ctx, opts)
			s.ReplicaSets = ptrs(l, err, func(l *appsv1.ReplicaSetList) []appsv1.ReplicaSet { return l.Items })
			return err
		}},
		{"statefulsets", func() error {
			l, err := apps.StatefulSets("").List(ctx, opts)
			s.StatefulSets = ptrs(l, err, func(l *appsv1.StatefulSetList) []appsv1.StatefulSet { return l.Items })
			return err
		}},
		{"daemonsets", func() error {
			l, err := apps.DaemonSets("").List(ctx, opts)
			s.DaemonSets = ptrs(l, err, func(l *appsv1.DaemonSetList) []appsv1.DaemonSet { return l.Items })
			return err
		}},
		{"jobs", func() error {
			l, err := c.Kube.BatchV1().Jobs("").List(ctx, opts)
			s.Jobs = ptrs(l, err, func(l *batchv1.JobList) []batchv1.Job { return l.Items })
			return err
		}},
		{"nodepools.karpenter.sh", func() error {
			l, err := karp.NodePools().List(ctx, opts)
			s.NodePools = ptrs(l, err, func(l *karpv1.NodePoolList) []karpv1.NodePool { return l.Items })
			return err
		}},
		{"nodeclaims.karpenter.sh", func() error {
			l, err := karp.NodeClaims().List(ctx, opts)
			s.NodeClaims = ptrs(l, err, func(l *karpv1.NodeClaimList) []karpv1.NodeClaim { return l.Items })
			return err
		}},
		{"ec2nodeclasses.karpenter.k8s.aws", func() error {
			l, err := c.Karp.EC2V1().EC2NodeClasses().List(ctx, opts)
			s.NodeClasses = ptrs(l, err, func(l *ec2v1.EC2NodeClassList) []ec2v1.EC2NodeClass { return l.Items })
			return err
		}},
	}
	for _, step := range steps {
		if err := step.list(); err != nil {
			return nil, c.listError(step.what, err)
		}
	}
	overlays, err := c.Karp.KarpenterV1alpha1().NodeOverlays().List(ctx, opts)
	switch {
	case err == nil:
		s.NodeOverlays = ptrs(overlays, nil, func(l *v1alpha1.NodeOverlayList) []v1alpha1.NodeOverlay { return l.Items })
		if s.NodeOverlays == nil {
			s.NodeOverlays = []*v1alpha1.NodeOverlay{}
		}
	case apierrors.IsNotFound(err):
		// karpenter.sh/v1alpha1 is not served: no overlays.
	default:
		return nil, c.listError("nodeoverlays.karpenter.sh", err)
	}
	return s, nil
}

// listError says what to fix when a list fails.
func (c *Clients) listError(what string, err error) error {
	var status apierrors.APIStatus
	switch {
	case !errors.As(err, &status):
		return fmt.Errorf("cannot reach the API server at %s: %w (point KUBECONFIG, --kubeconfig or --context at the cluster)", c.Host, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("the cluster does not serve %s: install fleet-scheduler's CRDs (kubectl apply -f manifests/crds): %w", what, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("listing %s is forbidden for your user: kubectl fleet reads nodes, pods, workloads, NodePools, NodeClaims and EC2NodeClasses; %w", what, err)
	default:
		return fmt.Errorf("listing %s: %w", what, err)
	}
}

// ptrs turns a list's items into pointers (nil on error).
func ptrs[L any, T any](l *L, err error, items func(*L) []T) []*T {
	if err != nil || l == nil {
		return nil
	}
	in := items(l)
	out := make([]*T, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	return out
}

// SchedulerObjects are the objects a simulated scheduler reads: nodes,
// the pods bound to them (not finished), pods nominated to a node or
// claim, and namespaces, volumes, claims, classes, budgets and the
// workloads default spreading reads.
func (s *Snapshot) SchedulerObjects(keep func(*v1.Pod) bool) []runtime.Object {
	out := appendObjects(nil, s.Nodes)
	for _, p := range s.Pods {
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		if (p.Spec.NodeName != "" || p.Status.NominatedNodeName != "") && (keep == nil || keep(p)) {
			out = append(out, p)
		}
	}
	out = appendObjects(out, s.Namespaces)
	out = appendObjects(out, s.PVCs)
	out = appendObjects(out, s.PVs)
	out = appendObjects(out, s.Services)
	out = appendObjects(out, s.StorageClasses)
	out = appendObjects(out, s.CSINodes)
	out = appendObjects(out, s.PDBs)
	out = appendObjects(out, s.ReplicaSets)
	out = appendObjects(out, s.StatefulSets)
	return out
}

// appendObjects appends objs to out.
func appendObjects[T runtime.Object](out []runtime.Object, objs []T) []runtime.Object {
	for _, o := range objs {
		out = append(out, o)
	}
	return out
}
