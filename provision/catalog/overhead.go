package catalog

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// KubeletConfig is the part of an EC2NodeClass's spec.kubelet that changes
// what a node can hold. Map keys and values use kubelet's own spelling.
type KubeletConfig struct {
	MaxPods        *int32
	KubeReserved   map[string]string
	SystemReserved map[string]string
	EvictionHard   map[string]string
}

// Overhead is what kubelet keeps back from a node's capacity.
type Overhead struct {
	KubeReserved      corev1.ResourceList
	SystemReserved    corev1.ResourceList
	EvictionThreshold corev1.ResourceList
}

// Eviction signals that reduce allocatable.
const (
	SignalMemoryAvailable = "memory.available"
	SignalNodeFSAvailable = "nodefs.available"
)

var (
	reservedKeys = map[string]bool{"cpu": true, "memory": true, "ephemeral-storage": true, "pid": true}
	evictionKeys = map[string]bool{
		SignalMemoryAvailable: true, SignalNodeFSAvailable: true, "nodefs.inodesFree": true,
		"imagefs.available": true, "imagefs.inodesFree": true, "pid.available": true,
	}
	defaultEvictionMemory = resource.MustParse("100Mi")
	defaultEvictionNodeFS = "10%"
	defaultKubeReservedFS = resource.MustParse("1Gi")
)

// cpuReservedSteps is the kube-reserved CPU formula Karpenter documents:
// 6% of the first core, 1% of the second, 0.5% of the third and fourth and
// 0.25% of every core above four.
var cpuReservedSteps = []struct {
	fromMilli, toMilli int64
	fraction           float64
}{
	{0, 1000, 0.06},
	{1000, 2000, 0.01},
	{2000, 4000, 0.005},
	{4000, math.MaxInt64, 0.0025},
}

// Validate checks keys and values the way kubelet would read them.
func (k *KubeletConfig) Validate() error {
	if k.MaxPods != nil && *k.MaxPods < 1 {
		return fmt.Errorf("maxPods: must be positive, got %d", *k.MaxPods)
	}
	for _, f := range []struct {
		name string
		m    map[string]string
	}{{"kubeReserved", k.KubeReserved}, {"systemReserved", k.SystemReserved}} {
		for _, key := range slices.Sorted(maps.Keys(f.m)) {
			if !reservedKeys[key] {
				return fmt.Errorf("%s[%s]: unsupported resource", f.name, key)
			}
			q, err := resource.ParseQuantity(f.m[key])
			if err != nil {
				return fmt.Errorf("%s[%s]: %w", f.name, key, err)
			}
			if q.Sign() < 0 {
				return fmt.Errorf("%s[%s]: must not be negative", f.name, key)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(k.EvictionHard)) {
		if !evictionKeys[key] {
			return fmt.Errorf("evictionHard[%s]: unsupported signal", key)
		}
		if _, err := evictionAmount(resource.MustParse("1"), k.EvictionHard[key]); err != nil {
			return fmt.Errorf("evictionHard[%s]: %w", key, err)
		}
	}
	return nil
}

// ComputeOverhead is kubelet's reservation for a node with this capacity:
// kube-reserved by Karpenter's formula (CPU by the steps above, memory
// 11Mi per pod + 255Mi, 1Gi ephemeral storage) unless kc.KubeReserved sets a
// resource, system-reserved as kc.SystemReserved sets it (none by default),
// and the hard eviction thresholds for memory.available (100Mi) and
// nodefs.available (10%) unless kc.EvictionHard sets them. kc may be nil.
func ComputeOverhead(capacity corev1.ResourceList, kc *KubeletConfig) (Overhead, error) {
	if kc == nil {
		kc = &KubeletConfig{}
	}
	if err := kc.Validate(); err != nil {
		return Overhead{}, err
	}
	o := Overhead{
		KubeReserved:      defaultKubeReserved(capacity),
		SystemReserved:    corev1.ResourceList{},
		EvictionThreshold: corev1.ResourceList{corev1.ResourceMemory: defaultEvictionMemory.DeepCopy()},
	}
	for k, v := range kc.KubeReserved {
		o.KubeReserved[corev1.ResourceName(k)] = resource.MustParse(v)
	}
	for k, v := range kc.SystemReserved {
		o.SystemReserved[corev1.ResourceName(k)] = resource.MustParse(v)
	}
	storage := capacity[corev1.ResourceEphemeralStorage]
	fs, _ := evictionAmount(storage, defaultEvictionNodeFS)
	o.EvictionThreshold[corev1.ResourceEphemeralStorage] = fs
	if v, ok := kc.EvictionHard[SignalMemoryAvailable]; ok {
		o.EvictionThreshold[corev1.ResourceMemory], _ = evictionAmount(capacity[corev1.ResourceMemory], v)
	}
	if v, ok := kc.EvictionHard[SignalNodeFSAvailable]; ok {
		o.EvictionThreshold[corev1.ResourceEphemeralStorage], _ = evictionAmount(storage, v)
	}
	return o, nil
}

// Total sums the three reservations per resource.
func (o Overhead) Total() corev1.ResourceList {
	total := corev1.ResourceList{}
	for _, l := range []corev1.ResourceList{o.KubeReserved, o.SystemReserved, o.EvictionThreshold} {
		for name, q := range l {
			sum := total[name]
			sum.Add(q)
			total[name] = sum
		}
	}
	return total
}

// Allocatable is capacity minus overhead, never below zero. Resources the
// overhead does not mention (pods, GPUs) pass through unchanged.
func Allocatable(capacity corev1.ResourceList, o Overhead) corev1.ResourceList {
	total := o.Total()
	out := make(corev1.ResourceList, len(capacity))
	for name, c := range capacity {
		q := c.DeepCopy()
		if sub, ok := total[name]; ok {
			q.Sub(sub)
			if q.Sign() < 0 {
				q = *resource.NewQuantity(0, c.Format)
			}
		}
		out[name] = q
	}
	return out
}

func defaultKubeReserved(capacity corev1.ResourceList) corev1.ResourceList {
	cpu := capacity[corev1.ResourceCPU]
	milli := cpu.MilliValue()
	var reserved int64
	for _, s := range cpuReservedSteps {
		if milli <= s.fromMilli {
			break
		}
		span := min(milli, s.toMilli) - s.fromMilli
		reserved += int64(float64(span) * s.fraction)
	}
	pods := capacity[corev1.ResourcePods]
	return corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(reserved, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity((11*pods.Value()+255)*mebibyte, resource.BinarySI),
		corev1.ResourceEphemeralStorage: defaultKubeReservedFS.DeepCopy(),
	}
}

const mebibyte = 1024 * 1024

// evictionAmount reads an eviction threshold: a quantity, or a percentage of
// capacity (rounded up; "100%" disables the threshold, as in kubelet).
func evictionAmount(capacity resource.Quantity, v string) (resource.Quantity, error) {
	if pct, ok := strings.CutSuffix(v, "%"); ok {
		p, err := strconv.ParseFloat(pct, 64)
		if err != nil || p < 0 || p > 100 || math.IsNaN(p) {
			return resource.Quantity{}, fmt.Errorf("invalid percentage %q", v)
		}
		if p == 100 {
			p = 0
		}
		return *resource.NewQuantity(int64(math.Ceil(capacity.AsApproximateFloat64()*p/100)), resource.BinarySI), nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return resource.Quantity{}, err
	}
	if q.Sign() < 0 {
		return resource.Quantity{}, fmt.Errorf("must not be negative")
	}
	return q, nil
}
