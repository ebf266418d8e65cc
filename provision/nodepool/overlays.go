package nodepool

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1alpha1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/nodeoverlay"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// overlayState is the last evaluation of the NodeOverlays over every
// pool's own options, and the versions of its inputs.
type overlayState struct {
	key    string
	result nodeoverlay.Result
	// generation counts evaluations, for packing.Pool.Version.
	generation uint64
}

// listOverlays returns the NodeOverlays, none when the API is not served
// (Source.NodeOverlays unset).
func (s *Source) listOverlays() []*v1alpha1.NodeOverlay {
	if s.NodeOverlays == nil {
		return nil
	}
	out, err := s.NodeOverlays.List(labels.Everything())
	if err != nil {
		return nil
	}
	return out
}

// evaluateOverlays re-evaluates the overlays when they or a pool changed,
// and returns the result. Overlays are evaluated across every pool at once
// because a conflict anywhere keeps an overlay off everywhere. Call with
// s.mu held; bases are the pools as built, by name.
func (s *Source) evaluateOverlays(overlays []*v1alpha1.NodeOverlay, bases map[string]*cachedPool) *overlayState {
	var b strings.Builder
	for _, o := range overlays {
		fmt.Fprintf(&b, "%s:%s:%d/", o.Name, o.UID, o.Generation)
	}
	b.WriteString("|")
	for _, name := range slices.Sorted(maps.Keys(bases)) {
		fmt.Fprintf(&b, "%s=%s/", name, bases[name].key)
	}
	key := b.String()
	if s.overlays != nil && s.overlays.key == key {
		return s.overlays
	}
	pools := map[string][]*packing.PoolOption{}
	for name, c := range bases {
		if c.pool.Unavailable == "" {
			pools[name] = c.pool.Options
		}
	}
	var generation uint64
	if s.overlays != nil {
		generation = s.overlays.generation + 1
	}
	s.overlays = &overlayState{key: key, result: nodeoverlay.Evaluate(overlays, pools), generation: generation}
	if s.OverlayStore != nil {
		s.OverlayStore.Set(s.overlays.result)
	}
	return s.overlays
}

// Overlays returns what the NodeOverlays do to the current pools: each
// overlay's problem (why it is not applied) or how many options it
// selects.
func (s *Source) Overlays() nodeoverlay.Result {
	s.Pools()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlays == nil {
		return nodeoverlay.Result{}
	}
	return s.overlays.result
}
