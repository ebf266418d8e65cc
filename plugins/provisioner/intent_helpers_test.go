package provisioner

import (
	"sort"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// pod is a pod for the test scheduler, not yet created.
func (s *stack) pod(name, cpu string, nodeSelector, labels map[string]string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault, Labels: labels},
		Spec: v1.PodSpec{
			SchedulerName: env.SchedulerName,
			NodeSelector:  nodeSelector,
			Containers: []v1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("128Mi")},
			}}},
		},
	}
}

func (s *stack) create(pod *v1.Pod) *v1.Pod {
	s.t.Helper()
	created, err := s.kube.CoreV1().Pods(pod.Namespace).Create(s.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatalf("creating pod %s: %v", pod.Name, err)
	}
	return created
}

// withClaim mounts a persistent volume claim into the pod.
func (s *stack) withClaim(pod *v1.Pod, claim string) *v1.Pod {
	pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{
		PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
	return pod
}

// createObject creates a StorageClass, PersistentVolume or claim.
func (s *stack) createObject(obj runtime.Object) {
	s.t.Helper()
	var err error
	switch o := obj.(type) {
	case *storagev1.StorageClass:
		_, err = s.kube.StorageV1().StorageClasses().Create(s.ctx, o, metav1.CreateOptions{})
	case *v1.PersistentVolume:
		_, err = s.kube.CoreV1().PersistentVolumes().Create(s.ctx, o, metav1.CreateOptions{})
	case *v1.PersistentVolumeClaim:
		_, err = s.kube.CoreV1().PersistentVolumeClaims(o.Namespace).Create(s.ctx, o, metav1.CreateOptions{})
	default:
		s.t.Fatalf("cannot create %T", obj)
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// boundVolume makes a claim bound to a volume in zone, as the persistent
// volume controller leaves them.
func (s *stack) boundVolume(name, zone string) {
	s.t.Helper()
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: "ebs.csi.aws.com", VolumeHandle: "vol-" + name}},
			ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: metav1.NamespaceDefault, Name: name},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelTopologyZone, Operator: v1.NodeSelectorOpIn, Values: []string{zone}}},
			}}}},
		},
	}
	created, err := s.kube.CoreV1().PersistentVolumes().Create(s.ctx, pv, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	created.Status.Phase = v1.VolumeBound
	if _, err := s.kube.CoreV1().PersistentVolumes().UpdateStatus(s.ctx, created, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault,
			Annotations: map[string]string{"pv.kubernetes.io/bind-completed": "yes"}},
		Spec: v1.PersistentVolumeClaimSpec{VolumeName: pv.Name, StorageClassName: ptr.To(""), AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	createdClaim, err := s.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(s.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	createdClaim.Status.Phase = v1.ClaimBound
	createdClaim.Status.Capacity = pv.Spec.Capacity
	createdClaim.Status.AccessModes = pv.Spec.AccessModes
	if _, err := s.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(s.ctx, createdClaim, metav1.UpdateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// unboundClaim makes a claim of the class that no volume is bound to yet.
func (s *stack) unboundClaim(name, class string) {
	s.createObject(&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class), AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}}})
}

// nominationOf is the pod's nominated node now, or "".
func (s *stack) nominationOf(name string) string {
	pod, err := s.kube.CoreV1().Pods(metav1.NamespaceDefault).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return pod.Status.NominatedNodeName
}

// claimZone waits for the claim's NodeClaim and returns the one zone it
// may launch in; it fails the test if the claim may launch in several.
func (s *stack) claimZone(claim string) string {
	s.t.Helper()
	zones := requirementValues(s.nodeClaim(claim, nil), v1.LabelTopologyZone)
	if zones.Len() != 1 {
		list := sets.List(zones)
		sort.Strings(list)
		s.t.Fatalf("claim %s may launch in zones %v, want it pinned to one", claim, list)
	}
	return sets.List(zones)[0]
}
