package nodepool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/catalog"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// EC2Catalog answers Options from the in-memory EC2 instance catalogue.
// It never calls EC2 itself: the catalogue refreshes in the background.
type EC2Catalog struct {
	Catalog *catalog.Catalog
	// Now is the clock; unavailable marks expire with it.
	Now func() time.Time

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
func (e *EC2Catalog) Generation() uint64 {
	built, _, _ := e.Catalog.Status()
	return uint64(built.UnixNano()) + e.marks.Load() + uint64(e.now().Unix()/int64(markExpiry.Seconds()))
}

// MarkUnavailable takes an offering out of use for ttl (after EC2 reported
// it out of capacity) and makes every pool rebuild its options.
func (e *EC2Catalog) MarkUnavailable(instanceType, zone, capacityType string, ttl time.Duration) {
	e.Catalog.MarkUnavailable(instanceType, zone, capacityType, ttl)
	e.marks.Add(1)
}

// Options lists every available offering of every instance type as a launch
// option, with allocatable computed for the class's kubelet settings.
func (e *EC2Catalog) Options(class *ec2v1.EC2NodeClass) ([]*packing.Option, error) {
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
	var options []*packing.Option
	for _, it := range types {
		capacity, allocatable := it.Capacity, it.Allocatable
		if kubelet != nil {
			capacity, allocatable, err = withKubelet(it, kubelet)
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

func (e *EC2Catalog) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func kubeletConfig(class *ec2v1.EC2NodeClass) *catalog.KubeletConfig {
	k := class.Spec.Kubelet
	if k == nil || (k.MaxPods == nil && k.KubeReserved == nil && k.SystemReserved == nil && k.EvictionHard == nil) {
		return nil
	}
	return &catalog.KubeletConfig{MaxPods: k.MaxPods, KubeReserved: k.KubeReserved, SystemReserved: k.SystemReserved, EvictionHard: k.EvictionHard}
}

// withKubelet recomputes capacity (max pods) and allocatable for a class
// whose kubelet settings differ from the catalogue's defaults.
func withKubelet(it *catalog.InstanceType, kc *catalog.KubeletConfig) (v1.ResourceList, v1.ResourceList, error) {
	capacity := it.Capacity.DeepCopy()
	if kc.MaxPods != nil {
		capacity[v1.ResourcePods] = *resource.NewQuantity(int64(*kc.MaxPods), resource.DecimalSI)
	}
	overhead, err := catalog.ComputeOverhead(capacity, kc)
	if err != nil {
		return nil, nil, err
	}
	return capacity, catalog.Allocatable(capacity, overhead), nil
}
