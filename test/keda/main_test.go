// Package keda runs the runbook's whole chain end to end in a sandbox
// started with KEDA (hack/sandbox/world, Options.KEDA): messages in the
// RabbitMQ scan queue, KEDA scaling scan-worker, pending pods, NodeClaims,
// nodes joining, the simulated workers draining the queue, KEDA scaling
// back to 3, and fleet-scheduler consolidating the emptied nodes away.
//
// Its own package (and test binary) because it needs its own sandbox: the
// chain changes scan-worker's replica count, which test/e2e's tests assume
// they alone change.
package keda

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/rabbitmq"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
	"github.com/fleet-scheduler/fleet-scheduler/test/sandboxtest"
)

var sandbox *world.World

// skip, when set, is why the chain cannot run on this machine.
var skip string

// needSandbox skips t when the sandbox could not be started for want of
// a prerequisite.
func needSandbox(t *testing.T) {
	t.Helper()
	if skip != "" {
		t.Skip(skip)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("keda: skipped with -short")
		os.Exit(0)
	}
	// Without the broker there is no chain to run: say so and pass
	// (`make test` installs it, or says why it could not).
	if _, _, err := rabbitmq.Binaries(); err != nil {
		skip = err.Error()
		fmt.Fprintf(os.Stderr, "keda: skipped: %s\n", skip)
		os.Exit(m.Run())
	}
	// The first run on a machine builds KEDA (10-20 minutes on 2 cores).
	opts := sandboxtest.Options()
	opts.KEDA = true
	sandboxtest.Main(m, "keda", 30*time.Minute, opts, &sandbox)
}
