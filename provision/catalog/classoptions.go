package catalog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/clock"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// ClassOptions answers an EC2NodeClass's launch options from the catalogue.
// It never calls EC2 itself: the catalogue refreshes in the background.
type ClassOptions struct {
	Catalog *Catalog
	// Clock is the clock unavailable marks expire with; the real one when nil.
	Clock clock.PassiveClock

	marks atomic.Uint64
	mu    sync.Mutex
	cache map[string]classOptions
}

type classOptions struct {
	key     string
	options []*packing.Option
}

// markExpiry bounds how long Generation stays the same, so that offerings
// whose unavailable mark expired come back.
const markExpiry = time.Minute

// Generation changes when the catalogue is rebuilt, an offering is marked
// unavailable, and at least every markExpiry.
func (e *ClassOptions) Generation() uint64 {
	built, _, _ := e.Catalog.Status()
	return uint64(built.UnixNano()) + e.marks.Load() + uint64(e.now().Unix()/int64(markExpiry.Seconds()))
}

// MarkUnavailable takes an offering out of use for ttl (after EC2 reported
// it out of capacity) and makes every pool rebuild its options.
func (e *ClassOptions) MarkUnavailable(instanceType, zone, capacityType string, ttl time.Duration) {
	e.Catalog.MarkUnavailable(instanceType, zone, capacityType, ttl)
	e.marks.Add(1)
}

// Options lists every available offering of every instance type as a launch
// option, with capacity and allocatable computed for the class's kubelet
// settings and root volume.
func (e *ClassOptions) Options(class *ec2v1.EC2NodeClass) ([]*packing.Option, error) {
	built, _, lastErr := e.Catalog.Status()
	if built.IsZero() {
		if lastErr != nil {
			return nil, fmt.Errorf("the instance-type catalogue is not loaded yet: %v", lastErr)
		}
		return nil, fmt.Errorf("the instance-type catalogue is not loaded yet")
	}
	key := fmt.Sprintf("%s/%d", class.ResourceVersion, e.Generation())
	e.mu.Lock()
	if c, ok := e.cache[class.Name]; ok && c.key == key {
		e.mu.Unlock()
		return c.options, nil
	}
	e.mu.Unlock()

	types, err := e.Catalog.Get(context.Background())
	if err != nil {
		return nil, err
	}
	kubelet := kubeletConfig(class)
	storage := rootVolumeSize(class)
	var options []*packing.Option
	for _, it := range types {
		capacity, allocatable := it.Capacity, it.Allocatable
		if current := it.Capacity[v1.ResourceEphemeralStorage]; kubelet != nil || current.Cmp(storage) != 0 {
			capacity, allocatable, err = forClass(it, kubelet, storage)
			if err != nil {
				return nil, fmt.Errorf("EC2NodeClass %q spec.kubelet: %w", class.Name, err)
			}
		}
		for _, o := range it.Offerings {
			if !o.Available {
				continue
			}
			options = append(options, &packing.Option{
				InstanceType: it.Name, Zone: o.Zone, CapacityType: o.CapacityType, Price: o.Price,
				Labels: it.OfferingLabels(o), Capacity: capacity, Allocatable: allocatable,
			})
		}
	}
	e.mu.Lock()
	if e.cache == nil {
		e.cache = map[string]classOptions{}
	}
	e.cache[class.Name] = classOptions{key: key, options: options}
	e.mu.Unlock()
	return options, nil
}

// Launchable is Options less what the class cannot launch: offerings in a
// zone where it has no subnet, or of an architecture it has no image for.
// The pools offer these, and the cloud provider launches a claim's
// instance from them.
func (e *ClassOptions) Launchable(class *ec2v1.EC2NodeClass) ([]*packing.Option, error) {
	options, err := e.Options(class)
	if err != nil {
		return nil, err
	}
	return launchable(options, class), nil
}

// launchable keeps the options the node class can launch: in a zone where
// it has a subnet, of an architecture it has an image for.
func launchable(options []*packing.Option, class *ec2v1.EC2NodeClass) []*packing.Option {
	zones, arches := map[string]bool{}, map[string]bool{}
	for _, s := range class.Status.Subnets {
		zones[s.Zone] = true
	}
	for _, ami := range class.Status.AMIs {
		for _, r := range ami.Requirements {
			if r.Key == v1.LabelArchStable && r.Operator == v1.NodeSelectorOpIn {
				for _, a := range r.Values {
					arches[a] = true
				}
			}
		}
	}
	out := make([]*packing.Option, 0, len(options))
	for _, o := range options {
		if zones[o.Zone] && arches[o.Labels[v1.LabelArchStable]] {
			out = append(out, o)
		}
	}
	return out
}

func (e *ClassOptions) now() time.Time {
	if e.Clock != nil {
		return e.Clock.Now()
	}
	return time.Now()
}

func kubeletConfig(class *ec2v1.EC2NodeClass) *KubeletConfig {
	k := class.Spec.Kubelet
	if k == nil || (k.MaxPods == nil && k.KubeReserved == nil && k.SystemReserved == nil && k.EvictionHard == nil) {
		return nil
	}
	return &KubeletConfig{MaxPods: k.MaxPods, KubeReserved: k.KubeReserved, SystemReserved: k.SystemReserved, EvictionHard: k.EvictionHard}
}

// forClass recomputes capacity (max pods, the root volume's ephemeral
// storage) and allocatable (kubelet's reservations and eviction thresholds,
// nodefs.available taken of that volume) for a class whose kubelet
// settings or root volume differ from the catalogue's defaults. kc may be
// nil.
func forClass(it *InstanceType, kc *KubeletConfig, storage resource.Quantity) (v1.ResourceList, v1.ResourceList, error) {
	capacity := it.Capacity.DeepCopy()
	capacity[v1.ResourceEphemeralStorage] = storage.DeepCopy()
	if kc != nil && kc.MaxPods != nil {
		capacity[v1.ResourcePods] = *resource.NewQuantity(int64(*kc.MaxPods), resource.DecimalSI)
	}
	overhead, err := ComputeOverhead(capacity, kc)
	if err != nil {
		return nil, nil, err
	}
	return capacity, Allocatable(capacity, overhead), nil
}
