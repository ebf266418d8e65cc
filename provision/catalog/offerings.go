package catalog

import "github.com/fleet-scheduler/fleet-scheduler/provision/pricing"

// buildOfferings returns one offering per zone and capacity type. On-demand
// offerings need a price and are dropped without one (noOnDemand reports
// that); spot offerings are kept, unavailable, when their price is unknown,
// so that a later price refresh can make them usable.
func buildOfferings(name string, zones []string, zoneIDs map[string]string, capacityTypes []string,
	prices pricing.Provider) (out []Offering, noOnDemand bool, unknownSpot int) {
	out = make([]Offering, 0, len(zones)*len(capacityTypes))
	for _, ct := range capacityTypes {
		switch ct {
		case CapacityTypeOnDmd:
			price, ok := prices.OnDemandPrice(name)
			if !ok {
				noOnDemand = true
				continue
			}
			for _, z := range zones {
				out = append(out, Offering{Zone: z, ZoneID: zoneIDs[z], CapacityType: ct, Price: price, PriceKnown: true, Available: true})
			}
		case CapacityTypeSpot:
			for _, z := range zones {
				price, ok := prices.SpotPrice(name, z)
				if !ok {
					unknownSpot++
				}
				out = append(out, Offering{Zone: z, ZoneID: zoneIDs[z], CapacityType: ct, Price: price, PriceKnown: ok, Available: ok})
			}
		}
	}
	return out, noOnDemand, unknownSpot
}
