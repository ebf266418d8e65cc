package workload

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/apis/scheduling"
	schedulingapiv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	"k8s.io/kubernetes/pkg/controller"
	"k8s.io/kubernetes/pkg/controller/daemon"
	daemonutil "k8s.io/kubernetes/pkg/controller/daemon/util"
	deploymentutil "k8s.io/kubernetes/pkg/controller/deployment/util"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/cmd/kubectl-fleet/internal/cluster"
)

// OriginAnnotation on a planned pod names the workload it comes from.
const OriginAnnotation = "fleet-scheduler.io/planned-from"

// Expansion is what applying the workloads would add to the cluster.
type Expansion struct {
	// Pods are the pods the controllers would create, in order.
	Pods []*v1.Pod
	// Replaced are existing pods the new specs replace (a changed
	// template rolls them out): the plan leaves them out of the cluster.
	Replaced map[types.UID]bool
	// DaemonSets run on every node the pools launch that they select.
	DaemonSets []*appsv1.DaemonSet
	// Claims are the PersistentVolumeClaims StatefulSets would create.
	Claims []*v1.PersistentVolumeClaim
	// Notes say what was assumed, per workload.
	Notes []string
}

// expander holds the cluster a workload is expanded against (empty
// offline).
type expander struct {
	snap    *cluster.Snapshot
	classes map[string]*schedulingv1.PriorityClass
	out     *Expansion
}

// Expand turns the set's workloads into pods as their controllers would
// create them, counting the pods a workload of the same name already has
// in snap (nil: no cluster).
func Expand(set *Set, snap *cluster.Snapshot) (*Expansion, error) {
	if snap == nil {
		snap = &cluster.Snapshot{}
	}
	e := &expander{snap: snap, classes: map[string]*schedulingv1.PriorityClass{}, out: &Expansion{Replaced: map[types.UID]bool{}}}
	for _, pc := range schedulingapiv1.SystemPriorityClasses() {
		e.classes[pc.Name] = pc
	}
	for _, pc := range snap.PriorityClasses {
		e.classes[pc.Name] = pc
	}
	for _, o := range set.Cluster {
		if pc, ok := o.(*schedulingv1.PriorityClass); ok {
			e.classes[pc.Name] = pc
		}
	}
	for _, obj := range set.Workloads {
		var err error
		switch w := obj.(type) {
		case *appsv1.Deployment:
			err = e.deployment(w)
		case *appsv1.ReplicaSet:
			err = e.replicaSet(w)
		case *appsv1.StatefulSet:
			err = e.statefulSet(w)
		case *batchv1.Job:
			err = e.job(w)
		case *appsv1.DaemonSet:
			err = e.daemonSet(w)
		case *v1.Pod:
			err = e.pod(w)
		}
		if err != nil {
			return nil, err
		}
	}
	return e.out, nil
}

func (e *expander) deployment(d *appsv1.Deployment) error {
	what := "Deployment " + d.Namespace + "/" + d.Name
	replicas := int(ptr.Deref(d.Spec.Replicas, 1))
	var collisions *int32
	var newRS *appsv1.ReplicaSet
	var active []*v1.Pod
	if cur := find(e.snap.Deployments, d.Namespace, d.Name); cur != nil {
		owned := ownedBy(e.snap.ReplicaSets, cur.UID)
		newRS = deploymentutil.FindNewReplicaSet(d, owned)
		collisions = cur.Status.CollisionCount
		for _, rs := range owned {
			pods := e.activePods(rs.UID)
			if newRS != nil && rs.UID == newRS.UID {
				active = pods
				continue
			}
			e.replace(pods) // the rollout takes old ReplicaSets' pods away
		}
		if newRS == nil {
			e.note("%s: its pod template differs from the cluster's; the rollout replaces its %d running pods", what, countActive(e, owned))
		}
	}
	hash := controller.ComputeHash(&d.Spec.Template, collisions)
	if newRS != nil {
		hash = newRS.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-" + hash, Namespace: d.Namespace, UID: types.UID("planned-" + d.Name + "-" + hash)}}
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	return e.replicas(what, rs, "ReplicaSet", tmpl, replicas, len(active))
}

func (e *expander) replicaSet(rs *appsv1.ReplicaSet) error {
	what := "ReplicaSet " + rs.Namespace + "/" + rs.Name
	existing := 0
	if cur := find(e.snap.ReplicaSets, rs.Namespace, rs.Name); cur != nil {
		existing = len(e.activePods(cur.UID))
	}
	return e.replicas(what, rs, "ReplicaSet", &rs.Spec.Template, int(ptr.Deref(rs.Spec.Replicas, 1)), existing)
}

// replicas creates the pods a ReplicaSet adds to reach want from have.
func (e *expander) replicas(what string, owner metav1.Object, kind string, tmpl *v1.PodTemplateSpec, want, have int) error {
	if have > 0 {
		e.note("%s: %d of its %d replicas run already", what, min(have, want), want)
	}
	ref := metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind(kind))
	for range max(0, want-have) {
		if _, err := e.newPod(what, tmpl, owner.(runtime.Object), ref, ""); err != nil {
			return err
		}
	}
	return nil
}

func (e *expander) job(j *batchv1.Job) error {
	what := "Job " + j.Namespace + "/" + j.Name
	parallel := int(ptr.Deref(j.Spec.Parallelism, 1))
	if j.Spec.Completions != nil {
		parallel = min(parallel, int(*j.Spec.Completions))
	}
	have := 0
	if cur := find(e.snap.Jobs, j.Namespace, j.Name); cur != nil {
		have = len(e.activePods(cur.UID))
		parallel = max(0, parallel-int(cur.Status.Succeeded))
	}
	uid := types.UID("planned-job-" + j.Namespace + "-" + j.Name)
	tmpl := j.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	// What the API server adds to a Job's template.
	tmpl.Labels[batchv1.JobNameLabel], tmpl.Labels[batchv1.ControllerUidLabel] = j.Name, string(uid)
	owner := j.DeepCopy()
	owner.UID = uid
	if have > 0 {
		e.note("%s: %d of its %d parallel pods run already", what, min(have, parallel), parallel)
	}
	ref := metav1.NewControllerRef(owner, batchv1.SchemeGroupVersion.WithKind("Job"))
	for range max(0, parallel-have) {
		if _, err := e.newPod(what, tmpl, owner, ref, ""); err != nil {
			return err
		}
	}
	return nil
}

// daemonSet adds the DaemonSet to the pools' overhead and, on each
// existing node the DaemonSet controller would run it on, its pod pinned
// there, as the controller pins them.
func (e *expander) daemonSet(ds *appsv1.DaemonSet) error {
	what := "DaemonSet " + ds.Namespace + "/" + ds.Name
	e.out.DaemonSets = append(e.out.DaemonSets, ds)
	if cur := find(e.snap.DaemonSets, ds.Namespace, ds.Name); cur != nil {
		if apiequality.Semantic.DeepEqual(cur.Spec.Template, ds.Spec.Template) {
			e.note("%s: runs already with this template", what)
			return nil
		}
		e.replace(e.activePods(cur.UID))
	}
	owner := ds.DeepCopy()
	owner.UID = types.UID("planned-ds-" + ds.Namespace + "-" + ds.Name)
	ref := metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))
	for _, node := range e.snap.Nodes {
		if run, _ := daemon.NodeShouldRunDaemonPod(klog.Background(), node, ds); !run {
			continue
		}
		pod, err := e.newPod(what, &ds.Spec.Template, owner, ref, "")
		if err != nil {
			return err
		}
		pod.Spec.Affinity = daemonutil.ReplaceDaemonSetPodNodeNameNodeAffinity(pod.Spec.Affinity, node.Name)
		daemonutil.AddOrUpdateDaemonPodTolerations(&pod.Spec)
	}
	return nil
}

func (e *expander) pod(p *v1.Pod) error {
	what := "Pod " + p.Namespace + "/" + p.Name
	if cur := find(e.snap.Pods, p.Namespace, p.Name); cur != nil {
		e.note("%s: exists already; not planned again", what)
		return nil
	}
	pod := p.DeepCopy()
	if pod.Name == "" && pod.GenerateName != "" {
		pod.Name = names.SimpleNameGenerator.GenerateName(pod.GenerateName)
	}
	if err := e.admit(what, pod); err != nil {
		return err
	}
	e.out.Pods = append(e.out.Pods, pod)
	return nil
}

// newPod is the pod a controller creates from tmpl (name: its
// generateName or the given name), after admission's priority.
func (e *expander) newPod(what string, tmpl *v1.PodTemplateSpec, owner runtime.Object, ref *metav1.OwnerReference, name string) (*v1.Pod, error) {
	pod, err := controller.GetPodFromTemplate(tmpl, owner, ref)
	if err != nil {
		return nil, err
	}
	pod.Namespace = owner.(metav1.Object).GetNamespace()
	pod.Name = name
	if name == "" {
		pod.Name = names.SimpleNameGenerator.GenerateName(pod.GenerateName)
	}
	if err := e.admit(what, pod); err != nil {
		return nil, err
	}
	e.out.Pods = append(e.out.Pods, pod)
	return pod, nil
}

// admit does what admission would to a new pod that the scheduler sees:
// the priority of its PriorityClass (or the global default).
func (e *expander) admit(what string, pod *v1.Pod) error {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[OriginAnnotation] = what
	name := pod.Spec.PriorityClassName
	var pc *schedulingv1.PriorityClass
	if name == "" {
		for _, c := range e.classes {
			if c.GlobalDefault {
				pc = c
			}
		}
	} else if pc = e.classes[name]; pc == nil {
		return fmt.Errorf("%s: PriorityClass %q does not exist: create it, or drop spec.template.spec.priorityClassName", what, name)
	}
	if pc == nil {
		pod.Spec.Priority = ptr.To[int32](scheduling.DefaultPriorityWhenNoDefaultClassExists)
		return nil
	}
	pod.Spec.PriorityClassName, pod.Spec.Priority = pc.Name, ptr.To(pc.Value)
	if pc.PreemptionPolicy != nil {
		pod.Spec.PreemptionPolicy = pc.PreemptionPolicy
	}
	return nil
}

func (e *expander) note(format string, args ...any) {
	e.out.Notes = append(e.out.Notes, fmt.Sprintf(format, args...))
}

// activePods are the pods owner controls that are not finished or going.
func (e *expander) activePods(owner types.UID) []*v1.Pod {
	var out []*v1.Pod
	for _, p := range e.snap.Pods {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == owner && controller.IsPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

func (e *expander) replace(pods []*v1.Pod) {
	for _, p := range pods {
		e.out.Replaced[p.UID] = true
	}
}

func countActive(e *expander, owners []*appsv1.ReplicaSet) int {
	n := 0
	for _, rs := range owners {
		n += len(e.activePods(rs.UID))
	}
	return n
}

// ownedBy are the ReplicaSets owner controls.
func ownedBy(all []*appsv1.ReplicaSet, owner types.UID) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		if ref := metav1.GetControllerOfNoCopy(rs); ref != nil && ref.UID == owner {
			out = append(out, rs)
		}
	}
	return out
}

func find[T metav1.Object](all []T, namespace, name string) T {
	var zero T
	for _, o := range all {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return zero
}
