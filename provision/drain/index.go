package drain

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Pod informer indexes that the drain and the disruption loop look pods up
// by, so neither scans every pod of the cluster per node.
const (
	// NodeNameIndex indexes pods by spec.nodeName (bound pods only).
	NodeNameIndex = "fleet-scheduler/spec.nodeName"
	// NominatedNodeIndex indexes pods that are not bound yet by
	// status.nominatedNodeName: the pods on their way to a node.
	NominatedNodeIndex = "fleet-scheduler/status.nominatedNodeName"
)

// AddPodIndexers adds NodeNameIndex and NominatedNodeIndex to a pod
// informer. Call it before the informer starts; adding them twice is fine.
func AddPodIndexers(informer cache.SharedIndexInformer) error {
	want := cache.Indexers{}
	have := informer.GetIndexer().GetIndexers()
	if _, ok := have[NodeNameIndex]; !ok {
		want[NodeNameIndex] = func(obj any) ([]string, error) {
			pod, ok := obj.(*v1.Pod)
			if !ok || pod.Spec.NodeName == "" {
				return nil, nil
			}
			return []string{pod.Spec.NodeName}, nil
		}
	}
	if _, ok := have[NominatedNodeIndex]; !ok {
		want[NominatedNodeIndex] = func(obj any) ([]string, error) {
			pod, ok := obj.(*v1.Pod)
			if !ok || pod.Spec.NodeName != "" || pod.Status.NominatedNodeName == "" {
				return nil, nil
			}
			return []string{pod.Status.NominatedNodeName}, nil
		}
	}
	if len(want) == 0 {
		return nil
	}
	return informer.AddIndexers(want)
}

// PodsOnNode returns the pods bound to the node, from an indexer that
// AddPodIndexers prepared. The pods are the cache's: do not modify them.
func PodsOnNode(indexer cache.Indexer, nodeName string) ([]*v1.Pod, error) {
	return byIndex(indexer, NodeNameIndex, nodeName)
}

// PodsNominatedTo returns the unbound pods nominated to the node.
func PodsNominatedTo(indexer cache.Indexer, nodeName string) ([]*v1.Pod, error) {
	return byIndex(indexer, NominatedNodeIndex, nodeName)
}

func byIndex(indexer cache.Indexer, index, key string) ([]*v1.Pod, error) {
	objs, err := indexer.ByIndex(index, key)
	if err != nil {
		return nil, fmt.Errorf("pods by %s=%s: %w", index, key, err)
	}
	out := make([]*v1.Pod, 0, len(objs))
	for _, o := range objs {
		if pod, ok := o.(*v1.Pod); ok {
			out = append(out, pod)
		}
	}
	return out, nil
}
