// Package failover runs the sandbox (hack/sandbox/world) with two
// fleet-scheduler replicas, minting bootstrap tokens under the shipped
// RBAC, and kills the leader with SIGKILL in the middle of a scale-up: a
// standby takes both Leases over, rebuilds its claims from the API objects
// and the pods' nominations, and every pod runs with no claim launched
// twice. It has a sandbox of its own: killing a scheduler changes the world.
package failover

import (
	"testing"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

// sandbox is the world every test runs against.
var sandbox *world.World

func TestMain(m *testing.M) {
	opts := sandboxtest.Options()
	opts.Schedulers = 2
	// Every API request in the schedulers' logs: no token may be there.
	opts.SchedulerVerbosity = 6
	opts.MintedTokens = true
	sandboxtest.Main(m, "failover", 15*time.Minute, opts, &sandbox)
}
