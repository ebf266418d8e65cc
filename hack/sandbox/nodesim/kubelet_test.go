package nodesim

import (
	"context"
	nodeutil "k8s.io/kubernetes/pkg/util/node"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	provisionec2 "github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

func TestClusterTagMatchesLauncher(t *testing.T) {
	if got, want := ClusterTagPrefix+"c", provisionec2.ClusterTagKey("c"); got != want {
		t.Fatalf("simulator looks for %q, launcher tags %q", got, want)
	}
}

func t3large() Hardware {
	return Hardware{InstanceID: "i-1", InstanceType: "t3.large", Zone: "us-east-1a", PrivateIP: "10.0.1.5", Arch: "amd64",
		VCPUs: 2, MemoryMiB: 8192, RootVolumeGiB: 30}
}

func TestResources(t *testing.T) {
	cases := []struct {
		name          string
		settings      func(*KubeletSettings)
		wantCPU       string
		wantMemory    int64 // bytes, allocatable
		wantPods      int64
		wantEphemeral int64
	}{
		{"kubelet defaults", nil, "2", int64(8192<<20)*95/100/1024*1024 - 100<<20, 110, 30 << 30 * 9 / 10},
		{"reservations and max pods", func(s *KubeletSettings) {
			s.MaxPods = 35
			s.KubeReserved = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")}
		}, "1900m", int64(8192<<20)*95/100/1024*1024 - 100<<20 - 256<<20, 35, 30 << 30 * 9 / 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultKubeletSettings()
			if tc.settings != nil {
				tc.settings(&s)
			}
			k, err := NewKubelet(KubeletOptions{NodeName: "n", Config: restConfig(), Hardware: t3large(), Settings: s, Log: klog.Background()})
			if err != nil {
				t.Fatal(err)
			}
			a := k.Allocatable()
			if got := a.Cpu(); got.Cmp(resource.MustParse(tc.wantCPU)) != 0 {
				t.Errorf("cpu %s, want %s", got, tc.wantCPU)
			}
			// Memory is rounded down to whole KiB before the reservations.
			if got := a.Memory().Value(); got/1024 != tc.wantMemory/1024 {
				t.Errorf("memory %d, want %d", got, tc.wantMemory)
			}
			if got := a.Pods().Value(); got != tc.wantPods {
				t.Errorf("pods %d, want %d", got, tc.wantPods)
			}
			if got := a.StorageEphemeral().Value(); got != tc.wantEphemeral {
				t.Errorf("ephemeral-storage %d, want %d", got, tc.wantEphemeral)
			}
		})
	}
}

func TestApplyKubeletConfig(t *testing.T) {
	s := DefaultKubeletSettings()
	err := applyKubeletConfig(&s, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: 58
nodeLeaseDurationSeconds: 20
evictionHard:
  memory.available: 200Mi
  nodefs.available: 15%
systemReserved:
  cpu: 100m
`)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxPods != 58 || s.LeaseDuration != 20*time.Second || s.EvictionHardMemory.String() != "200Mi" ||
		s.EvictionHardNodefsPercent != 15 || s.SystemReserved.Cpu().MilliValue() != 100 {
		t.Errorf("settings %+v", s)
	}
	if err := applyKubeletConfig(&s, "maxPods: [1"); err == nil {
		t.Error("bad YAML accepted")
	}
}

func TestKubeletFlag(t *testing.T) {
	args := []string{"--node-labels=a=b", "--provider-id", "aws:///us-east-1a/i-1", "--max-pods=3"}
	if got := kubeletFlag(args, "provider-id"); got != "aws:///us-east-1a/i-1" {
		t.Errorf("provider-id %q", got)
	}
	if got := kubeletFlag(args, "max-pods"); got != "3" {
		t.Errorf("max-pods %q", got)
	}
	if got := kubeletFlag(args, "cloud-provider"); got != "" {
		t.Errorf("cloud-provider %q", got)
	}
}

// TestPodLifecycle runs a kubelet against a fake API: registration,
// admission (including an OutOfcpu rejection), Running with an IP from the
// pod CIDR, and stop-then-delete on deletion.
func TestPodLifecycle(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	k, err := NewKubelet(KubeletOptions{
		NodeName: "n1", Config: restConfig(), Hardware: t3large(), Settings: DefaultKubeletSettings(),
		Labels: map[string]string{"managed-by": "karpenter"},
		Taints: []corev1.Taint{{Key: "karpenter.sh/unregistered", Effect: corev1.TaintEffectNoExecute}},
		Log:    klog.Background(),
	})
	if err != nil {
		t.Fatal(err)
	}
	k.client = client
	if err := k.Register(ctx); err != nil {
		t.Fatal(err)
	}
	node, err := client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels["managed-by"] != "karpenter" || node.Labels[corev1.LabelHostname] != "n1" || node.Labels[corev1.LabelArchStable] != "amd64" {
		t.Errorf("labels %v", node.Labels)
	}
	if len(node.Spec.Taints) != 1 || nodeutil.IsNodeReady(node) {
		t.Errorf("taints %v, ready %t: want the unregistered taint and not Ready before a pod CIDR", node.Spec.Taints, nodeutil.IsNodeReady(node))
	}
	node.Spec.PodCIDR = "10.244.7.0/24"
	if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.syncStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if !k.Ready() {
		t.Fatal("not Ready with a pod CIDR")
	}

	pod := func(name string, cpu string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "scan", UID: types.UID(name)},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending},
		}
		if _, err := client.CoreV1().Pods("scan").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	get := func(name string) *corev1.Pod {
		p, err := client.CoreV1().Pods("scan").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sync := func(p *corev1.Pod) {
		t.Helper()
		for i := 0; i < 3; i++ {
			if _, err := k.syncPod(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, get(p.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}

	a := pod("a", "1500m")
	sync(a)
	got := get("a")
	if got.Status.Phase != corev1.PodRunning || !netip.MustParsePrefix("10.244.7.0/24").Contains(netip.MustParseAddr(got.Status.PodIP)) {
		t.Fatalf("pod a: phase %s ip %q", got.Status.Phase, got.Status.PodIP)
	}
	if got.Status.HostIP != "10.0.1.5" || len(got.Status.ContainerStatuses) != 1 || !got.Status.ContainerStatuses[0].Ready {
		t.Errorf("pod a status %+v", got.Status)
	}

	b := pod("b", "1")
	sync(b)
	if got := get("b"); got.Status.Phase != corev1.PodFailed || got.Status.Reason != "OutOfcpu" {
		t.Errorf("pod b over allocatable: phase %s reason %q", got.Status.Phase, got.Status.Reason)
	}

	// Deletion: the kubelet stops the containers, reports the terminal
	// phase and deletes with grace 0.
	deleting := get("a")
	deleting.DeletionTimestamp = ptr.To(metav1.NewTime(time.Now().Add(-time.Minute)))
	deleting.DeletionGracePeriodSeconds = ptr.To[int64](30)
	if _, err := k.syncPod(ctx, types.NamespacedName{Namespace: "scan", Name: "a"}, deleting); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("scan").Get(ctx, "a", metav1.GetOptions{}); err == nil {
		t.Error("pod a still exists after its containers stopped")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ips) != 0 {
		t.Errorf("pod IPs still allocated: %v", k.ips)
	}
}

func restConfig() *rest.Config { return &rest.Config{Host: "https://127.0.0.1:1"} }
