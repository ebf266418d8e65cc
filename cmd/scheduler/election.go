package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	componentbaseconfig "k8s.io/component-base/config"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/apis/config/latest"
)

// leaderElection is the scheduler's leaderElection as kube-scheduler
// resolves it: the --config file's (defaulted), with the --leader-elect*
// flags given on the command line over it; without --config, the defaults
// with those flags over them. The provisioning controllers' Lease follows
// it. kube-scheduler keeps its resolved configuration to itself, so it is
// resolved here a second time, from the same file and flags.
func leaderElection(flags *pflag.FlagSet) (componentbaseconfig.LeaderElectionConfiguration, error) {
	var (
		cfg *schedconfig.KubeSchedulerConfiguration
		err error
	)
	if f := flags.Lookup("config"); f != nil && f.Value.String() != "" {
		cfg, err = options.LoadConfigFromFile(klog.Background(), f.Value.String())
	} else {
		cfg, err = latest.Default()
	}
	if err != nil {
		return componentbaseconfig.LeaderElectionConfiguration{}, err
	}
	le := cfg.LeaderElection
	changed := func(name string) bool { f := flags.Lookup(name); return f != nil && f.Changed }
	if changed("leader-elect") {
		if le.LeaderElect, err = flags.GetBool("leader-elect"); err != nil {
			return le, fmt.Errorf("--leader-elect: %w", err)
		}
	}
	for _, d := range []struct {
		flag string
		to   *time.Duration
	}{
		{"leader-elect-lease-duration", &le.LeaseDuration.Duration},
		{"leader-elect-renew-deadline", &le.RenewDeadline.Duration},
		{"leader-elect-retry-period", &le.RetryPeriod.Duration},
	} {
		if !changed(d.flag) {
			continue
		}
		if *d.to, err = flags.GetDuration(d.flag); err != nil {
			return le, fmt.Errorf("--%s: %w", d.flag, err)
		}
	}
	return le, nil
}

// defaultLeaderElection is kube-scheduler's default: elected, 15s/10s/2s.
func defaultLeaderElection() componentbaseconfig.LeaderElectionConfiguration {
	cfg, err := latest.Default()
	if err != nil {
		return componentbaseconfig.LeaderElectionConfiguration{LeaderElect: true}
	}
	return cfg.LeaderElection
}
