package operator

import (
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// observePodStartup records karpenter_pods_startup_duration_seconds for
// pods that start running on a node fleet-scheduler launched: from the
// pod's creation to the first time it is seen Running.
func observePodStartup(pods cache.SharedIndexInformer, claims karplisters.NodeClaimLister) error {
	_, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*v1.Pod)
			pod, ok2 := newObj.(*v1.Pod)
			if !ok1 || !ok2 || old.Status.Phase == v1.PodRunning || pod.Status.Phase != v1.PodRunning || pod.Spec.NodeName == "" {
				return
			}
			if _, err := claims.Get(pod.Spec.NodeName); err != nil {
				return // not a node fleet-scheduler launched
			}
			metrics.PodsStartupDuration.Observe(time.Since(pod.CreationTimestamp.Time).Seconds())
		},
	})
	return err
}
