package provisioner

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// TestMakeRoomMovesAPodInsteadOfOpeningAClaim: two pods that may not share
// a node, and a claim filled before the second arrives. Rather than a third
// claim, a pod moves off the full claim onto the first anti-affine pod's
// claim, the second anti-affine pod takes the room, and the moved pod is
// retried and nominated where it went.
func TestMakeRoomMovesAPodInsteadOfOpeningAClaim(t *testing.T) {
	mk := func(name, cpu, app string, antiDB bool) *v1.Pod {
		pod := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault, UID: types.UID(name), Labels: map[string]string{"app": app}},
			Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "pause", Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
				v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse("128Mi")}}}}},
		}
		if antiDB {
			pod.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}, TopologyKey: v1.LabelHostname,
			}}}}
		}
		return pod
	}
	// Instance types of 1 to 4 vCPU (3.9 allocatable at most).
	pool := karpenterMixPoolOf("small", 4, nil)
	pods := []*v1.Pod{mk("web-1", "2", "web", false), mk("web-2", "1500m", "web", false), mk("db-1", "500m", "db", true), mk("db-2", "1", "db", true)}
	run := newCluster(t, []*packing.Pool{pool}, pods, []*v1.Node{controlPlane()}, nil)
	defer run.close()
	run.decide(len(pods))

	p := run.p
	p.mu.Lock()
	web1, web2, db1, db2 := p.podOn["web-1"], p.podOn["web-2"], p.podOn["db-1"], p.podOn["db-2"]
	claims := len(p.claims)
	moved := web1 != nil && web1.pods["web-1"].moved
	p.mu.Unlock()
	if claims != 2 {
		t.Fatalf("%d claims, want 2: db-2 should take room made on the web pods' claim", claims)
	}
	if db2 != web2 || db1 == db2 {
		t.Fatalf("db-2 is on %v, want the claim web-2 is on; db-1 on %v", db2.name, db1.name)
	}
	if web1 != db1 || !moved {
		t.Fatalf("web-1 is on %v (moved %v), want it moved onto db-1's claim", web1.name, moved)
	}
	// The moved pod is retried, judged by the Filter plugins on its new
	// claim, and nominated there.
	run.settle()
	pi := run.queue.NominatedPodsForNode(db1.name)
	found := false
	for _, n := range pi {
		found = found || n.GetPod().Name == "web-1"
	}
	if !found {
		t.Fatalf("web-1 was not nominated to %s after its retry", db1.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.podOn["web-1"].pods["web-1"]; m.moved {
		t.Fatal("web-1 still marked moved after its retry")
	}
}
