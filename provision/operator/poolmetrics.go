package operator

import (
	"k8s.io/client-go/tools/cache"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
)

// initPoolMetrics exports each NodePool's NodeClaim counters at zero as
// soon as the pool is seen (metrics.InitNodePool).
func initPoolMetrics(pools cache.SharedIndexInformer) error {
	_, err := pools.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if p, ok := obj.(*karpv1.NodePool); ok {
				metrics.InitNodePool(p.Name)
			}
		},
	})
	return err
}
