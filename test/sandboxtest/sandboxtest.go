// Package sandboxtest runs a test binary's tests against one sandbox
// (hack/sandbox/world): the TestMain of test/e2e, test/failover and
// test/keda, the options they start it with, and what their tests ask of it.
package sandboxtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
)

// Main starts a sandbox with opts in a fresh temporary directory, its
// progress printed under name, sets *sandbox, runs the tests, stops the
// sandbox and exits. The state and logs are kept when a test failed. With
// -short nothing runs. timeout bounds the start.
func Main(m *testing.M, name string, timeout time.Duration, opts world.Options, sandbox **world.World) {
	flag.Parse()
	if testing.Short() {
		fmt.Printf("%s: skipped with -short\n", name)
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "fleet-"+name+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts.Dir = dir
	opts.Progress = func(format string, args ...any) { fmt.Printf(name+": "+format+"\n", args...) }
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	start := time.Now()
	w, err := world.Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: the sandbox did not come up: %v (logs in %s/logs)\n", name, err, dir)
		os.Exit(1)
	}
	*sandbox = w
	fmt.Printf("%s: sandbox up in %s (state and logs in %s)\n", name, time.Since(start).Round(100*time.Millisecond), dir)
	code := m.Run()
	w.Stop()
	fmt.Printf("%s: peak RSS of the sandbox (this test process and its children): %s\n", name, w.RSS.Summary())
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Printf("%s: logs kept in %s/logs\n", name, dir)
	}
	os.Exit(code)
}
