package nodesim

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubeletVersion is what the simulated kubelets report.
const KubeletVersion = "v1.37.2"

// Hardware is what a machine knows about itself: from IMDS (instance id,
// type, zone, addresses) and from the hardware (CPUs, memory, disk, arch).
type Hardware struct {
	InstanceID   string
	InstanceType string
	Zone         string
	Region       string
	PrivateIP    string
	Hostname     string
	// Arch is the Kubernetes architecture: amd64 or arm64.
	Arch          string
	VCPUs         int64
	MemoryMiB     int64
	RootVolumeGiB int64
}

// KubeletSettings are the kubelet configuration fields the simulator acts on.
type KubeletSettings struct {
	MaxPods int32
	// SystemReserved and KubeReserved are subtracted from capacity.
	SystemReserved corev1.ResourceList
	KubeReserved   corev1.ResourceList
	// EvictionHardMemory is evictionHard memory.available, subtracted from
	// memory allocatable.
	EvictionHardMemory resource.Quantity
	// EvictionHardNodefsPercent is evictionHard nodefs.available as a
	// percentage, subtracted from ephemeral-storage allocatable.
	EvictionHardNodefsPercent int64
	// LeaseDuration is nodeLeaseDurationSeconds; the lease is renewed every
	// quarter of it.
	LeaseDuration time.Duration
	// StatusUpdateFrequency is how often status is computed and posted if changed.
	StatusUpdateFrequency time.Duration
	// StatusReportFrequency is how often status is posted even if unchanged.
	StatusReportFrequency time.Duration
}

// DefaultKubeletSettings are the kubelet's defaults.
func DefaultKubeletSettings() KubeletSettings {
	return KubeletSettings{
		MaxPods:                   110,
		EvictionHardMemory:        resource.MustParse("100Mi"),
		EvictionHardNodefsPercent: 10,
		LeaseDuration:             40 * time.Second,
		StatusUpdateFrequency:     10 * time.Second,
		StatusReportFrequency:     5 * time.Minute,
	}
}

// DefaultKernelMemoryFraction is the share of an instance's nominal memory
// the kubelet does not see in MemTotal (firmware and kernel reservations):
// a t3.medium's 4 GiB shows as ~3,977,000Ki, about 95%.
const DefaultKernelMemoryFraction = 0.05

// KubeletOptions configure one simulated kubelet.
type KubeletOptions struct {
	NodeName string
	// Config carries the node's credentials (system:node:<name>).
	Config     *rest.Config
	Labels     map[string]string
	Taints     []corev1.Taint
	ProviderID string
	Hardware   Hardware
	Settings   KubeletSettings
	// KernelMemoryFraction defaults to DefaultKernelMemoryFraction.
	KernelMemoryFraction float64
	// PodStartDelay is how long containers take to start; PodStopDelay how
	// long they take to stop after the pod is deleted.
	PodStartDelay time.Duration
	PodStopDelay  time.Duration
	// StaticPods are mirrored to the API server once the Node exists.
	StaticPods []StaticPod
	Log        logr.Logger
}

// Kubelet is one simulated kubelet.
type Kubelet struct {
	opts   KubeletOptions
	client kubernetes.Interface
	log    logr.Logger

	capacity, allocatable corev1.ResourceList
	bootID                string

	serverOnce sync.Once
	serverTLS  *tls.Config
	serverErr  error

	mu         sync.Mutex
	node       *corev1.Node
	lastReport time.Time
	podCIDR    netip.Prefix
	ready      bool
	pods       map[types.UID]*podState
	byKey      map[types.NamespacedName]types.UID
	ips        map[netip.Addr]types.UID
}

type podState struct {
	key        types.NamespacedName
	admittedAt time.Time
	running    bool
	rejected   bool
	ip         netip.Addr
	requests   corev1.ResourceList
	// mountWait is why the pod's volumes cannot be set up, while they
	// cannot (see unmountable).
	mountWait string
}

// NewKubelet builds a kubelet; Register then Run start it.
func NewKubelet(opts KubeletOptions) (*Kubelet, error) {
	if opts.KernelMemoryFraction == 0 {
		opts.KernelMemoryFraction = DefaultKernelMemoryFraction
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "kubelet/" + KubeletVersion + " (linux/" + opts.Hardware.Arch + ") nodesim"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	k := &Kubelet{
		opts:   opts,
		client: client,
		log:    opts.Log.WithValues("node", opts.NodeName),
		bootID: randomID(opts.NodeName + time.Now().String()),
		pods:   map[types.UID]*podState{},
		byKey:  map[types.NamespacedName]types.UID{},
		ips:    map[netip.Addr]types.UID{},
	}
	k.capacity, k.allocatable = k.resources()
	return k, nil
}

// NodeName is the node's name; InternalIP its address.
func (k *Kubelet) NodeName() string   { return k.opts.NodeName }
func (k *Kubelet) InternalIP() string { return k.opts.Hardware.PrivateIP }

// Capacity and Allocatable report what the kubelet registers.
func (k *Kubelet) Capacity() corev1.ResourceList    { return k.capacity.DeepCopy() }
func (k *Kubelet) Allocatable() corev1.ResourceList { return k.allocatable.DeepCopy() }

func (k *Kubelet) resources() (capacity, allocatable corev1.ResourceList) {
	h, s := k.opts.Hardware, k.opts.Settings
	memBytes := int64(float64(h.MemoryMiB<<20) * (1 - k.opts.KernelMemoryFraction))
	memBytes = memBytes / 1024 * 1024
	disk := h.RootVolumeGiB << 30
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(h.VCPUs, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memBytes, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(disk, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(s.MaxPods), resource.DecimalSI),
		"hugepages-1Gi":                 *resource.NewQuantity(0, resource.BinarySI),
		"hugepages-2Mi":                 *resource.NewQuantity(0, resource.BinarySI),
	}
	allocatable = capacity.DeepCopy()
	sub := func(name corev1.ResourceName, q resource.Quantity) {
		v := allocatable[name]
		v.Sub(q)
		if v.Sign() < 0 {
			v = *resource.NewQuantity(0, v.Format)
		}
		allocatable[name] = v
	}
	for _, reserved := range []corev1.ResourceList{s.SystemReserved, s.KubeReserved} {
		for name, q := range reserved {
			sub(name, q)
		}
	}
	sub(corev1.ResourceMemory, s.EvictionHardMemory)
	sub(corev1.ResourceEphemeralStorage, *resource.NewQuantity(disk*s.EvictionHardNodefsPercent/100, resource.BinarySI))
	return capacity, allocatable
}

// Run renews the lease, posts status and runs pods until ctx ends. The
// Node stays behind, as it does when a machine is switched off.
func (k *Kubelet) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); k.leaseLoop(ctx) }()
	go func() { defer wg.Done(); k.statusLoop(ctx) }()
	go func() { defer wg.Done(); k.podLoop(ctx) }()
	wg.Wait()
	k.log.Info("Kubelet stopped")
}

// Ready reports whether the kubelet has posted Ready.
func (k *Kubelet) Ready() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ready
}

func randomID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:16])
}

// KubernetesArch maps an EC2 architecture to Kubernetes' name.
func KubernetesArch(ec2Arch string) string {
	switch ec2Arch {
	case "arm64":
		return "arm64"
	case "x86_64", "x86_64_mac":
		return "amd64"
	}
	return runtime.GOARCH
}
