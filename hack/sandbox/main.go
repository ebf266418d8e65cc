// Command sandbox is `make run`: the seed's cluster on one machine. It
// starts etcd (in process), kube-apiserver, kube-controller-manager,
// moto_server and fleet-scheduler (child processes), seeds the cluster as
// the seed's runbook describes it, runs the node simulator, writes
// .sandbox/kubeconfig and .sandbox/env, prints "sandbox ready", and runs
// in the foreground until Ctrl-C or SIGTERM, when it stops everything it
// started. See hack/sandbox/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
)

func main() {
	var o world.Options
	flag.StringVar(&o.Dir, "dir", "", "state directory (default <checkout>/.sandbox)")
	flag.DurationVar(&o.BootDelay, "boot-delay", 5*time.Second, "time from a moto instance running to its kubeadm join")
	flag.DurationVar(&o.RegistrationTTL, "registration-ttl", 3*time.Minute, "fleet-scheduler's registrationTTL")
	flag.BoolVar(&o.BuildScheduler, "build-scheduler", false, "also go build bin/fleet-scheduler (make run has built it)")
	flag.IntVar(&o.LogVerbosity, "v", 1, "verbosity of .sandbox/logs/sandbox.log (node simulator)")
	flag.Parse()
	o.LogFile = true
	o.WaitForScanWorker = true
	o.Progress = func(format string, args ...any) { fmt.Printf(format+"\n", args...) }

	ctx := stopOnSignal()

	w, err := world.Start(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox failed: %v\n", err)
		os.Exit(1)
	}
	envPath := filepath.Join(w.Dir, "env")
	if err := os.WriteFile(envPath, []byte(w.EnvFile()), 0o644); err != nil {
		w.Stop()
		fmt.Fprintf(os.Stderr, "sandbox failed: %v\n", err)
		os.Exit(1)
	}
	_, rss := w.RSS.Current()
	fmt.Printf("sandbox ready in %.1fs: in another shell, source %s; logs in %s; RSS %d MiB; Ctrl-C stops it\n",
		w.Elapsed().Seconds(), rel(envPath), rel(filepath.Join(w.Dir, "logs")), rss>>20)

	code := 0
	select {
	case <-ctx.Done():
		fmt.Println("stopping the sandbox")
	case err := <-w.Failed():
		fmt.Fprintf(os.Stderr, "sandbox: %v; stopping\n", err)
		code = 1
	}
	w.Stop()
	_ = os.Remove(envPath)
	fmt.Printf("sandbox stopped; peak RSS %s\n", w.RSS.Summary())
	os.Exit(code)
}

// stopOnSignal returns a context that ends at the first SIGINT or
// SIGTERM. Later SIGTERMs are ignored while the sandbox stops (make
// forwards the SIGTERM its process group already got); a second Ctrl-C
// after two seconds exits at once, and the children die with the sandbox
// (their parent-death signal).
func stopOnSignal() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		first := time.Now()
		cancel()
		for sig := range signals {
			if sig == os.Interrupt && time.Since(first) > 2*time.Second {
				fmt.Println("sandbox: interrupted again; exiting now")
				os.Exit(130)
			}
		}
	}()
	return ctx
}

func rel(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && len(r) < len(p) {
		return r
	}
	return p
}
