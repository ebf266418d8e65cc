package nodesim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"
)

// podLoop watches the pods bound to this node (the kubelet's
// spec.nodeName field selector, which the Node authorizer requires) and
// syncs each.
func (k *Kubelet) podLoop(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.opts.NodeName).String()
		}))
	podInformer := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](50*time.Millisecond, 5*time.Second),
		workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "pods-" + k.opts.NodeName})
	enqueue := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if pod, ok := obj.(*corev1.Pod); ok {
			queue.Add(types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name})
		}
	}
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	defer queue.ShutDown()
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		return
	}
	lister := podInformer.Lister()
	for {
		key, shutdown := queue.Get()
		if shutdown {
			return
		}
		pod, err := lister.Pods(key.Namespace).Get(key.Name)
		if apierrors.IsNotFound(err) {
			pod, err = nil, nil
		}
		var after time.Duration
		if err == nil {
			after, err = k.syncPod(ctx, key, pod)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			k.log.V(2).Info("Pod sync failed; retrying", "pod", key, "err", err)
			queue.AddRateLimited(key)
		case after > 0:
			queue.Forget(key)
			queue.AddAfter(key, after)
		default:
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// syncPod moves one pod along; it returns when to look again.
func (k *Kubelet) syncPod(ctx context.Context, key types.NamespacedName, pod *corev1.Pod) (time.Duration, error) {
	if pod == nil {
		k.forgetPods(key)
		return 0, nil
	}
	k.mu.Lock()
	st := k.pods[pod.UID]
	k.mu.Unlock()

	if pod.DeletionTimestamp != nil {
		return k.stopPod(ctx, pod, st)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		k.release(pod.UID)
		return 0, nil
	}
	if st == nil {
		return k.admitPod(ctx, pod)
	}
	if st.rejected {
		return 0, nil
	}
	if !st.running {
		if wait := time.Until(st.admittedAt.Add(k.opts.PodStartDelay)); wait > 0 {
			return wait, nil
		}
		why, err := k.unmountable(ctx, pod)
		if err != nil {
			return 0, err
		}
		if why != "" {
			// The kubelet's volume manager keeps trying; it says so once per cause.
			if why != st.mountWait {
				st.mountWait = why
				k.log.Info("Pod waits for its volumes", "pod", klogRef(pod), "reason", why)
				k.podEvent(ctx, pod, corev1.EventTypeWarning, "FailedMount", why)
			}
			return mountRetry, nil
		}
		return k.startPod(ctx, pod, st)
	}
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" {
		return k.startPod(ctx, pod, st)
	}
	return 0, nil
}

// admitPod runs the kubelet's resource admission: the pod's requests
// against allocatable less what admitted pods request.
func (k *Kubelet) admitPod(ctx context.Context, pod *corev1.Pod) (time.Duration, error) {
	requests := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	k.mu.Lock()
	used := corev1.ResourceList{}
	count := int64(0)
	for _, st := range k.pods {
		if st.rejected {
			continue
		}
		count++
		for n, q := range st.requests {
			v := used[n]
			v.Add(q)
			used[n] = v
		}
	}
	var reason, message string
	if maxPods := k.allocatable.Pods().Value(); count+1 > maxPods {
		reason, message = "OutOfpods", fmt.Sprintf("Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", count, maxPods)
	}
	for _, n := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		req, ok := requests[n]
		if !ok || reason != "" {
			continue
		}
		u, alloc := used[n], k.allocatable[n]
		total := u.DeepCopy()
		total.Add(req)
		if total.Cmp(alloc) > 0 {
			reason = "OutOf" + string(n)
			if n == corev1.ResourceCPU {
				message = fmt.Sprintf("Node didn't have enough resource: cpu, requested: %d, used: %d, capacity: %d", req.MilliValue(), u.MilliValue(), alloc.MilliValue())
			} else {
				message = fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d", n, req.Value(), u.Value(), alloc.Value())
			}
		}
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	if old, ok := k.byKey[key]; ok && old != pod.UID {
		if st := k.pods[old]; st != nil && st.ip.IsValid() {
			delete(k.ips, st.ip)
		}
		delete(k.pods, old)
	}
	st := &podState{key: key, admittedAt: time.Now(), requests: requests, rejected: reason != ""}
	k.pods[pod.UID] = st
	k.byKey[key] = pod.UID
	k.mu.Unlock()

	if reason != "" {
		k.log.Info("Pod rejected at admission", "pod", klogRef(pod), "reason", reason, "message", message)
		p := pod.DeepCopy()
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason = reason
		p.Status.Message = "Pod was rejected: " + message
		_, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			k.release(pod.UID)
		}
		return 0, err
	}
	return k.opts.PodStartDelay, nil
}

func (k *Kubelet) startPod(ctx context.Context, pod *corev1.Pod, st *podState) (time.Duration, error) {
	k.mu.Lock()
	ip := st.ip
	if !ip.IsValid() && !pod.Spec.HostNetwork {
		if !k.podCIDR.IsValid() {
			k.mu.Unlock()
			return 500 * time.Millisecond, nil // no pod network yet
		}
		var err error
		if ip, err = k.allocateIP(pod.UID); err != nil {
			k.mu.Unlock()
			return 0, err
		}
		st.ip = ip
	}
	k.mu.Unlock()

	hostIP := k.opts.Hardware.PrivateIP
	podIP := hostIP
	if !pod.Spec.HostNetwork {
		podIP = ip.String()
	}
	now := metav1.Now()
	start := metav1.NewTime(st.admittedAt)
	p := pod.DeepCopy()
	s := &p.Status
	s.Phase = corev1.PodRunning
	s.Reason, s.Message = "", ""
	s.HostIP, s.HostIPs = hostIP, []corev1.HostIP{{IP: hostIP}}
	s.PodIP, s.PodIPs = podIP, []corev1.PodIP{{IP: podIP}}
	s.StartTime = &start
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		setPodCondition(s, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	s.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		s.InitContainerStatuses = append(s.InitContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod.UID, c.Name),
			Ready: true, Started: ptr.To(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: start, FinishedAt: now, ContainerID: containerID(pod.UID, c.Name)}},
		})
	}
	s.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		s.ContainerStatuses = append(s.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod.UID, c.Name),
			Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	k.mu.Lock()
	st.running = true
	k.mu.Unlock()
	k.log.V(1).Info("Pod running", "pod", klogRef(pod), "ip", podIP)
	return 0, nil
}

// stopPod stops the containers of a pod being deleted, reports its
// terminal phase and deletes it, as the kubelet's status manager does once
// the containers are gone.
func (k *Kubelet) stopPod(ctx context.Context, pod *corev1.Pod, st *podState) (time.Duration, error) {
	if st != nil && st.running {
		stopAt := pod.DeletionTimestamp.Add(-time.Duration(ptr.Deref(pod.DeletionGracePeriodSeconds, 30)) * time.Second).Add(k.opts.PodStopDelay)
		if wait := time.Until(stopAt); wait > 0 {
			return wait, nil
		}
	}
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed && st != nil && st.running {
		now := metav1.Now()
		p := pod.DeepCopy()
		s := &p.Status
		s.Phase = corev1.PodSucceeded
		for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
			setPodCondition(s, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: now})
		}
		setPodCondition(s, corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionFalse, LastTransitionTime: now})
		for i := range s.ContainerStatuses {
			cs := &s.ContainerStatuses[i]
			started := now
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt
			}
			cs.Ready, cs.Started = false, ptr.To(false)
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: started, FinishedAt: now, ContainerID: cs.ContainerID,
			}}
		}
		if _, err := k.client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, err
	}
	k.release(pod.UID)
	k.log.V(1).Info("Pod deleted", "pod", klogRef(pod))
	return 0, nil
}

func (k *Kubelet) release(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st, ok := k.pods[uid]; ok {
		if st.ip.IsValid() {
			delete(k.ips, st.ip)
		}
		delete(k.pods, uid)
		if k.byKey[st.key] == uid {
			delete(k.byKey, st.key)
		}
	}
}

// forgetPods drops the state of a pod that is gone (deleted by someone
// else, e.g. force-deleted, or after stopPod).
func (k *Kubelet) forgetPods(key types.NamespacedName) {
	k.mu.Lock()
	uid, ok := k.byKey[key]
	k.mu.Unlock()
	if ok {
		k.release(uid)
	}
}

// allocateIP hands out the next free address of the pod CIDR, skipping
// the network and gateway addresses. Call with k.mu held.
func (k *Kubelet) allocateIP(uid types.UID) (netip.Addr, error) {
	addr := k.podCIDR.Masked().Addr().Next().Next()
	for ; k.podCIDR.Contains(addr); addr = addr.Next() {
		if _, used := k.ips[addr]; !used && addr.Next().IsValid() && k.podCIDR.Contains(addr.Next()) {
			k.ips[addr] = uid
			return addr, nil
		}
	}
	return netip.Addr{}, errors.New("pod CIDR exhausted")
}

func setPodCondition(s *corev1.PodStatus, c corev1.PodCondition) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status == c.Status {
				c.LastTransitionTime = s.Conditions[i].LastTransitionTime
			}
			s.Conditions[i] = c
			return
		}
	}
	s.Conditions = append(s.Conditions, c)
}

func containerID(uid types.UID, name string) string {
	return "containerd://" + randomID(string(uid)+"/"+name)
}

func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	return image + "@sha256:" + hex.EncodeToString(sum[:])
}

func klogRef(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }
