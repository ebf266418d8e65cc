package workload

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// defaultStorageClassAnnotation marks the cluster's default StorageClass.
const defaultStorageClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// statefulSet creates the pods a StatefulSet lacks, named <set>-<ordinal>
// with their hostname, subdomain, identity labels and claims, as the
// StatefulSet controller makes them. (The controller's own pod and claim
// builders are unexported; what the scheduler reads of them is rebuilt
// here.)
func (e *expander) statefulSet(ss *appsv1.StatefulSet) error {
	what := "StatefulSet " + ss.Namespace + "/" + ss.Name
	replicas := int(ptr.Deref(ss.Spec.Replicas, 1))
	start := 0
	if ss.Spec.Ordinals != nil {
		start = int(ss.Spec.Ordinals.Start)
	}
	existing := map[string]bool{}
	if cur := find(e.snap.StatefulSets, ss.Namespace, ss.Name); cur != nil {
		pods := e.activePods(cur.UID)
		if !apiequality.Semantic.DeepEqual(cur.Spec.Template, ss.Spec.Template) {
			e.replace(pods)
			e.note("%s: its pod template differs from the cluster's; the rolling update replaces its %d pods", what, len(pods))
		} else {
			for _, p := range pods {
				existing[p.Name] = true
			}
		}
	}
	owner := ss.DeepCopy()
	owner.UID = types.UID("planned-sts-" + ss.Namespace + "-" + ss.Name)
	ref := metav1.NewControllerRef(owner, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
	have := 0
	for i := start; i < start+replicas; i++ {
		name := ss.Name + "-" + strconv.Itoa(i)
		if existing[name] {
			have++
			continue
		}
		tmpl := ss.Spec.Template.DeepCopy()
		if tmpl.Labels == nil {
			tmpl.Labels = map[string]string{}
		}
		tmpl.Labels[appsv1.StatefulSetPodNameLabel] = name
		tmpl.Labels[appsv1.PodIndexLabel] = strconv.Itoa(i)
		pod, err := e.newPod(what, tmpl, owner, ref, name)
		if err != nil {
			return err
		}
		pod.Spec.Hostname, pod.Spec.Subdomain = name, ss.Spec.ServiceName
		if err := e.claims(ss, pod, i); err != nil {
			return err
		}
	}
	if have > 0 {
		e.note("%s: %d of its %d pods run already", what, have, replicas)
	}
	return nil
}

// claims mounts each volumeClaimTemplate's claim <template>-<set>-<ordinal>
// into the pod, and creates the claims that do not exist yet.
func (e *expander) claims(ss *appsv1.StatefulSet, pod *v1.Pod, ordinal int) error {
	for _, t := range ss.Spec.VolumeClaimTemplates {
		name := fmt.Sprintf("%s-%s-%d", t.Name, ss.Name, ordinal)
		volume := v1.Volume{Name: t.Name, VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}
		replaced := false
		for i, v := range pod.Spec.Volumes {
			if v.Name == t.Name {
				pod.Spec.Volumes[i], replaced = volume, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, volume)
		}
		if find(e.snap.PVCs, ss.Namespace, name) != nil {
			continue
		}
		claim := &v1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ss.Namespace, Labels: t.Labels, Annotations: t.Annotations,
				UID: types.UID("planned-pvc-" + ss.Namespace + "-" + name)},
			Spec:   *t.Spec.DeepCopy(),
			Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
		}
		if claim.Spec.StorageClassName == nil {
			class := e.defaultStorageClass()
			if class == nil {
				return fmt.Errorf("StatefulSet %s/%s: volumeClaimTemplate %q names no storageClassName and the cluster has no default StorageClass", ss.Namespace, ss.Name, t.Name)
			}
			claim.Spec.StorageClassName = ptr.To(class.Name)
		}
		e.out.Claims = append(e.out.Claims, claim)
	}
	return nil
}

func (e *expander) defaultStorageClass() *storagev1.StorageClass {
	for _, c := range e.snap.StorageClasses {
		if c.Annotations[defaultStorageClassAnnotation] == "true" {
			return c
		}
	}
	return nil
}
