package disruption

import (
	"fmt"
	"strings"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// MinSpotToSpotInstanceTypes is how many cheaper instance types a spot
// node's replacement must be able to choose from for consolidation to
// replace it with another spot node, and how many it is given (Karpenter's
// rule). EC2 Fleet's price-capacity-optimized picks among them by capacity
// as much as by price: with only a few, it would keep landing on the
// cheapest pools, the ones interrupted most, and each replacement that was
// not the cheapest would be consolidated again at once; capping the choice
// at the 15 cheapest keeps what it launches inside the set it was picked
// from.
const MinSpotToSpotInstanceTypes = 15

// spotReplacementOptions narrows the cheaper options of a spot node's
// replacement to spot ones, when its pool offers spot at all: it returns
// the options of the 15 cheapest instance types (all of them when the
// pool's minValues needs more), or why there is no replacement.
func spotReplacementOptions(pool *packing.Pool, cheaper []*packing.PoolOption) ([]*packing.PoolOption, string) {
	offersSpot := false
	for _, o := range pool.Options {
		if o.CapacityType == karpv1.CapacityTypeSpot {
			offersSpot = true
			break
		}
	}
	if !offersSpot {
		return cheaper, "" // on-demand only: an ordinary cheaper replacement
	}
	var spot []*packing.PoolOption
	var types []string
	seen := map[string]bool{}
	for _, o := range cheaper {
		if o.CapacityType != karpv1.CapacityTypeSpot {
			continue
		}
		spot = append(spot, o)
		if !seen[o.InstanceType] {
			seen[o.InstanceType] = true
			types = append(types, o.InstanceType)
		}
	}
	if len(types) < MinSpotToSpotInstanceTypes {
		return nil, fmt.Sprintf("a spot node is replaced by a spot node only when at least %d cheaper instance types are offered, %d are%s",
			MinSpotToSpotInstanceTypes, len(types), listed(types))
	}
	keep := map[string]bool{}
	for _, t := range types[:MinSpotToSpotInstanceTypes] {
		keep[t] = true
	}
	capped := spot[:0:0]
	for _, o := range spot {
		if keep[o.InstanceType] {
			capped = append(capped, o)
		}
	}
	if pool.MinValues.Unmet(capped) != "" {
		return spot, ""
	}
	return capped, ""
}

func listed(types []string) string {
	if len(types) == 0 {
		return ""
	}
	return " (" + strings.Join(types, ", ") + ")"
}
