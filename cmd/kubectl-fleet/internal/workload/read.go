// Package workload reads the objects a plan is made of from files
// (Deployments, StatefulSets, Jobs, ReplicaSets, DaemonSets, Pods, and the
// NodePools and EC2NodeClasses to plan with) and turns workloads into the
// pods their controllers would create.
package workload

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/resource"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	appsdefaults "k8s.io/kubernetes/pkg/apis/apps/v1"
	batchdefaults "k8s.io/kubernetes/pkg/apis/batch/v1"
	coredefaults "k8s.io/kubernetes/pkg/apis/core/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	clientscheme "github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned/scheme"
)

// Scheme knows the kinds a plan reads, with the API server's defaults for
// the built-in ones, so a workload read from a file is what the API server
// would store (replicas 1, schedulerName default-scheduler, ...).
var Scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(clientscheme.AddToScheme(s))
	utilruntime.Must(coredefaults.RegisterDefaults(s))
	utilruntime.Must(appsdefaults.RegisterDefaults(s))
	utilruntime.Must(batchdefaults.RegisterDefaults(s))
	return s
}()

var clusterScoped = map[string]bool{"Namespace": true, "PersistentVolume": true, "StorageClass": true, "PriorityClass": true,
	"NodePool": true, "EC2NodeClass": true, "NodeOverlay": true, "Node": true}

// Set is what the files hold, by what a plan does with it.
type Set struct {
	// Workloads are Deployments, StatefulSets, Jobs, ReplicaSets,
	// DaemonSets and Pods, in the order read.
	Workloads []runtime.Object
	// NodePools, NodeClasses and NodeOverlays are what to plan with.
	NodePools    []*karpv1.NodePool
	NodeClasses  []*ec2v1.EC2NodeClass
	NodeOverlays []*v1alpha1.NodeOverlay
	// Cluster are other objects the scheduler's plugins read: namespaces,
	// volumes and their claims, storage and priority classes,
	// PodDisruptionBudgets, Services.
	Cluster []runtime.Object
	// Ignored counts the objects of other kinds, by kind.
	Ignored map[string]int
}

// Read reads files and directories (recursive with opts.Recursive; "-" is
// standard input) without a server, defaulting namespaced objects that
// name none to namespace.
func Read(opts *resource.FilenameOptions, namespace string) (*Set, error) {
	if err := opts.RequireFilenameOrKustomize(); err != nil {
		return nil, err
	}
	// Unstructured first: a kind this program does not know (a CRD's) is
	// counted and left out rather than failing the read.
	infos, err := resource.NewLocalBuilder().
		Unstructured().
		FilenameParam(false, opts).
		Flatten().
		Do().Infos()
	if err != nil {
		return nil, err
	}
	set := &Set{Ignored: map[string]int{}}
	for _, info := range infos {
		u, ok := info.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		gvk := u.GroupVersionKind()
		if !Scheme.Recognizes(gvk) {
			set.Ignored[gvk.Kind]++
			continue
		}
		obj, err := Scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return nil, fmt.Errorf("%s %s in %s: %w", gvk.Kind, u.GetName(), info.Source, err)
		}
		Scheme.Default(obj)
		// Without a server there is no REST mapping to say which kinds are
		// namespaced; of those read here, these are not.
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() == "" && !clusterScoped[gvk.Kind] {
			m.SetNamespace(namespace)
		}
		set.add(obj, gvk.Kind)
	}
	return set, nil
}

func (s *Set) add(obj runtime.Object, kind string) {
	switch o := obj.(type) {
	case *appsv1.Deployment, *appsv1.StatefulSet, *appsv1.ReplicaSet, *appsv1.DaemonSet, *batchv1.Job, *v1.Pod:
		s.Workloads = append(s.Workloads, o)
	case *karpv1.NodePool:
		s.NodePools = append(s.NodePools, o)
	case *ec2v1.EC2NodeClass:
		s.NodeClasses = append(s.NodeClasses, o)
	case *v1alpha1.NodeOverlay:
		s.NodeOverlays = append(s.NodeOverlays, o)
	case *v1.Namespace, *v1.PersistentVolumeClaim, *v1.PersistentVolume, *storagev1.StorageClass,
		*schedulingv1.PriorityClass, *policyv1.PodDisruptionBudget, *v1.Service:
		s.Cluster = append(s.Cluster, o)
	default:
		s.Ignored[kind]++
	}
}

// IgnoredSummary names the kinds read but not used ("" when none).
func (s *Set) IgnoredSummary() string {
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(s.Ignored)) {
		parts = append(parts, fmt.Sprintf("%d %s", s.Ignored[kind], kind))
	}
	return strings.Join(parts, ", ")
}

// Merge adds another set's objects (the --nodepools files' to the
// workloads').
func (s *Set) Merge(o *Set) {
	s.Workloads = append(s.Workloads, o.Workloads...)
	s.NodePools = append(s.NodePools, o.NodePools...)
	s.NodeClasses = append(s.NodeClasses, o.NodeClasses...)
	s.NodeOverlays = append(s.NodeOverlays, o.NodeOverlays...)
	s.Cluster = append(s.Cluster, o.Cluster...)
	for k, n := range o.Ignored {
		s.Ignored[k] += n
	}
}
