package catalog

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func assertResources(t *testing.T, what string, got, want corev1.ResourceList) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: missing %s (want %s)", what, name, w.String())
			continue
		}
		if g.Cmp(w) != 0 {
			t.Errorf("%s[%s] = %s, want %s", what, name, g.String(), w.String())
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected %s=%s", what, name, g.String())
		}
	}
}

func TestComputeOverheadAndAllocatable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		capacity    corev1.ResourceList
		kubelet     *KubeletConfig
		kube        corev1.ResourceList
		system      corev1.ResourceList
		eviction    corev1.ResourceList
		allocatable corev1.ResourceList
	}{{
		name:        "m5.large with defaults",
		capacity:    rl("cpu", "2", "memory", "7577Mi", "pods", "110", "ephemeral-storage", "20Gi"),
		kube:        rl("cpu", "70m", "memory", "1465Mi", "ephemeral-storage", "1Gi"),
		system:      rl(),
		eviction:    rl("memory", "100Mi", "ephemeral-storage", "2Gi"),
		allocatable: rl("cpu", "1930m", "memory", "6012Mi", "pods", "110", "ephemeral-storage", "17Gi"),
	}, {
		name:        "one vCPU",
		capacity:    rl("cpu", "1", "memory", "1Gi", "pods", "4", "ephemeral-storage", "10Gi"),
		kube:        rl("cpu", "60m", "memory", "299Mi", "ephemeral-storage", "1Gi"),
		system:      rl(),
		eviction:    rl("memory", "100Mi", "ephemeral-storage", "1Gi"),
		allocatable: rl("cpu", "940m", "memory", "625Mi", "pods", "4", "ephemeral-storage", "8Gi"),
	}, {
		name:        "eight vCPUs",
		capacity:    rl("cpu", "8", "memory", "30310Mi", "pods", "110", "ephemeral-storage", "20Gi"),
		kube:        rl("cpu", "90m", "memory", "1465Mi", "ephemeral-storage", "1Gi"),
		system:      rl(),
		eviction:    rl("memory", "100Mi", "ephemeral-storage", "2Gi"),
		allocatable: rl("cpu", "7910m", "memory", "28745Mi", "pods", "110", "ephemeral-storage", "17Gi"),
	}, {
		name:        "96 vCPUs and a GPU passes through",
		capacity:    rl("cpu", "96", "memory", "100Gi", "pods", "110", "ephemeral-storage", "100Gi", "nvidia.com/gpu", "8"),
		kube:        rl("cpu", "310m", "memory", "1465Mi", "ephemeral-storage", "1Gi"),
		system:      rl(),
		eviction:    rl("memory", "100Mi", "ephemeral-storage", "10Gi"),
		allocatable: rl("cpu", "95690m", "memory", "100835Mi", "pods", "110", "ephemeral-storage", "89Gi", "nvidia.com/gpu", "8"),
	}, {
		name:     "kubelet overrides",
		capacity: rl("cpu", "4", "memory", "16000Mi", "pods", "110", "ephemeral-storage", "100Gi"),
		kubelet: &KubeletConfig{
			KubeReserved:   map[string]string{"cpu": "200m", "memory": "1Gi"},
			SystemReserved: map[string]string{"cpu": "100m", "memory": "500Mi", "ephemeral-storage": "2Gi"},
			EvictionHard:   map[string]string{"memory.available": "5%", "nodefs.available": "15%", "imagefs.available": "20%"},
		},
		kube:        rl("cpu", "200m", "memory", "1Gi", "ephemeral-storage", "1Gi"),
		system:      rl("cpu", "100m", "memory", "500Mi", "ephemeral-storage", "2Gi"),
		eviction:    rl("memory", "800Mi", "ephemeral-storage", "15Gi"),
		allocatable: rl("cpu", "3700m", "memory", "13676Mi", "pods", "110", "ephemeral-storage", "82Gi"),
	}, {
		name:        "absolute eviction thresholds, 100% disables",
		capacity:    rl("cpu", "2", "memory", "4Gi", "pods", "29", "ephemeral-storage", "20Gi"),
		kubelet:     &KubeletConfig{EvictionHard: map[string]string{"memory.available": "300Mi", "nodefs.available": "100%"}},
		kube:        rl("cpu", "70m", "memory", "574Mi", "ephemeral-storage", "1Gi"),
		system:      rl(),
		eviction:    rl("memory", "300Mi", "ephemeral-storage", "0"),
		allocatable: rl("cpu", "1930m", "memory", "3222Mi", "pods", "29", "ephemeral-storage", "19Gi"),
	}, {
		name:        "overhead larger than capacity floors at zero",
		capacity:    rl("cpu", "1", "memory", "512Mi", "pods", "110", "ephemeral-storage", "1Gi"),
		kube:        rl("cpu", "60m", "memory", "1465Mi", "ephemeral-storage", "1Gi"),
		system:      rl(),
		eviction:    rl("memory", "100Mi", "ephemeral-storage", "107374183"),
		allocatable: rl("cpu", "940m", "memory", "0", "pods", "110", "ephemeral-storage", "0"),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ComputeOverhead(tc.capacity, tc.kubelet)
			if err != nil {
				t.Fatal(err)
			}
			assertResources(t, "kubeReserved", o.KubeReserved, tc.kube)
			assertResources(t, "systemReserved", o.SystemReserved, tc.system)
			assertResources(t, "evictionThreshold", o.EvictionThreshold, tc.eviction)
			assertResources(t, "allocatable", Allocatable(tc.capacity, o), tc.allocatable)
		})
	}
}

func TestKubeletConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kc      KubeletConfig
		wantErr string
	}{
		{"empty", KubeletConfig{}, ""},
		{"good", KubeletConfig{MaxPods: ptr.To[int32](58), KubeReserved: map[string]string{"pid": "100"},
			EvictionHard: map[string]string{"nodefs.inodesFree": "5%"}}, ""},
		{"maxPods zero", KubeletConfig{MaxPods: ptr.To[int32](0)}, "maxPods: must be positive"},
		{"unknown reserved resource", KubeletConfig{KubeReserved: map[string]string{"gpu": "1"}}, "kubeReserved[gpu]: unsupported resource"},
		{"bad quantity", KubeletConfig{SystemReserved: map[string]string{"memory": "lots"}}, "systemReserved[memory]:"},
		{"negative", KubeletConfig{KubeReserved: map[string]string{"cpu": "-1"}}, "kubeReserved[cpu]: must not be negative"},
		{"unknown signal", KubeletConfig{EvictionHard: map[string]string{"memory.free": "1Gi"}}, "evictionHard[memory.free]: unsupported signal"},
		{"bad percent", KubeletConfig{EvictionHard: map[string]string{"memory.available": "150%"}}, "evictionHard[memory.available]: invalid percentage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.kc.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if _, err := ComputeOverhead(rl("cpu", "1"), &tc.kc); err == nil {
				t.Fatal("ComputeOverhead accepted an invalid config")
			}
		})
	}
}

func TestMemoryCapacity(t *testing.T) {
	for _, tc := range []struct {
		mib      int64
		overhead float64
		want     string
	}{
		{8192, 0.075, "7577Mi"},
		{2048, 0.075, "1894Mi"},
		{1024, 0, "1Gi"},
		{32768, 0.1, "29491Mi"},
	} {
		got := memoryCapacity(tc.mib, tc.overhead)
		if got.Cmp(resource.MustParse(tc.want)) != 0 {
			t.Errorf("memoryCapacity(%d, %v) = %s, want %s", tc.mib, tc.overhead, got.String(), tc.want)
		}
	}
}
