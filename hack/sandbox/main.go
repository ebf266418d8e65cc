// Command sandbox is `make run`: the seed's cluster on one machine. It
// starts etcd (in process), kube-apiserver, kube-controller-manager,
// moto_server and fleet-scheduler (child processes), seeds the cluster as
// the seed's runbook describes it, runs the node simulator, writes
// .sandbox/kubeconfig and .sandbox/env, prints "sandbox ready", and runs
// in the foreground until Ctrl-C or SIGTERM, when it stops everything it
// started. With --keda (make run KEDA=1) it also runs RabbitMQ, KEDA and
// scan-worker's ScaledObject; `bin/sandbox publish N` and `bin/sandbox
// queue-depth` then fill and read the scan queue. See hack/sandbox/README.md.
//
// `sandbox leader` prints which fleet-scheduler replica (scheduler-<i>)
// holds kube-system/kube-scheduler in the running sandbox.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/world"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "leader" {
		os.Exit(leader(os.Args[2:]))
	}
	var o world.Options
	flag.StringVar(&o.Dir, "dir", "", "state directory (default <checkout>/.sandbox)")
	flag.DurationVar(&o.BootDelay, "boot-delay", 5*time.Second, "time from a moto instance running to its kubeadm join")
	flag.DurationVar(&o.RegistrationTTL, "registration-ttl", 3*time.Minute, "fleet-scheduler's registrationTTL")
	flag.BoolVar(&o.BuildScheduler, "build-scheduler", false, "also go build bin/fleet-scheduler (make run has built it)")
	flag.IntVar(&o.LogVerbosity, "v", 1, "verbosity of .sandbox/logs/sandbox.log (node simulator)")
	flag.BoolVar(&o.KEDA, "keda", false, "also run RabbitMQ, KEDA and scan-worker's ScaledObject (make run KEDA=1)")
	flag.StringVar(&o.Fault, "fault", "", fmt.Sprintf("one of the runbook's troubleshooting cases to inject: %s (make run FAULT=...)", strings.Join(world.Faults, ", ")))
	flag.IntVar(&o.Schedulers, "schedulers", 1, "fleet-scheduler replicas, leader-elected (make run SCHEDULERS=n)")
	flag.IntVar(&o.SchedulerVerbosity, "scheduler-v", 2, "fleet-scheduler's -v")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: bin/sandbox [flags]        run the sandbox\n"+
			"       bin/sandbox publish N        publish N messages to the scan queue (KEDA=1)\n"+
			"       bin/sandbox queue-depth      print the number of messages ready in the scan queue\n"+
			"       bin/sandbox leader           print the fleet-scheduler replica (scheduler-<i>) that leads\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if args := flag.Args(); len(args) > 0 {
		switch args[0] {
		case "publish", "queue-depth":
			if err := queueCommand(o.Dir, args); err != nil {
				fmt.Fprintf(os.Stderr, "sandbox %s: %v\n", args[0], err)
				os.Exit(1)
			}
			return
		case "leader":
			if o.Dir != "" {
				os.Exit(leader(append([]string{"--dir", o.Dir}, args[1:]...)))
			}
			os.Exit(leader(args[1:]))
		default:
			flag.Usage()
			os.Exit(2)
		}
	}
	if o.Fault != "" && !slices.Contains(world.Faults, o.Fault) {
		fmt.Fprintf(os.Stderr, "sandbox: FAULT=%s: want one of %s\n", o.Fault, strings.Join(world.Faults, ", "))
		os.Exit(2)
	}
	o.LogFile = true
	o.Kubeadm = true
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
	fmt.Printf("sandbox ready in %.1fs: in another shell, source %s; Prometheus at %s; logs in %s; RSS %d MiB; Ctrl-C stops it\n",
		w.Elapsed().Seconds(), rel(envPath), w.Monitoring.URL, rel(filepath.Join(w.Dir, "logs")), rss>>20)

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
	_ = os.Remove(filepath.Join(w.Dir, world.BrokerURLFile))
	fmt.Printf("sandbox stopped; peak RSS %s\n", w.RSS.Summary())
	os.Exit(code)
}

// leader is `sandbox leader [--dir DIR]`: it prints the replica that holds
// kube-system/kube-scheduler now, or says why none does and exits 1.
func leader(args []string) int {
	fs := flag.NewFlagSet("sandbox leader", flag.ContinueOnError)
	dir := fs.String("dir", "", "state directory of the running sandbox (default <checkout>/.sandbox)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		root, err := controlplane.RepoRoot()
		if err != nil {
			fmt.Fprintf(os.Stderr, "sandbox leader: %v\n", err)
			return 1
		}
		*dir = filepath.Join(root, ".sandbox")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name, err := world.Leader(ctx, *dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox leader: %v\n", err)
		return 1
	}
	fmt.Println(name)
	return 0
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
