package packing

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// NodeInfo builds the node a claim would become, for the scheduler's own
// Filter plugins: the cheapest option's labels, the pool's taints, the
// smallest allocatable among the options and the pool's daemon pods. Pods
// planned onto the claim are the caller's to add.
func NodeInfo(name string, pool *Pool, options []*PoolOption) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pool.Daemons...)
	ni.SetNode(ClaimNode(name, pool, options))
	return ni
}

// ClaimNode is the node object a claim would become: the cheapest
// option's labels and the claim's name as hostname, the pool's taints, and
// the smallest allocatable among the options, Ready.
func ClaimNode(name string, pool *Pool, options []*PoolOption) *v1.Node {
	rep := options[0]
	labels := make(map[string]string, len(rep.Node.Labels)+1)
	for k, v := range rep.Node.Labels {
		labels[k] = v
	}
	labels[v1.LabelHostname] = name
	allocatable := ResourceList(MinAllocatable(options))
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       v1.NodeSpec{Taints: pool.Taints},
		Status: v1.NodeStatus{
			Capacity:    allocatable,
			Allocatable: allocatable,
			Conditions:  []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}
	return node
}
