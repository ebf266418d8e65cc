package sandboxtest

import (
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
)

// Options are what every test binary's sandbox starts with: fleet-scheduler
// built from the checkout, instances that boot in a second (the sandbox's
// default is 5s; a second keeps the suites quick), a short discovery
// timeout, the seed's scan-worker up before the tests run, and the logs in
// files at -v=2.
func Options() world.Options {
	return world.Options{
		BuildScheduler:    true,
		BootDelay:         time.Second,
		DiscoveryTimeout:  10 * time.Second,
		WaitForScanWorker: true,
		LogFile:           true,
		LogVerbosity:      2,
	}
}
