package bootstrap

import (
	"slices"
	"strings"
)

// AnnotationTokenIDs lists on a NodeClaim, comma-separated, the IDs (the
// public halves, never the secrets) of the bootstrap tokens minted for its
// node: what is revoked once the node has joined or the claim is gone.
const AnnotationTokenIDs = "bootstrap.fleet-scheduler.io/token-ids"

// TokenIDs are the token IDs an object's annotations list.
func TokenIDs(annotations map[string]string) []string {
	var out []string
	for _, id := range strings.Split(annotations[AnnotationTokenIDs], ",") {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// WithTokenID adds id to the annotations' list (once) and returns them;
// nil annotations are made.
func WithTokenID(annotations map[string]string, id string) map[string]string {
	if annotations == nil {
		annotations = map[string]string{}
	}
	ids := TokenIDs(annotations)
	if id != "" && !slices.Contains(ids, id) {
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		annotations[AnnotationTokenIDs] = strings.Join(ids, ",")
	}
	return annotations
}
