package fleet

import (
	"regexp"
	"strings"
)

// poolReason finds each `nodepool "<name>": ` in a FailedProvisioning message.
var poolReason = regexp.MustCompile(`nodepool "([^"]+)": `)

// PoolReasons splits "no NodePool can provision the pod: nodepool "a": why;
// nodepool "b": why" by NodePool.
func PoolReasons(msg string) map[string]string {
	idx := poolReason.FindAllStringSubmatchIndex(msg, -1)
	if len(idx) == 0 {
		return nil
	}
	out := map[string]string{}
	for i, m := range idx {
		end := len(msg)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out[msg[m[2]:m[3]]] = strings.TrimSuffix(strings.TrimSpace(msg[m[1]:end]), ";")
	}
	return out
}
