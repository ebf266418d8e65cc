package provisioner

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

// Pods of one owner with one template (a Deployment's replicas) are judged
// alike: a claim that turned one of them down turns the next down too,
// until the claim changes. Remembering that makes a burst of replicas cost
// one search, not one per replica over the same full claims.

// maxShapes bounds the memory kept; past it, everything is forgotten.
const maxShapes = 4096

type shapes struct {
	byKey map[string]*shape
}

// shape remembers, per claim, the claim's version when it turned the
// shape's pods down.
type shape struct {
	rejectedAt map[*claim]uint64
}

func newShapes() *shapes { return &shapes{byKey: map[string]*shape{}} }

// get returns the shape for key at a relaxation level; a pod with no
// shape key gets a shape of its own that nothing else shares.
func (s *shapes) get(key string, relaxed int) *shape {
	if key == "" {
		return &shape{rejectedAt: map[*claim]uint64{}}
	}
	key = fmt.Sprintf("%s/%d", key, relaxed)
	sh, ok := s.byKey[key]
	if !ok {
		if len(s.byKey) >= maxShapes {
			s.byKey = map[string]*shape{}
		}
		sh = &shape{rejectedAt: map[*claim]uint64{}}
		s.byKey[key] = sh
	}
	return sh
}

// forget drops what every shape knows of a claim that went away.
func (s *shapes) forget(c *claim) {
	for _, sh := range s.byKey {
		delete(sh.rejectedAt, c)
	}
}

func (sh *shape) rejected(c *claim) bool {
	v, ok := sh.rejectedAt[c]
	return ok && v == c.version
}

func (sh *shape) reject(c *claim) { sh.rejectedAt[c] = c.version }

// shapeKey names the pods made from one template with the same requests:
// the controller's UID and the template hash its pods carry. Pods with
// volumes get none (a StatefulSet's pods differ by their claims), nor do
// pods without a controller.
func shapeKey(pod *v1.Pod, need *framework.Resource) string {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return ""
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			return ""
		}
	}
	hash := pod.Labels["pod-template-hash"] + pod.Labels["controller-revision-hash"]
	return fmt.Sprintf("%s/%s/%d/%d/%d", owner.UID, hash, need.MilliCPU, need.Memory, need.EphemeralStorage)
}
