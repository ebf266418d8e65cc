package provisioner

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// TestDaemonSetOverhead: DaemonSets count on the options they would run on,
// against the real apiserver and scheduler. (test/e2e runs a real
// DaemonSet controller and node; here the decision alone is looked at.)
func TestDaemonSetOverhead(t *testing.T) {
	s := startStack(t)
	s.run(t, "a daemon on every option of the pool", s.testDaemonEverywhere)
	s.run(t, "a daemon on one instance type counts on that type only", s.testDaemonOnSomeOptions)
}

// daemonSet makes a 1 cpu DaemonSet for the pool labelled pool=<name>,
// tolerating its taint, on the instance types given (all when none).
func (s *stack) daemonSet(name, pool string, types ...string) {
	s.t.Helper()
	labels := map[string]string{"daemon": name}
	spec := v1.PodSpec{
		NodeSelector: map[string]string{"daemon-test": pool},
		Tolerations:  []v1.Toleration{{Key: "daemon-test", Operator: v1.TolerationOpExists}},
		Containers: []v1.Container{{Name: "agent", Image: "registry.k8s.io/pause:3.10", Resources: v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("64Mi")}}}},
	}
	if len(types) > 0 {
		spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
			NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{
				{Key: v1.LabelInstanceTypeStable, Operator: v1.NodeSelectorOpIn, Values: types}}}}}}}
	}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: v1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
	}}
	if _, err := s.kube.AppsV1().DaemonSets(ds.Namespace).Create(s.ctx, ds, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	// The pools see it once the plugin's informer has it.
	s.eventually("daemonset "+name+" in the pools", func() bool {
		for _, p := range s.state.Load().pools.Pools() {
			if p.Name != pool {
				continue
			}
			for _, d := range p.Daemons {
				if d.OwnerReferences[0].Name == name {
					return true
				}
			}
			for _, o := range p.Options {
				if o.DaemonRequests() != nil {
					return true
				}
			}
		}
		return false
	})
}

func (s *stack) daemonPool(name string) {
	s.createPool(poolSpec{name: name, labels: map[string]string{"daemon-test": name},
		taints: []v1.Taint{{Key: "daemon-test", Value: name, Effect: v1.TaintEffectNoSchedule}},
		requirements: []karpv1.NodeSelectorRequirementWithMinValues{
			req(v1.LabelInstanceTypeStable, v1.NodeSelectorOpIn, "c5.large", "c5.xlarge"),
			req(karpv1.CapacityTypeLabelKey, v1.NodeSelectorOpIn, karpv1.CapacityTypeOnDemand),
		}})
}

// daemonPod is a 1.5 cpu pod for the pool: c5.large (1.93 cpu allocatable)
// holds it alone, not with a 1 cpu daemon.
func (s *stack) daemonPod(name, pool string) {
	s.createPod(podSpec{name: name, cpu: "1500m", memory: "256Mi", nodeSelector: map[string]string{"daemon-test": pool},
		tolerations: []v1.Toleration{{Key: "daemon-test", Operator: v1.TolerationOpExists}}})
}

func (s *stack) testDaemonEverywhere(t *testing.T) {
	s.daemonPool("everywhere")
	s.daemonSet("agent", "everywhere")
	s.daemonPod("with-agent", "everywhere")
	nc := s.launched(s.nominated("with-agent"))
	types := requirementValues(nc, v1.LabelInstanceTypeStable)
	if !types.Equal(sets.New("c5.xlarge")) {
		t.Errorf("claim types %v, want only c5.xlarge: 1.5 cpu + the daemon's 1 cpu", sets.List(types))
	}
	if cpu := nc.Spec.Resources.Requests[v1.ResourceCPU]; cpu.MilliValue() != 2500 {
		t.Errorf("claim requests %s cpu, want 2500m (the pod and its daemon)", cpu.String())
	}
}

func (s *stack) testDaemonOnSomeOptions(t *testing.T) {
	// On c5.xlarge only: c5.large keeps its room, so it is chosen.
	s.daemonPool("xlarge-only")
	s.daemonSet("xlarge-agent", "xlarge-only", "c5.xlarge")
	s.daemonPod("beside-xlarge-agent", "xlarge-only")
	nc := s.launched(s.nominated("beside-xlarge-agent"))
	if got := nc.Labels[v1.LabelInstanceTypeStable]; got != "c5.large" {
		t.Errorf("launched as %s, want c5.large: the daemon does not run there", got)
	}
	if types := requirementValues(nc, v1.LabelInstanceTypeStable); !types.Has("c5.xlarge") {
		t.Errorf("claim types %v: c5.xlarge holds the pod and its daemon, it must stay a choice", sets.List(types))
	}

	// On c5.large only: it no longer holds the pod, c5.xlarge does.
	s.daemonPool("large-only")
	s.daemonSet("large-agent", "large-only", "c5.large")
	s.daemonPod("beside-large-agent", "large-only")
	nc = s.launched(s.nominated("beside-large-agent"))
	if types := requirementValues(nc, v1.LabelInstanceTypeStable); !types.Equal(sets.New("c5.xlarge")) {
		t.Errorf("claim types %v, want only c5.xlarge: on c5.large the daemon leaves 930m", sets.List(types))
	}
}
