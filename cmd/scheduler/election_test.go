package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// TestLeaderElection: the settings the provisioning Lease takes are
// kube-scheduler's, resolved as it resolves them.
func TestLeaderElection(t *testing.T) {
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  leaseDuration: 10s
  renewDeadline: 8s
  retryPeriod: 1s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args                 []string
		elect                bool
		lease, renew, period time.Duration
	}{
		"defaults":               {args: nil, elect: true, lease: 15 * time.Second, renew: 10 * time.Second, period: 2 * time.Second},
		"flags without a config": {args: []string{"--leader-elect-lease-duration=20s", "--leader-elect-retry-period=3s"}, elect: true, lease: 20 * time.Second, renew: 10 * time.Second, period: 3 * time.Second},
		"config":                 {args: []string{"--config", config}, elect: true, lease: 10 * time.Second, renew: 8 * time.Second, period: time.Second},
		"flags over the config":  {args: []string{"--config", config, "--leader-elect-renew-deadline=9s"}, elect: true, lease: 10 * time.Second, renew: 9 * time.Second, period: time.Second},
		"election off by a flag": {args: []string{"--config", config, "--leader-elect=false"}, elect: false, lease: 10 * time.Second, renew: 8 * time.Second, period: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := app.NewSchedulerCommand()
			if err := cmd.Flags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			le, err := leaderElection(cmd.Flags())
			if err != nil {
				t.Fatal(err)
			}
			if le.LeaderElect != tc.elect || le.LeaseDuration.Duration != tc.lease || le.RenewDeadline.Duration != tc.renew || le.RetryPeriod.Duration != tc.period {
				t.Errorf("got elect=%v %s/%s/%s, want elect=%v %s/%s/%s", le.LeaderElect, le.LeaseDuration.Duration, le.RenewDeadline.Duration,
					le.RetryPeriod.Duration, tc.elect, tc.lease, tc.renew, tc.period)
			}
		})
	}
	t.Run("an unreadable config", func(t *testing.T) {
		cmd := app.NewSchedulerCommand()
		if err := cmd.Flags().Parse([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}); err != nil {
			t.Fatal(err)
		}
		if _, err := leaderElection(cmd.Flags()); err == nil {
			t.Error("no error for a config that does not exist")
		}
		if le := defaultLeaderElection(); !le.LeaderElect {
			t.Error("the fallback does not elect a leader")
		}
	})
}
