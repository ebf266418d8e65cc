package nodeclaimtest

import (
	"sync"
	"testing"

	"github.com/fleet-scheduler/fleet-scheduler/test/awsfault"
)

// Proxy sits between an operator and moto (an awsfault.Proxy) and
// misbehaves on CreateFleet in one way at a time when told to; everything
// else passes through, unless HideTagged hides fresh instances.
type Proxy struct {
	*awsfault.Proxy

	mu    sync.Mutex
	fleet *awsfault.Rule // what CreateFleet does; nil: pass
	hide  *awsfault.Rule
	// launched receives the answer of every CreateFleet in hang mode,
	// once moto has launched, and the request of each held by HoldFleet.
	launched chan string
}

// StartProxy starts a proxy in front of target and stops it when the test ends.
func StartProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	return &Proxy{Proxy: awsfault.Start(t, target), launched: make(chan string, 16)}
}

// FailFleet makes every CreateFleet report each of its overrides failed
// with the EC2 Fleet error code (InsufficientInstanceCapacity, ...) and
// launch nothing.
func (p *Proxy) FailFleet(code string) {
	p.setFleet(awsfault.FleetErrors(0, code, awsfault.FailAll))
}

// HangFleet makes every CreateFleet reach moto (which launches) and then
// never answer the caller until it gives up: a process that dies between
// CreateFleet and writing what it launched. Launched reports each such
// launch's raw answer.
func (p *Proxy) HangFleet() {
	p.setFleet(awsfault.Hang("CreateFleet", 0, p.launched))
}

// BlackholeFleet makes the next times CreateFleet calls (0: all) hang
// before reaching moto: accepted, never answered, nothing launched.
// Launched reports each such request when it arrives.
func (p *Proxy) BlackholeFleet(times int) {
	p.setFleet(awsfault.Blackhole("CreateFleet", times, p.launched))
}

// HoldFleet holds every CreateFleet back until release is called, then
// lets it launch: a launch request still on its way, or an instance EC2
// does not list yet. Launched reports each held request when it arrives.
func (p *Proxy) HoldFleet() (release func()) {
	ch := make(chan struct{})
	p.setFleet(awsfault.Hold("CreateFleet", 0, ch, p.launched))
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Pass lets CreateFleet through again.
func (p *Proxy) Pass() { p.setFleet(nil) }

// HideTagged makes DescribeInstances calls that filter by tag find nothing,
// as EC2's eventually consistent listing does for an instance launched a
// moment ago. Calls by instance id still see it.
func (p *Proxy) HideTagged(hide bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r *awsfault.Rule
	if hide {
		r = awsfault.HideTagged(0)
	}
	p.swap(&p.hide, r)
}

// Launched receives the answer of each CreateFleet that HangFleet keeps
// from its caller (moto launched), and the request of each that HoldFleet
// holds when it arrives.
func (p *Proxy) Launched() <-chan string { return p.launched }

func (p *Proxy) setFleet(r *awsfault.Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swap(&p.fleet, r)
}

// swap replaces the installed rule *cur with r (nil: none).
func (p *Proxy) swap(cur **awsfault.Rule, r *awsfault.Rule) {
	if *cur != nil {
		p.Remove(*cur)
	}
	*cur = r
	if r != nil {
		p.Add(r)
	}
}

// StartOperatorBehindProxy starts a Proxy in front of moto and the operator
// with its AWS calls going through it (o.AWSEndpoint is the Proxy's).
func (e *Env) StartOperatorBehindProxy(t *testing.T, o OperatorOptions) (*Operator, *Proxy) {
	t.Helper()
	proxy := StartProxy(t, e.Moto.Endpoint)
	o.AWSEndpoint = proxy.URL
	return e.StartOperator(t, o), proxy
}
