// Package spechash hashes what a node is made from (an EC2NodeClass's spec,
// a NodePool's template) into the value a NodeClaim carries in an
// annotation, so that a change of it shows as drift.
package spechash

import (
	"encoding/json"
	"hash/fnv"
	"strconv"
)

// Of is the FNV-1a hash of v's JSON, in decimal; "" if v cannot be
// marshalled. encoding/json writes map keys sorted: the bytes, and so the
// hash, do not depend on map order.
func Of(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return strconv.FormatUint(h.Sum64(), 10)
}
