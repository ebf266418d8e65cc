package nodesim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// unmountable says why the pod's volumes cannot be set up yet, in the
// words of the kubelet's FailedMount event, or "" when they can. It checks
// what the kubelet's volume manager waits for before it starts any
// container: a persistentVolumeClaim bound to a PersistentVolume that
// exists, and each Secret and ConfigMap the pod mounts (directly or in a
// projected volume) unless it is optional. Nothing is mounted: no
// container runs here. The reads are the kubelet's own, allowed by the
// Node authorizer because the pod is bound to this node.
func (k *Kubelet) unmountable(ctx context.Context, pod *corev1.Pod) (string, error) {
	for _, v := range pod.Spec.Volumes {
		why, err := k.volumeSource(ctx, pod.Namespace, v)
		if err != nil || why != "" {
			if why != "" {
				why = fmt.Sprintf("MountVolume.SetUp failed for volume %q : %s", v.Name, why)
			}
			return why, err
		}
	}
	return "", nil
}

func (k *Kubelet) volumeSource(ctx context.Context, ns string, v corev1.Volume) (string, error) {
	switch {
	case v.PersistentVolumeClaim != nil:
		return k.claimBound(ctx, ns, v.PersistentVolumeClaim.ClaimName)
	case v.Secret != nil:
		return k.secretExists(ctx, ns, v.Secret.SecretName, ptr.Deref(v.Secret.Optional, false))
	case v.ConfigMap != nil:
		return k.configMapExists(ctx, ns, v.ConfigMap.Name, ptr.Deref(v.ConfigMap.Optional, false))
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			var why string
			var err error
			switch {
			case s.Secret != nil:
				why, err = k.secretExists(ctx, ns, s.Secret.Name, ptr.Deref(s.Secret.Optional, false))
			case s.ConfigMap != nil:
				why, err = k.configMapExists(ctx, ns, s.ConfigMap.Name, ptr.Deref(s.ConfigMap.Optional, false))
			}
			if err != nil || why != "" {
				return why, err
			}
		}
	}
	return "", nil
}

func (k *Kubelet) claimBound(ctx context.Context, ns, name string) (string, error) {
	pvc, err := k.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Sprintf("persistentvolumeclaim %q not found", name), nil
	}
	if err != nil {
		return "", err
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return fmt.Sprintf("PVC %s/%s has non-bound phase (%q) or empty pvc.Spec.VolumeName (%q)", ns, name, pvc.Status.Phase, pvc.Spec.VolumeName), nil
	}
	if _, err := k.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return fmt.Sprintf("persistentvolume %q not found", pvc.Spec.VolumeName), nil
	} else if err != nil {
		return "", err
	}
	return "", nil
}

func (k *Kubelet) secretExists(ctx context.Context, ns, name string, optional bool) (string, error) {
	_, err := k.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	return missing(err, optional, fmt.Sprintf("secret %q not found", name))
}

func (k *Kubelet) configMapExists(ctx context.Context, ns, name string, optional bool) (string, error) {
	_, err := k.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	return missing(err, optional, fmt.Sprintf("configmap %q not found", name))
}

func missing(err error, optional bool, why string) (string, error) {
	switch {
	case apierrors.IsNotFound(err) && !optional:
		return why, nil
	case err != nil && !apierrors.IsNotFound(err):
		return "", err
	}
	return "", nil
}

// mountRetry is how often a pod waiting for its volumes is looked at again.
const mountRetry = 2 * time.Second

// podEvent records an event on the pod from this kubelet.
func (k *Kubelet) podEvent(ctx context.Context, pod *corev1.Pod, eventType, reason, message string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, APIVersion: "v1",
		},
		Reason: reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: "kubelet", Host: k.opts.NodeName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kubelet", ReportingInstance: k.opts.NodeName,
	}
	if _, err := k.client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		k.log.V(2).Info("Recording event failed", "pod", klogRef(pod), "reason", reason, "err", err)
	}
}
