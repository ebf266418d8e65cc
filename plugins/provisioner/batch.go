package provisioner

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// batcher closes a batch when no pod has packed onto a planned claim for
// idle, or max after the batch opened, whichever comes first. Pods arriving
// in a burst (a Deployment scaled up) thus pack onto few nodes, and a
// steady trickle still launches within max.
type batcher struct {
	idle, max time.Duration
	clock     clock.PassiveClock

	mu          sync.Mutex
	first, last time.Time
	wake        chan struct{}
}

func newBatcher(idle, max time.Duration, clk clock.PassiveClock) *batcher {
	return &batcher{idle: idle, max: max, clock: clk, wake: make(chan struct{}, 1)}
}

// touch records that a planned claim changed.
func (b *batcher) touch() {
	b.mu.Lock()
	t := b.clock.Now()
	if b.first.IsZero() {
		b.first = t
	}
	b.last = t
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// deadline is when the open batch closes; zero when no batch is open.
func (b *batcher) deadline() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first.IsZero() {
		return time.Time{}
	}
	idle, max := b.last.Add(b.idle), b.first.Add(b.max)
	if max.Before(idle) {
		return max
	}
	return idle
}

func (b *batcher) reset() {
	b.mu.Lock()
	b.first, b.last = time.Time{}, time.Time{}
	b.mu.Unlock()
}

// run calls flush each time a batch closes, until ctx ends.
func (b *batcher) run(ctx context.Context, flush func(context.Context)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d := b.deadline()
		if d.IsZero() {
			select {
			case <-ctx.Done():
				return
			case <-b.wake:
				continue
			}
		}
		if wait := d.Sub(b.clock.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-b.wake:
			case <-timer.C:
			}
			continue
		}
		b.reset()
		flush(ctx)
	}
}
