package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
)

// This file's name sorts before seed_test.go: its tests leave the world as
// they found it, for the seed's.

// TestKubeadmControllers: the sandbox's kube-controller-manager runs what
// kubeadm's runs (--controllers=*,bootstrapsigner,tokencleaner), and the
// node simulator runs what they make: DaemonSet pods on every node, a
// StatefulSet whose claim the PV binder binds, a Job's pod; a pod whose
// Secret is missing waits for it, as on a kubelet.
func TestKubeadmControllers(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	c := sandbox.Client
	const ns = "kubeadm-e2e"
	createNamespace(ctx, t, ns)
	if controlplane.Controllers != "*,bootstrapsigner,tokencleaner" {
		t.Errorf("controller manager runs %q, not kubeadm's *,bootstrapsigner,tokencleaner", controlplane.Controllers)
	}
	pause := func(name string) corev1.Container { return pauseContainer(name, "10m", "16Mi") }

	t.Run("a DaemonSet runs a pod on every node", func(t *testing.T) {
		ds := daemonSet(ns, "node-agent", corev1.PodSpec{
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers:  []corev1.Container{pause("agent")},
		})
		if _, err := c.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "a running node-agent pod on every Ready node", 60*time.Second, func() bool {
			nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
			on := runningOn(ctx, ns, "app=node-agent")
			ready := 0
			for i := range nodes.Items {
				if readyStatus(&nodes.Items[i]) != corev1.ConditionTrue {
					continue
				}
				ready++
				if !on[nodes.Items[i].Name] {
					return false
				}
			}
			got, err := c.AppsV1().DaemonSets(ns).Get(ctx, "node-agent", metav1.GetOptions{})
			return err == nil && ready >= 3 && got.Status.NumberReady >= int32(ready)
		})
	})

	t.Run("a StatefulSet's claim is bound and its pod runs", func(t *testing.T) {
		pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-e2e-data"}, Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:              "kubeadm-e2e",
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/kubeadm-e2e"}},
		}}
		if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = c.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
		})
		labels := map[string]string{"app": "db"}
		db := pause("db")
		db.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), ServiceName: "db",
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptr.To[int64](1), Containers: []corev1.Container{db}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: ptr.To("kubeadm-e2e"),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			}}},
		}}
		if _, err := c.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "db-0 running with data-db-0 bound to the PV", 60*time.Second, func() bool {
			pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-db-0", metav1.GetOptions{})
			if err != nil || pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName != pv.Name {
				return false
			}
			got, err := c.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
			return err == nil && got.Status.ReadyReplicas == 1 && len(runningOn(ctx, ns, "app=db")) == 1
		})
	})

	t.Run("a Job's pod runs", func(t *testing.T) {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: ns}, Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				TerminationGracePeriodSeconds: ptr.To[int64](1), Containers: []corev1.Container{pause("work")}}},
		}}
		if _, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "the Job's pod running, the Job active", 60*time.Second, func() bool {
			got, err := c.BatchV1().Jobs(ns).Get(ctx, "batch", metav1.GetOptions{})
			return err == nil && got.Status.Active == 1 && ptr.Deref(got.Status.Ready, 0) == 1 && len(runningOn(ctx, ns, "batch.kubernetes.io/job-name=batch")) == 1
		})
	})

	t.Run("a pod whose Secret is missing waits for it", func(t *testing.T) {
		app := pause("app")
		app.VolumeMounts = []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "needs-secret", Namespace: ns, Labels: map[string]string{"app": "needs-secret"}}, Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1), Containers: []corev1.Container{app},
			Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}},
		}}
		if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "a FailedMount event naming the Secret", 60*time.Second, func() bool {
			events, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=needs-secret,reason=FailedMount"})
			return err == nil && len(events.Items) > 0 && strings.Contains(events.Items[0].Message, `secret "creds" not found`)
		})
		if got, err := c.CoreV1().Pods(ns).Get(ctx, "needs-secret", metav1.GetOptions{}); err != nil || got.Status.Phase != corev1.PodPending || got.Spec.NodeName == "" {
			t.Fatalf("needs-secret: %v, phase %s on %q; want Pending on its node", err, got.Status.Phase, got.Spec.NodeName)
		}
		if _, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"token": "x"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "needs-secret running once the Secret exists", 30*time.Second, func() bool {
			return len(runningOn(ctx, ns, "app=needs-secret")) == 1
		})
	})
}

// runningOn is the set of nodes running a pod of the selector.
func runningOn(ctx context.Context, ns, selector string) map[string]bool {
	pods, err := sandbox.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	out := map[string]bool{}
	if err != nil {
		return out
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = true
		}
	}
	return out
}
