package nodeoverlay

import (
	"sync"

	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// Store keeps the latest evaluation of the NodeOverlays. Overlays are
// evaluated across every pool at once (a conflict anywhere keeps an overlay
// off everywhere), so one evaluator, nodepool.Source, publishes each
// evaluation here as it makes it - it evaluates whenever the pools are
// read, which the Provisioner does every second - and the cloud provider
// prices and sizes a claim's options with it, as the claim was planned,
// without building the pools again. The zero value holds no overlay.
type Store struct {
	mu     sync.RWMutex
	result Result
}

// Set publishes an evaluation.
func (s *Store) Set(r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.result = r
}

// Apply returns options of the pool with the latest evaluation applied
// (Result.Apply). A nil Store applies nothing.
func (s *Store) Apply(pool string, opts []*packing.PoolOption) []*packing.PoolOption {
	if s == nil {
		return opts
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.result.Apply(pool, opts)
}
