package packing

import (
	"fmt"
	"maps"
	"slices"
)

// MinValues are a pool's requirements' minValues: for each label key, how
// many distinct values the options of one claim must keep (for example at
// least five instance families, so the launch can fall back on others).
type MinValues map[string]int

// Unmet names the first key, in key order, whose distinct values among
// opts are fewer than its minimum, or "" when every minimum holds.
func (m MinValues) Unmet(opts []*PoolOption) string {
	if len(m) == 0 {
		return ""
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if n := distinctValues(opts, k); n < m[k] {
			return fmt.Sprintf("%s has %d value(s) left, minValues is %d", k, n, m[k])
		}
	}
	return ""
}

func distinctValues(opts []*PoolOption, key string) int {
	seen := map[string]bool{}
	for _, o := range opts {
		if v, ok := o.Node.Labels[key]; ok {
			seen[v] = true
		}
	}
	return len(seen)
}
