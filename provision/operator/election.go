package operator

import (
	"context"
	"os"
	"time"

	"github.com/google/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// kube-scheduler's leaderElection defaults, for a process not given the
// scheduler's settings.
const (
	defaultLeaseDuration = 15 * time.Second
	defaultRenewDeadline = 10 * time.Second
	defaultRetryPeriod   = 2 * time.Second
)

// elected reports whether the controllers run under their Lease: when one
// is named and the scheduler itself elects a leader. A scheduler told not
// to elect one is the only replica, so its controllers run at once.
func (o *Operator) elected() bool {
	return o.opts.LeaseName != "" && (o.opts.LeaderElection == nil || o.opts.LeaderElection.LeaderElect)
}

// timings are the lease duration, renew deadline and retry period: the
// scheduler's, so that both Leases change hands after the same wait when a
// leader dies.
func (o *Operator) timings() (lease, renew, retry time.Duration) {
	lease, renew, retry = defaultLeaseDuration, defaultRenewDeadline, defaultRetryPeriod
	if le := o.opts.LeaderElection; le != nil {
		if le.LeaseDuration.Duration > 0 {
			lease = le.LeaseDuration.Duration
		}
		if le.RenewDeadline.Duration > 0 {
			renew = le.RenewDeadline.Duration
		}
		if le.RetryPeriod.Duration > 0 {
			retry = le.RetryPeriod.Duration
		}
	}
	return lease, renew, retry
}

// leaderElect runs the controllers while this process holds the Lease. On
// losing it the process exits, as kube-scheduler does, so a stale leader
// never acts.
func (o *Operator) leaderElect(ctx context.Context, run func(context.Context)) error {
	id := o.opts.Identity
	if id == "" {
		host, _ := os.Hostname()
		id = host + "_" + uuid.NewString()
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.opts.LeaseNamespace, o.opts.LeaseName,
		o.Kube.CoreV1(), o.Kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return err
	}
	lease, renew, retry := o.timings()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: o.opts.LeaseName,
		LeaseDuration: lease, RenewDeadline: renew, RetryPeriod: retry,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				klog.FromContext(ctx).Info("Holding the provisioning controllers' lease; starting the controllers",
					"lease", o.opts.LeaseNamespace+"/"+o.opts.LeaseName, "identity", id)
				run(ctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					klog.FromContext(ctx).Error(nil, "Lost the provisioning controllers' lease; exiting")
					klog.FlushAndExit(klog.ExitFlushTimeout, 1)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Waiting for the provisioning controllers' lease", "lease", o.opts.LeaseNamespace+"/"+o.opts.LeaseName,
		"identity", id, "leaseDuration", lease, "renewDeadline", renew, "retryPeriod", retry)
	go elector.Run(ctx)
	return nil
}
