package metrics

import (
	"sync"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	karplisters "github.com/fleet-scheduler/fleet-scheduler/provision/client/listers/karpenter/v1"
)

// Karpenter v1's NodePool gauges, read from the NodePools at scrape time:
// usage is the pool's status.resources (what its launched claims hold,
// "nodes" among them), limit its spec.limits. usage / limit near 1 is a
// pool that will soon launch nothing more.
var (
	nodePoolUsageDesc = metrics.NewDesc(namespace+"_nodepools_usage",
		"The amount of resources that have been provisioned for a nodepool, by nodepool and resource type (cpu in cores, memory in bytes).",
		[]string{"nodepool", "resource_type"}, nil, metrics.ALPHA, "")
	nodePoolLimitDesc = metrics.NewDesc(namespace+"_nodepools_limit",
		"Limits specified on the nodepool that restrict the quantity of resources provisioned, by nodepool and resource type.",
		[]string{"nodepool", "resource_type"}, nil, metrics.ALPHA, "")
)

// NodePoolUsageName and NodePoolLimitName are the gauges' names.
const (
	NodePoolUsageName = namespace + "_nodepools_usage"
	NodePoolLimitName = namespace + "_nodepools_limit"
)

type nodePoolCollector struct {
	metrics.BaseStableCollector
	pools karplisters.NodePoolLister
}

func (c *nodePoolCollector) DescribeWithStability(ch chan<- *metrics.Desc) {
	ch <- nodePoolUsageDesc
	ch <- nodePoolLimitDesc
}

func (c *nodePoolCollector) CollectWithStability(ch chan<- metrics.Metric) {
	pools, err := c.pools.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pools {
		for name, q := range p.Status.Resources {
			ch <- metrics.NewLazyConstMetric(nodePoolUsageDesc, metrics.GaugeValue, q.AsApproximateFloat64(), p.Name, string(name))
		}
		for name, q := range p.Spec.Limits {
			ch <- metrics.NewLazyConstMetric(nodePoolLimitDesc, metrics.GaugeValue, q.AsApproximateFloat64(), p.Name, string(name))
		}
	}
}

var nodePoolsOnce sync.Once

// RegisterNodePools exports karpenter_nodepools_usage and
// karpenter_nodepools_limit from the NodePools the lister holds. The first
// call's lister is used: one process has one set of NodePools.
func RegisterNodePools(pools karplisters.NodePoolLister) {
	nodePoolsOnce.Do(func() {
		legacyregistry.CustomMustRegister(&nodePoolCollector{pools: pools})
	})
}
