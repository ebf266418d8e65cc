package packing

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// Holding narrows options to those that can hold pods on top of base (what
// a node of the pool runs anyway, its DaemonSet pods, and what a claim
// already holds): each option must admit every pod (node selector and
// required node affinity) and have room for base plus their requests. It
// returns them with that total. It is the one narrowing of a node-to-be's
// options: the Provisioner packing a pod onto a claim, a replacement
// planned for a node's pods, a static pool's node. When every option
// holds, opts itself comes back: callers must not modify the result.
func Holding(opts []*PoolOption, base *framework.Resource, pods ...*v1.Pod) ([]*PoolOption, *framework.Resource) {
	need := Sum()
	if base != nil {
		Add(need, base)
	}
	for _, p := range pods {
		opts = AdmittingPod(opts, p)
		Add(need, PodRequests(p))
	}
	return WithRoomFor(opts, need), need
}
