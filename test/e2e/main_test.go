// Package e2e drives the sandbox (hack/sandbox/world) end to end: the real
// control plane on an embedded etcd, moto_server, bin/fleet-scheduler and
// the node simulator. One sandbox serves every test of the package, so the
// package is one test binary and one set of child processes; tests that
// change the world (the seed's scale-up) run last.
package e2e

import (
	"testing"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

// sandbox is the world every test runs against.
var sandbox *world.World

func TestMain(m *testing.M) {
	sandboxtest.Main(m, "e2e", 15*time.Minute, sandboxtest.Options(), &sandbox)
}
