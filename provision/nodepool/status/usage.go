package status

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// resourceNodes is the node count in status.resources, as in Karpenter,
// where limits.nodes is checked against it.
const resourceNodes = packing.ResourceNodes

// usage sums the capacity of the pool's NodeClaims and counts them. A claim
// counts once it has launched (status.capacity is set); a planned claim is
// not a node yet. Terminating claims count until they are gone: their
// instances still run.
func (c *Controller) usage(pool string) (v1.ResourceList, *int64, error) {
	claims, err := c.NodeClaims.List(labels.SelectorFromSet(labels.Set{karpv1.NodePoolLabelKey: pool}))
	if err != nil {
		return nil, nil, err
	}
	// Zeros for the usual resources, so an empty pool shows 0, not nothing.
	total := v1.ResourceList{}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourcePods, v1.ResourceEphemeralStorage, resourceNodes} {
		total[name] = resource.MustParse("0")
	}
	var nodes int64
	for _, nc := range claims {
		if len(nc.Status.Capacity) == 0 {
			continue
		}
		nodes++
		for name, q := range nc.Status.Capacity {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
	}
	total[resourceNodes] = *resource.NewQuantity(nodes, resource.DecimalSI)
	return total, &nodes, nil
}
