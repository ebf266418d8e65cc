// Package nodeoverlay applies karpenter.sh/v1alpha1 NodeOverlays to the
// NodePools' launch options, as Karpenter defines them: prices changed and
// extended resources added by requirement, the highest weight first, equal
// weights that touch the same thing reported as a conflict and not
// applied. nodepool.Source applies the result when it builds the pools and
// publishes it in a Store, from which the cloud provider prices and sizes a
// claim's options; the status controller (nodeoverlay/status) reports it
// on each overlay.
package nodeoverlay

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	v1 "k8s.io/api/core/v1"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Problem is why an overlay is not applied: a ValidationSucceeded=False
// reason (v1alpha1.ReasonRuntimeValidation or ReasonConflict) and message.
type Problem struct {
	Reason, Message string
}

// Result is what a set of overlays does to the pools.
type Result struct {
	// Options are, by NodePool, the pool's options with the overlays
	// applied, cheapest first by the overlaid price. A pool no overlay
	// touches is absent: its options stand as they are.
	Options map[string][]*packing.PoolOption
	// Problems are, by overlay name, why an overlay is not applied.
	Problems map[string]Problem
	// Selected counts, by overlay name, the options an applied overlay
	// selects across the pools (0: it selects nothing).
	Selected map[string]int

	// prices and capacity are what the applied overlays set, by pool and
	// offering or instance type: Apply sets them on any of a pool's options.
	prices   map[optionKey]*priceSet
	capacity map[typeKey]*capacitySet
}

// Sorted orders overlays as they are applied: the highest weight first,
// equal weights by name in reverse alphabetical order (Karpenter's order).
func Sorted(overlays []*v1alpha1.NodeOverlay) []*v1alpha1.NodeOverlay {
	out := slices.Clone(overlays)
	sort.SliceStable(out, func(i, j int) bool {
		wi, wj := out[i].WeightOrZero(), out[j].WeightOrZero()
		if wi != wj {
			return wi > wj
		}
		return out[i].Name > out[j].Name
	})
	return out
}

// offering and instance type of one pool.
type optionKey struct{ pool, instanceType, zone, capacityType string }
type typeKey struct{ pool, instanceType string }

// priceSet is the price an option got, from which overlay, and the weight
// of the last overlay that selected it with a price (to find conflicts).
type priceSet struct {
	overlay, change string
	lastWeight      int32
	lastOverlay     string
}

// capacitySet is, per resource of one instance type, the value it got and
// from which overlay, and the weight and overlay that last named it.
type capacitySet struct {
	values      v1.ResourceList
	from        map[v1.ResourceName]string
	lastWeight  map[v1.ResourceName]int32
	lastOverlay map[v1.ResourceName]string
}

// Evaluate applies overlays to pools (each pool's options as built from the
// catalogue, with no overlay). In Sorted order, each overlay that passes
// Validate selects the options whose node labels meet its requirements:
//   - price: an option takes the price of the first overlay that selects it
//     and sets one; later (lower) overlays leave it;
//   - capacity: an instance type of a pool takes each resource from the
//     first overlay that selects any of its options and names the resource,
//     on all of its options (capacity is the hardware's, not an offering's);
//   - an overlay that would set the price of an option, or a resource of an
//     instance type, that an overlay of the same weight already set is a
//     Conflict and is applied nowhere.
//
// pools is not changed.
func Evaluate(overlays []*v1alpha1.NodeOverlay, pools map[string][]*packing.PoolOption) Result {
	res := Result{Options: map[string][]*packing.PoolOption{}, Problems: map[string]Problem{}, Selected: map[string]int{}}
	prices := map[optionKey]*priceSet{}
	capacity := map[typeKey]*capacitySet{}
	poolNames := slices.Sorted(maps.Keys(pools))
	for _, o := range Sorted(overlays) {
		sel, err := Validate(o)
		if err != nil {
			res.Problems[o.Name] = Problem{Reason: v1alpha1.ReasonRuntimeValidation, Message: err.Error()}
			continue
		}
		change := priceChange(o)
		weight := o.WeightOrZero()
		var selected []optionKey
		types := map[typeKey]bool{}
		for _, pool := range poolNames {
			for _, opt := range pools[pool] {
				if sel == nil || sel.Match(opt.Node) {
					selected = append(selected, offering(pool, opt))
					types[typeKey{pool, opt.InstanceType}] = true
				}
			}
		}
		if why := conflict(o, change, weight, selected, types, prices, capacity); why != "" {
			res.Problems[o.Name] = Problem{Reason: v1alpha1.ReasonConflict, Message: why}
			continue
		}
		res.Selected[o.Name] = len(selected)
		if change != "" {
			for _, k := range selected {
				p := prices[k]
				if p == nil {
					p = &priceSet{overlay: o.Name, change: change}
					prices[k] = p
				}
				p.lastWeight, p.lastOverlay = weight, o.Name
			}
		}
		for t := range types {
			c := capacity[t]
			for name, q := range o.Spec.Capacity {
				if c == nil {
					c = &capacitySet{values: v1.ResourceList{}, from: map[v1.ResourceName]string{},
						lastWeight: map[v1.ResourceName]int32{}, lastOverlay: map[v1.ResourceName]string{}}
					capacity[t] = c
				}
				if _, ok := c.values[name]; !ok {
					c.values[name], c.from[name] = q.DeepCopy(), o.Name
				}
				c.lastWeight[name], c.lastOverlay[name] = weight, o.Name
			}
		}
	}
	res.prices, res.capacity = prices, capacity
	for _, pool := range poolNames {
		if opts, changed := res.apply(pool, pools[pool]); changed {
			res.Options[pool] = opts
		}
	}
	return res
}

func offering(pool string, o *packing.PoolOption) optionKey {
	return optionKey{pool: pool, instanceType: o.InstanceType, zone: o.Zone, capacityType: o.CapacityType}
}

// conflict names the first option or instance type on which o would set
// what an overlay of the same weight already set, or "".
func conflict(o *v1alpha1.NodeOverlay, change string, weight int32, selected []optionKey, types map[typeKey]bool,
	prices map[optionKey]*priceSet, capacity map[typeKey]*capacitySet) string {
	if change != "" {
		for _, k := range selected {
			if p := prices[k]; p != nil && p.lastWeight == weight {
				return fmt.Sprintf("conflict with NodeOverlay %q of the same weight (%d): both set the price of %s in %s, %s, NodePool %s",
					p.lastOverlay, weight, k.instanceType, k.zone, k.capacityType, k.pool)
			}
		}
	}
	for _, t := range sortedTypes(types) {
		c := capacity[t]
		if c == nil {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(o.Spec.Capacity)) {
			if w, ok := c.lastWeight[name]; ok && w == weight {
				return fmt.Sprintf("conflict with NodeOverlay %q of the same weight (%d): both set %s on %s in NodePool %s",
					c.lastOverlay[name], weight, name, t.instanceType, t.pool)
			}
		}
	}
	return ""
}

// Apply returns options of the pool (all of them, or some, such as a
// claim's) with the prices and capacity the overlays gave them in this
// evaluation, cheapest first; opts itself when no overlay touches them.
func (r Result) Apply(pool string, opts []*packing.PoolOption) []*packing.PoolOption {
	out, _ := r.apply(pool, opts)
	return out
}

// apply returns the pool's options with their overlaid prices and
// capacity, cheapest first, and whether any changed.
func (r Result) apply(pool string, opts []*packing.PoolOption) ([]*packing.PoolOption, bool) {
	out := make([]*packing.PoolOption, len(opts))
	changed := false
	for i, po := range opts {
		p := r.prices[offering(pool, po)]
		c := r.capacity[typeKey{pool, po.InstanceType}]
		if p == nil && c == nil {
			out[i] = po
			continue
		}
		changed = true
		o := *po.Option
		if p != nil {
			o.Price, _ = AdjustedPrice(po.Price, p.change) // Validate parsed it
			o.PriceOverlay = p.overlay
		}
		if c != nil {
			o.Capacity, o.Allocatable = po.Capacity.DeepCopy(), po.Allocatable.DeepCopy()
			o.CapacityOverlays = nil
			seen := map[string]bool{}
			for _, name := range slices.Sorted(maps.Keys(c.values)) {
				o.Capacity[name], o.Allocatable[name] = c.values[name].DeepCopy(), c.values[name].DeepCopy()
				if from := c.from[name]; !seen[from] {
					seen[from] = true
					o.CapacityOverlays = append(o.CapacityOverlays, from)
				}
			}
		}
		out[i] = po.WithOption(&o)
	}
	if !changed {
		return opts, false
	}
	packing.SortCheapestFirst(out)
	return out, true
}

// priceChange is the overlay's price or priceAdjustment, "" for neither.
func priceChange(o *v1alpha1.NodeOverlay) string {
	switch {
	case o.Spec.Price != nil:
		return *o.Spec.Price
	case o.Spec.PriceAdjustment != nil:
		return *o.Spec.PriceAdjustment
	}
	return ""
}

func sortedTypes(types map[typeKey]bool) []typeKey {
	out := slices.Collect(maps.Keys(types))
	sort.Slice(out, func(i, j int) bool {
		if out[i].pool != out[j].pool {
			return out[i].pool < out[j].pool
		}
		return out[i].instanceType < out[j].instanceType
	})
	return out
}
