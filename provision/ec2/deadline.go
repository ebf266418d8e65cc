package ec2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
)

// CallTimeouts bound every AWS API call a client built from the
// configuration makes: the whole call as its caller sees it, retries
// included. A call that does not answer in time fails with a
// *CallTimeoutError, so a hung endpoint fails one step of one controller
// instead of holding its worker (and the claim it works on) forever.
type CallTimeouts struct {
	// Default bounds every operation not named in PerCall
	// (DefaultCallTimeout when zero).
	Default time.Duration
	// PerCall bounds named operations ("CreateFleet", "ReceiveMessage"...).
	PerCall map[string]time.Duration
}

// DefaultCallTimeout bounds an AWS call by default: the Describe, Get and
// Terminate calls answer in well under a second, so this leaves room for a
// few throttled retries and no more.
const DefaultCallTimeout = 15 * time.Second

// DefaultPerCallTimeouts are the operations slower than the rest: an
// instant fleet waits for EC2 to place the instance (seconds, sometimes
// tens of seconds); the catalogue's pages are large; ReceiveMessage is a
// 20-second long poll.
var DefaultPerCallTimeouts = map[string]time.Duration{
	"CreateFleet":                   45 * time.Second,
	"DescribeInstanceTypes":         30 * time.Second,
	"DescribeInstanceTypeOfferings": 30 * time.Second,
	"DescribeSpotPriceHistory":      30 * time.Second,
	"ReceiveMessage":                40 * time.Second,
}

// Operations are the AWS operations fleet-scheduler calls, the names
// PerCall may use.
var Operations = []string{
	// EC2
	"CreateFleet", "CreateLaunchTemplate", "DeleteLaunchTemplate", "DescribeImages", "DescribeInstanceTypeOfferings",
	"DescribeInstanceTypes", "DescribeInstances", "DescribeLaunchTemplates", "DescribeSecurityGroups",
	"DescribeSpotPriceHistory", "DescribeSubnets", "TerminateInstances",
	// SSM, IAM, SQS
	"GetParameter", "GetInstanceProfile", "CreateInstanceProfile", "AddRoleToInstanceProfile",
	"RemoveRoleFromInstanceProfile", "DeleteInstanceProfile", "GetQueueUrl", "ReceiveMessage", "DeleteMessage",
}

// For is the deadline of one operation.
func (t CallTimeouts) For(operation string) time.Duration {
	if d, ok := t.PerCall[operation]; ok && d > 0 {
		return d
	}
	if d, ok := DefaultPerCallTimeouts[operation]; ok && (t.Default == 0 || t.Default < d) {
		return d
	}
	if t.Default > 0 {
		return t.Default
	}
	return DefaultCallTimeout
}

// Apply is cfg with the deadlines on every call its clients make.
func (t CallTimeouts) Apply(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		op, d := stack.ID(), t.For(stack.ID())
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CallDeadline",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				callCtx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				out, md, err := next.HandleInitialize(callCtx, in)
				if err != nil && ctx.Err() == nil && errors.Is(callCtx.Err(), context.DeadlineExceeded) {
					err = &CallTimeoutError{Operation: op, Timeout: d, Err: err}
				}
				return out, md, err
			}), middleware.Before)
	})
	return cfg
}

// CallTimeoutError is an AWS call that did not answer within its deadline.
// The call may still have been acted on (a CreateFleet whose answer was
// lost), so what it was to do must be looked up before it is retried.
type CallTimeoutError struct {
	Operation string
	Timeout   time.Duration
	Err       error
}

func (e *CallTimeoutError) Error() string {
	return fmt.Sprintf("%s did not answer within %s (its deadline, awsCallTimeouts in the Provisioner args)", e.Operation, e.Timeout)
}

func (e *CallTimeoutError) Unwrap() error { return e.Err }

// IsCallTimeout reports whether err is, or wraps, a *CallTimeoutError.
func IsCallTimeout(err error) bool {
	_, ok := errors.AsType[*CallTimeoutError](err)
	return ok
}
