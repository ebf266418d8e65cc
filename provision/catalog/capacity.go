package catalog

import (
	"math"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// computeCapacity is what a node of this type reports as capacity. opts must
// have its defaults applied.
func computeCapacity(info *ec2types.InstanceTypeInfo, opts Options) corev1.ResourceList {
	maxPods := DefaultMaxPods
	if opts.Kubelet != nil && opts.Kubelet.MaxPods != nil {
		maxPods = *opts.Kubelet.MaxPods
	}
	c := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(deref(info.VCpuInfo.DefaultVCpus)), resource.DecimalSI),
		corev1.ResourceMemory:           memoryCapacity(deref(info.MemoryInfo.SizeInMiB), *opts.VMMemoryOverheadPercent),
		corev1.ResourcePods:             *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: opts.EphemeralStorage.DeepCopy(),
	}
	gpus := map[corev1.ResourceName]int64{}
	if info.GpuInfo != nil {
		for _, g := range info.GpuInfo.Gpus {
			switch deref(g.Manufacturer) {
			case "NVIDIA":
				gpus[ResourceNVIDIAGPU] += int64(deref(g.Count))
			case "AMD":
				gpus[ResourceAMDGPU] += int64(deref(g.Count))
			case "Habana":
				gpus[ResourceHabanaGaudi] += int64(deref(g.Count))
			}
		}
	}
	if info.NeuronInfo != nil {
		for _, d := range info.NeuronInfo.NeuronDevices {
			gpus[ResourceAWSNeuron] += int64(deref(d.Count))
		}
	} else if info.InferenceAcceleratorInfo != nil {
		for _, a := range info.InferenceAcceleratorInfo.Accelerators {
			gpus[ResourceAWSNeuron] += int64(deref(a.Count))
		}
	}
	for name, n := range gpus {
		if n > 0 {
			c[name] = *resource.NewQuantity(n, resource.DecimalSI)
		}
	}
	return c
}

// memoryCapacity is the advertised memory less the VM overhead fraction,
// rounded to whole MiB (the overhead is rounded up).
func memoryCapacity(sizeMiB int64, overhead float64) resource.Quantity {
	mib := sizeMiB - int64(math.Ceil(float64(sizeMiB)*overhead))
	return *resource.NewQuantity(mib*mebibyte, resource.BinarySI)
}
