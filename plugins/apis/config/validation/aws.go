package validation

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config"
	"github.com/fleet-scheduler/fleet-scheduler/provision/ec2"
)

// Bounds on an AWS call's deadline: shorter than a second fails calls
// that are merely slow; longer than ten minutes is no deadline at all.
const (
	MinAWSCallTimeout = time.Second
	MaxAWSCallTimeout = 10 * time.Minute
	// receiveMessageWait is the interruption queue's long poll: its
	// ReceiveMessage must be given longer than that to answer.
	receiveMessageWait = 20 * time.Second
)

func validateAWSCallTimeouts(p *field.Path, t *config.AWSCallTimeouts) field.ErrorList {
	errs := callTimeout(p.Child("default"), t.Default.Duration)
	ops := make([]string, 0, len(t.PerCall))
	for op := range t.PerCall {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		path := p.Child("perCall").Key(op)
		if !slices.Contains(ec2.Operations, op) {
			errs = append(errs, field.NotSupported(path, op, ec2.Operations))
			continue
		}
		d := t.PerCall[op].Duration
		errs = append(errs, callTimeout(path, d)...)
		if op == "ReceiveMessage" && d > 0 && d <= receiveMessageWait {
			errs = append(errs, field.Invalid(path, d.String(), fmt.Sprintf("must be longer than the interruption queue's %s long poll", receiveMessageWait)))
		}
	}
	return errs
}

func callTimeout(p *field.Path, d time.Duration) field.ErrorList {
	if d < MinAWSCallTimeout || d > MaxAWSCallTimeout {
		return field.ErrorList{field.Invalid(p, d.String(), fmt.Sprintf("must be between %s and %s", MinAWSCallTimeout, MaxAWSCallTimeout))}
	}
	return nil
}
