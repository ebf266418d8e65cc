// Package clients connects to an API server with the two clientsets
// fleet-scheduler and kubectl fleet use: Kubernetes' and karpenter's.
package clients

import (
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/fleet-scheduler/fleet-scheduler/provision/client/clientset/versioned"
)

// New builds both clientsets from cfg. The karpenter one speaks JSON
// whatever cfg asks for: custom resources have no protobuf form, and the
// scheduler's config may ask for protobuf.
func New(cfg *rest.Config) (*kubernetes.Clientset, *versioned.Clientset, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	jsonCfg := rest.CopyConfig(cfg)
	jsonCfg.ContentType = "application/json"
	karp, err := versioned.NewForConfig(jsonCfg)
	if err != nil {
		return nil, nil, err
	}
	return kube, karp, nil
}
