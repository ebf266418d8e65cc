// Package launchhealth keeps, per NodePool, what its recent launches say
// about it, so that a failure no retry can fix soon costs one EC2 call per
// backoff window rather than one per claim per retry:
//
//   - a quota error (VcpuLimitExceeded, MaxSpotInstanceCountExceeded) backs
//     off the pool's launches in that vCPU quota bucket and capacity type;
//     any other error EC2 answered (Unauthorized, InvalidParameter...) backs
//     off all of the pool's launches. The delay starts at BaseDelay and
//     doubles per failure in a row up to MaxDelay; when it has passed, one
//     launch goes through as a probe while the others keep waiting, and a
//     success ends the backoff;
//   - nodes that were launched and never registered are counted in a row;
//     at PauseAfter the pool's launches pause (the NodePool status
//     controller says so, and the pool offers nothing until it or its
//     EC2NodeClass changes).
//
// It is memory only: after a restart the first launch of each bucket
// probes again. The NodePool conditions it feeds persist.
package launchhealth

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Defaults.
const (
	DefaultBaseDelay  = 30 * time.Second
	DefaultMaxDelay   = 10 * time.Minute
	DefaultPauseAfter = 3
	// probeTimeout frees a probe whose launch never reported back (its
	// process died, or its claim went away).
	probeTimeout = 2 * time.Minute
)

// Failure is the last launch failure of a pool, as its conditions and
// events tell it.
type Failure struct {
	// Reason is ec2's name for it (VcpuLimitExceeded, Unauthorized...).
	Reason string
	// Message is the error as EC2 gave it.
	Message string
	// NodeClaim is the claim whose launch failed.
	NodeClaim string
	// Bucket is what the failure is held against; zero for a failure
	// that backs nothing off (no capacity for some offerings).
	Bucket Bucket
	// InARow is how many launches in the bucket failed in a row.
	InARow int
	// At is when it failed; Until when the bucket's next probe may go.
	At, Until time.Time
}

// String says what failed and, for a failure that holds launches back,
// until when and where to look.
func (f Failure) String() string {
	var b strings.Builder
	b.WriteString(f.Message)
	if f.NodeClaim != "" {
		fmt.Fprintf(&b, " (NodeClaim %s)", f.NodeClaim)
	}
	if f.Bucket == (Bucket{}) || f.Until.IsZero() {
		return b.String()
	}
	what := "this NodePool's " + f.Bucket.String() + " instances"
	if f.Bucket == Pool {
		what = "this NodePool"
	}
	fmt.Fprintf(&b, "; launches of %s are held back until %s (%s failure %d in a row)", what,
		f.Until.UTC().Format(time.RFC3339), f.Reason, f.InARow)
	if code := QuotaCode(f.Bucket); code != "" {
		fmt.Fprintf(&b, "; see the quota: aws service-quotas get-service-quota --service-code ec2 --quota-code %s", code)
	}
	return b.String()
}

// Tracker is the launch health of every NodePool. The zero value is not
// usable: build it with New.
type Tracker struct {
	clock      clock.PassiveClock
	baseDelay  time.Duration
	maxDelay   time.Duration
	pauseAfter int
	// changed is told the name of a pool whose health changed.
	changed func(pool string)

	mu    sync.Mutex
	pools map[string]*pool
}

type pool struct {
	// launched and registered: since this process started, a launch
	// succeeded, a node registered.
	launched, registered bool
	buckets              map[Bucket]*backoff
	// last is the latest failure (kept until a launch succeeds).
	last *Failure
	// unregistered counts launched nodes in a row that never registered;
	// lastUnregistered is the latest of them.
	unregistered     int
	lastUnregistered string
}

type backoff struct {
	failure Failure
	probe   time.Time // when the probe now under way was admitted
}

// Options configure a Tracker; zero fields take the defaults.
type Options struct {
	Clock      clock.PassiveClock
	BaseDelay  time.Duration
	MaxDelay   time.Duration
	PauseAfter int
	// Changed is called (without the tracker's lock) with the name of a
	// pool whose health changed.
	Changed func(pool string)
}

// New makes a Tracker.
func New(o Options) *Tracker {
	t := &Tracker{clock: o.Clock, baseDelay: o.BaseDelay, maxDelay: o.MaxDelay, pauseAfter: o.PauseAfter, changed: o.Changed,
		pools: map[string]*pool{}}
	if t.clock == nil {
		t.clock = clock.RealClock{}
	}
	if t.baseDelay <= 0 {
		t.baseDelay = DefaultBaseDelay
	}
	if t.maxDelay <= 0 {
		t.maxDelay = DefaultMaxDelay
	}
	if t.pauseAfter <= 0 {
		t.pauseAfter = DefaultPauseAfter
	}
	if t.changed == nil {
		t.changed = func(string) {}
	}
	return t
}

// Now is the tracker's clock's time.
func (t *Tracker) Now() time.Time { return t.clock.Now() }

// SetChanged sets the function told about pools whose health changed (the
// NodePool status controller's enqueue, known only once it is built).
func (t *Tracker) SetChanged(f func(pool string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.changed = f
}

func (t *Tracker) pool(name string) *pool {
	p := t.pools[name]
	if p == nil {
		p = &pool{buckets: map[Bucket]*backoff{}}
		t.pools[name] = p
	}
	return p
}

// Admit reports whether a launch of pool in bucket b may call EC2 now. In
// a backoff that has run out, the first caller is admitted as the probe
// and the others wait for its outcome. A refusal comes with the failure
// that caused it; its Until is when to ask again.
func (t *Tracker) Admit(poolName string, b Bucket) (bool, *Failure) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pools[poolName]
	if p == nil {
		return true, nil
	}
	now := t.clock.Now()
	for _, key := range []Bucket{Pool, b} {
		e := p.buckets[key]
		if e == nil {
			continue
		}
		if now.Before(e.failure.Until) {
			f := e.failure
			return false, &f
		}
		if !e.probe.IsZero() && now.Before(e.probe.Add(probeTimeout)) {
			f := e.failure
			f.Until = e.probe.Add(probeTimeout)
			return false, &f
		}
	}
	for _, key := range []Bucket{Pool, b} {
		if e := p.buckets[key]; e != nil {
			e.probe = now
		}
	}
	return true, nil
}

// Failed records a failed launch. A failure with a bucket (quota, or an
// error EC2 answered: Pool) backs that bucket off and returns the failure
// with its Until; one without (no capacity for some offerings) is only
// remembered for the pool's condition.
func (t *Tracker) Failed(poolName string, f Failure) Failure {
	t.mu.Lock()
	p := t.pool(poolName)
	f.At = t.clock.Now()
	if f.Bucket != (Bucket{}) {
		e := p.buckets[f.Bucket]
		if e == nil {
			e = &backoff{}
			p.buckets[f.Bucket] = e
		}
		f.InARow = e.failure.InARow + 1
		f.Until = f.At.Add(t.delay(f.InARow))
		e.failure, e.probe = f, time.Time{}
	}
	p.last = &f
	changed := t.changed
	t.mu.Unlock()
	changed(poolName)
	return f
}

// delay is the backoff after n failures in a row.
func (t *Tracker) delay(n int) time.Duration {
	d := t.baseDelay
	for i := 1; i < n && d < t.maxDelay; i++ {
		d *= 2
	}
	return min(d, t.maxDelay)
}

// Launched records a launch that got an instance in bucket b: it ends the
// backoff of b and of the whole pool.
func (t *Tracker) Launched(poolName string, b Bucket) {
	t.mu.Lock()
	p := t.pool(poolName)
	first := !p.launched
	p.launched = true
	if !first && p.last == nil && len(p.buckets) == 0 {
		t.mu.Unlock()
		return
	}
	delete(p.buckets, b)
	delete(p.buckets, Pool)
	if p.last != nil && (p.last.Bucket == b || p.last.Bucket == Pool || p.last.Bucket == (Bucket{})) {
		p.last = nil
		for _, e := range p.buckets { // a failure still backing off elsewhere
			if p.last == nil || e.failure.At.After(p.last.At) {
				f := e.failure
				p.last = &f
			}
		}
	}
	changed := t.changed
	t.mu.Unlock()
	changed(poolName)
}

// Registered records a node of the pool that registered: the count of
// unregistered nodes in a row starts again.
func (t *Tracker) Registered(poolName string) {
	t.mu.Lock()
	p := t.pool(poolName)
	if p.registered && p.unregistered == 0 {
		t.mu.Unlock()
		return
	}
	p.registered = true
	p.unregistered, p.lastUnregistered = 0, ""
	changed := t.changed
	t.mu.Unlock()
	changed(poolName)
}

// Unregistered records a node of the pool that was launched and never
// registered within the registration TTL.
func (t *Tracker) Unregistered(poolName, claim string) {
	t.mu.Lock()
	p := t.pool(poolName)
	p.unregistered++
	p.lastUnregistered = claim
	changed := t.changed
	t.mu.Unlock()
	changed(poolName)
}

// Forget drops everything known about the pool (it was deleted).
func (t *Tracker) Forget(poolName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pools, poolName)
}

// ResetRegistrations forgets the pool's registrations, good and bad (its
// NodePool or EC2NodeClass changed: what failed may be fixed, what worked
// may not work any more).
func (t *Tracker) ResetRegistrations(poolName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pools[poolName]; p != nil {
		p.unregistered, p.lastUnregistered, p.registered = 0, "", false
	}
}

// Status is a pool's launch health.
type Status struct {
	// Launched and Registered report a launch that succeeded and a node
	// that registered since this process started.
	Launched, Registered bool
	// Failure is the latest launch failure not yet followed by a
	// success; nil when there is none.
	Failure *Failure
	// BackingOff reports whether Failure still holds launches back.
	BackingOff bool
	// Unregistered counts nodes in a row that never registered, the
	// latest being LastUnregistered; Paused is Unregistered >= PauseAfter.
	Unregistered     int
	LastUnregistered string
	Paused           bool
	PauseAfter       int
}

// Status reports a pool's launch health.
func (t *Tracker) Status(poolName string) Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Status{PauseAfter: t.pauseAfter}
	p := t.pools[poolName]
	if p == nil {
		return s
	}
	if p.last != nil {
		f := *p.last
		s.Failure = &f
		if e := p.buckets[f.Bucket]; e != nil {
			s.BackingOff = true
			s.Failure.Until = e.failure.Until
		}
	}
	s.Launched, s.Registered = p.launched, p.registered
	s.Unregistered, s.LastUnregistered = p.unregistered, p.lastUnregistered
	s.Paused = p.unregistered >= t.pauseAfter
	return s
}
