package disruption

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
)

// reporter records why a node is not disrupted, on its NodeClaim and its
// Node, once per change: a node blocked for the same reason loop after loop
// gets one event, and another when the reason changes or comes back.
type reporter struct {
	rec events.EventRecorder

	mu   sync.Mutex
	last map[string]string // claim -> last message recorded
	seen map[string]bool   // claims reported in the current loop
}

func newReporter(rec events.EventRecorder) *reporter {
	return &reporter{rec: rec, last: map[string]string{}, seen: map[string]bool{}}
}

// blocked records reason/message for the claim unless it is what was
// recorded last. Only the first reason of a loop counts (the loop judges
// expiry, drift, emptiness and consolidation in that order), so a node
// blocked for several methods does not alternate between them.
func (r *reporter) blocked(nc *karpv1.NodeClaim, node *v1.Node, reason, message string) {
	r.mu.Lock()
	if r.seen[nc.Name] {
		r.mu.Unlock()
		return
	}
	r.seen[nc.Name] = true
	key := reason + "\x00" + message
	same := r.last[nc.Name] == key
	r.last[nc.Name] = key
	r.mu.Unlock()
	if same {
		return
	}
	r.rec.Eventf(nc, controller.NodeObject(node), v1.EventTypeNormal, reason, "Disrupt", "%s", message)
	if node != nil {
		r.rec.Eventf(controller.NodeObject(node), nil, v1.EventTypeNormal, reason, "Disrupt", "%s", message)
	}
}

// endLoop forgets claims not reported in the loop just run, so that if
// they are blocked again the event is recorded again.
func (r *reporter) endLoop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.last {
		if !r.seen[name] {
			delete(r.last, name)
		}
	}
	r.seen = map[string]bool{}
}

// decided records the disruption decision.
func (r *reporter) decided(nc *karpv1.NodeClaim, node *v1.Node, reason, message string) {
	r.event(nc, node, v1.EventTypeNormal, "Disrupting", reason+": "+message)
}

// event records one event on the claim and its node.
func (r *reporter) event(nc *karpv1.NodeClaim, node *v1.Node, eventType, reason, message string) {
	r.mu.Lock()
	delete(r.last, nc.Name)
	r.mu.Unlock()
	r.rec.Eventf(nc, controller.NodeObject(node), eventType, reason, "Disrupt", "%s", message)
	if node != nil {
		r.rec.Eventf(controller.NodeObject(node), nil, eventType, reason, "Disrupt", "%s", message)
	}
}
