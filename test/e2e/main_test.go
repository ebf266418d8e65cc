// Package e2e drives the sandbox (hack/sandbox/world) end to end: the real
// control plane on an embedded etcd, moto_server, bin/fleet-scheduler and
// the node simulator. One sandbox serves every test of the package, so the
// package is one test binary and one set of child processes; tests that
// change the world (the seed's scale-up) run last.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
)

// sandbox is the world every test runs against.
var sandbox *world.World

// e2eBootDelay is the instances' boot delay here: shorter than the
// sandbox's 5s default to keep the suite quick.
const e2eBootDelay = time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "fleet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	start := time.Now()
	sandbox, err = world.Start(ctx, world.Options{
		Dir:               dir,
		BuildScheduler:    true,
		BootDelay:         e2eBootDelay,
		DiscoveryTimeout:  10 * time.Second,
		WaitForScanWorker: true,
		LogFile:           true,
		LogVerbosity:      2,
		Progress:          func(format string, args ...any) { fmt.Printf("e2e: "+format+"\n", args...) },
	})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the sandbox did not come up: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("e2e: sandbox up in %s (state and logs in %s)\n", time.Since(start).Round(100*time.Millisecond), dir)
	code := m.Run()
	sandbox.Stop()
	fmt.Printf("e2e: peak RSS of the sandbox (this test process and its children): %s\n", sandbox.RSS.Summary())
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Printf("e2e: logs kept in %s/logs\n", dir)
	}
	os.Exit(code)
}
