package aws

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aws/smithy-go"

	"github.com/fleet-scheduler/fleet-scheduler/provision/cloudprovider"
	"github.com/fleet-scheduler/fleet-scheduler/provision/controller"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
	"github.com/fleet-scheduler/fleet-scheduler/provision/launchhealth"
	"github.com/fleet-scheduler/fleet-scheduler/provision/metrics"
	"github.com/fleet-scheduler/fleet-scheduler/provision/packing"
)

// providerName is the provider label of the cloud provider metrics.
const providerName = "aws"

// observe counts a call in karpenter_cloudprovider_duration_seconds and,
// when it failed, karpenter_cloudprovider_errors_total, with Karpenter's
// labels: the controller that called, the method, the provider and the
// error (cloudprovider.Reason, else EC2's reason for it).
func (p *Provider) observe(ctx context.Context, method string, began time.Time, err *error) {
	name := controller.NameFrom(ctx)
	metrics.CloudProviderDuration.WithLabelValues(name, method, providerName).Observe(time.Since(began).Seconds())
	if *err == nil || cloudprovider.IsBusy(*err) || errors.Is(*err, context.Canceled) {
		return
	}
	label := cloudprovider.Reason(*err)
	if label == "" {
		if r := ec2.Reason(*err); r != ec2.ReasonLaunchFailed || method == "Create" {
			label = r
		}
	}
	metrics.CloudProviderErrors.WithLabelValues(name, method, providerName, label).Inc()
}

func (p *Provider) now() time.Time {
	if p.Health != nil {
		return p.Health.Now()
	}
	return time.Now()
}

// bucketOf is the vCPU quota bucket an offering launches in.
func bucketOf(instanceType, capacityType string) launchhealth.Bucket {
	return launchhealth.Bucket{CapacityType: capacityType, Family: launchhealth.QuotaFamily(instanceType)}
}

// admit keeps the options whose bucket's backoff lets a launch through
// now; refused is the failure that holds the first of the others back.
func (p *Provider) admit(pool string, options []*packing.PoolOption) ([]*packing.PoolOption, *launchhealth.Failure) {
	if p.Health == nil {
		return options, nil
	}
	verdict := map[launchhealth.Bucket]bool{}
	var refused *launchhealth.Failure
	out := make([]*packing.PoolOption, 0, len(options))
	for _, o := range options {
		b := bucketOf(o.InstanceType, o.CapacityType)
		ok, seen := verdict[b]
		if !seen {
			var f *launchhealth.Failure
			ok, f = p.Health.Admit(pool, b)
			verdict[b] = ok
			if f != nil && (refused == nil || f.Until.Before(refused.Until)) {
				refused = f
			}
		}
		if ok {
			out = append(out, o)
		}
	}
	return out, refused
}

// backedOff is the error of a claim whose every option is held back.
func backedOff(f *launchhealth.Failure, now time.Time) error {
	return &cloudprovider.LaunchError{Reason: f.Reason, RetryAfter: max(f.Until.Sub(now), time.Second),
		Err: errors.New("not launched: " + f.String())}
}

// failed records a failed launch in the pool's health and returns it as
// the claim is to see it: an InsufficientCapacityError (the claim is given
// up) or a LaunchError saying when its pool launches again.
func (p *Provider) failed(pool, claim string, req *ec2.LaunchRequest, err error) error {
	reason := ec2.Reason(err)
	record := func(b launchhealth.Bucket) launchhealth.Failure {
		f := launchhealth.Failure{Reason: reason, Message: err.Error(), NodeClaim: claim, Bucket: b, At: p.now()}
		if p.Health != nil {
			f = p.Health.Failed(pool, f)
		}
		return f
	}
	switch {
	case ec2.IsInsufficientCapacity(err):
		record(launchhealth.Bucket{})
		return &cloudprovider.InsufficientCapacityError{Err: err, Reason: reason}
	case !answered(err):
		// Timed out or unreachable: the claim retries at its own pace
		// (and its retry finds whatever the call may have launched).
		return &cloudprovider.LaunchError{Err: err, Reason: reason, Called: true}
	case ec2.IsQuotaExceeded(err):
		var last launchhealth.Failure
		for _, b := range quotaBuckets(req, err) {
			if f := record(b); f.Until.After(last.Until) {
				last = f
			}
		}
		return heldBack(err, last)
	default:
		return heldBack(err, record(launchhealth.Pool))
	}
}

// answered reports whether EC2 answered the failed call (so it launched
// nothing), as opposed to a call that timed out or never got through.
func answered(err error) bool {
	if ec2.IsCallTimeout(err) {
		return false
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) || ec2.IsInsufficientCapacity(err) || ec2.IsQuotaExceeded(err) ||
		errors.As(err, new(*ec2.LaunchError))
}

// quotaBuckets are the buckets a quota error is held against: those of the
// offerings EC2 named, or, for an error of the whole call, every bucket
// the request asked in.
func quotaBuckets(req *ec2.LaunchRequest, err error) []launchhealth.Bucket {
	var out []launchhealth.Bucket
	add := func(b launchhealth.Bucket) {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	for _, f := range ec2.UnavailableOfferings(err) {
		add(bucketOf(f.InstanceType, f.CapacityType))
	}
	if len(out) == 0 {
		for _, t := range req.InstanceTypes {
			add(bucketOf(t.Name, req.CapacityType))
		}
	}
	return out
}

// heldBack is an answered launch failure that holds its bucket back.
func heldBack(err error, f launchhealth.Failure) error {
	if f.Until.IsZero() { // no tracker: retried at the controller's pace
		return &cloudprovider.LaunchError{Reason: f.Reason, Answered: true, Called: true, Err: err}
	}
	f.NodeClaim = "" // the claim knows its own name
	return &cloudprovider.LaunchError{Reason: f.Reason, Answered: true, Called: true, RetryAfter: f.Until.Sub(f.At),
		Err: errors.New(f.String())}
}
