// Package cloudprovider is the narrow interface the NodeClaim controllers
// use to turn a claim into a machine and back: Create, Delete, Get, List.
package cloudprovider

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	karpv1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/karpenter/v1"
)

// CloudProvider launches and terminates the machines behind NodeClaims.
type CloudProvider interface {
	// Create launches the claim's machine, or finds the one an earlier
	// attempt launched, and returns the claim with its resolved labels
	// and status (providerID, imageID, capacity, allocatable) filled in.
	Create(ctx context.Context, nc *karpv1.NodeClaim) (*karpv1.NodeClaim, error)
	// Delete terminates the claim's machine and what was made for it. A
	// machine that is already gone is not an error.
	Delete(ctx context.Context, nc *karpv1.NodeClaim) error
	// Get reports the machine with the provider ID; NotFoundError if none.
	Get(ctx context.Context, providerID string) (*Machine, error)
	// List returns every live machine launched for this cluster.
	List(ctx context.Context) ([]*Machine, error)
}

// RegisteredHook is implemented by a CloudProvider with something to tidy
// up once a claim's Node has registered (the EC2 provider revokes the
// node's minted bootstrap token: the kubelet holds a client certificate by
// then). The lifecycle controller calls it after registration; a failure
// is logged, not retried.
type RegisteredHook interface {
	Registered(ctx context.Context, nc *karpv1.NodeClaim) error
}

// Machine is a live machine as the controllers need to see it.
type Machine struct {
	ProviderID string
	// NodeClaim is the claim the machine was launched for (from its tags).
	NodeClaim string
	State     string
	// SubnetID and SecurityGroupIDs are where the machine was launched,
	// for drift when its node class selects others.
	SubnetID         string
	SecurityGroupIDs []string
	// LaunchTime is when the machine was launched; zero when unknown.
	LaunchTime time.Time
}

// Collector is implemented by a CloudProvider whose garbage can be
// collected piece by piece: one machine by itself (a second machine a claim
// does not name), and what was made for a claim besides its machines (EC2:
// its launch template, its minted bootstrap token).
type Collector interface {
	// Terminate ends one machine, whatever claim it carries.
	Terminate(ctx context.Context, providerID string) error
	// Leftovers lists the claims something besides machines was made for,
	// with when it was made.
	Leftovers(ctx context.Context) (map[string]time.Time, error)
	// DeleteLeftovers removes what was made for a claim, machines aside.
	DeleteLeftovers(ctx context.Context, claim string) error
}

// InsufficientCapacityError means no offering of the claim could be
// launched now; the claim should be deleted so its pods are provisioned
// again elsewhere.
type InsufficientCapacityError struct {
	Err error
	// Reason names the failure (InsufficientCapacity).
	Reason string
}

func (e *InsufficientCapacityError) Error() string {
	return fmt.Sprintf("insufficient capacity: %v", e.Err)
}
func (e *InsufficientCapacityError) Unwrap() error { return e.Err }

// LaunchError is a launch that failed for a reason the claim keeps: it is
// retried, after RetryAfter when that is set (a backoff of its NodePool),
// else at the controller's pace.
type LaunchError struct {
	Err error
	// Reason names the failure for the claim's condition and the events
	// (VcpuLimitExceeded, Unauthorized, InvalidParameter, CallTimeout...).
	Reason string
	// RetryAfter is how long the claim's NodePool holds such launches back.
	RetryAfter time.Duration
	// Answered: the cloud answered the launch request, so nothing was
	// launched by it (a timeout leaves that unknown).
	Answered bool
	// Called: the launch reached the cloud (false when a backoff kept it
	// from calling at all).
	Called bool
}

func (e *LaunchError) Error() string { return e.Err.Error() }
func (e *LaunchError) Unwrap() error { return e.Err }

// AnnotationLaunchAttempt counts a claim's launches the cloud answered
// without a machine. A provider derives its idempotency token from it (EC2:
// CreateFleet's ClientToken), so a request whose answer was lost is
// repeated under the same token; the lifecycle controller moves it on after
// an answered failure (LaunchError.Answered).
const AnnotationLaunchAttempt = "fleet-scheduler.io/launch-attempt"

// LaunchAttempt is the claim's launch attempt (0 without the annotation).
func LaunchAttempt(nc *karpv1.NodeClaim) int {
	n, err := strconv.Atoi(nc.Annotations[AnnotationLaunchAttempt])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// NodeClassNotReadyError means the claim's node class cannot be launched
// from yet (not found, or its subnets, security groups or images are not
// resolved); retry later.
type NodeClassNotReadyError struct{ Err error }

func (e *NodeClassNotReadyError) Error() string { return e.Err.Error() }
func (e *NodeClassNotReadyError) Unwrap() error { return e.Err }

// NotFoundError means the machine does not exist (any more).
type NotFoundError struct{ Err error }

func (e *NotFoundError) Error() string { return e.Err.Error() }
func (e *NotFoundError) Unwrap() error { return e.Err }

// BusyError means another call about the same claim is under way; retry
// the claim shortly.
type BusyError struct{ Err error }

func (e *BusyError) Error() string { return e.Err.Error() }
func (e *BusyError) Unwrap() error { return e.Err }

// IsBusy reports whether err is a BusyError.
func IsBusy(err error) bool {
	_, ok := errors.AsType[*BusyError](err)
	return ok
}

// AsLaunchError returns the LaunchError in err, or nil.
func AsLaunchError(err error) *LaunchError {
	e, _ := errors.AsType[*LaunchError](err)
	return e
}

// Reason names err for conditions, events and the error label of
// karpenter_cloudprovider_errors_total: Karpenter's error type names
// (InsufficientCapacityError, NodeClassNotReadyError, NodeClaimNotFoundError)
// where it has one, else a LaunchError's reason, else "" (the provider may
// know better).
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case IsInsufficientCapacity(err):
		return "InsufficientCapacityError"
	case IsNodeClassNotReady(err):
		return "NodeClassNotReadyError"
	case IsNotFound(err):
		return "NodeClaimNotFoundError"
	}
	if e := AsLaunchError(err); e != nil {
		return e.Reason
	}
	return ""
}

// IsInsufficientCapacity reports whether err is an InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	_, ok := errors.AsType[*InsufficientCapacityError](err)
	return ok
}

// IsNodeClassNotReady reports whether err is a NodeClassNotReadyError.
func IsNodeClassNotReady(err error) bool {
	_, ok := errors.AsType[*NodeClassNotReadyError](err)
	return ok
}

// IsNotFound reports whether err is a NotFoundError.
func IsNotFound(err error) bool {
	_, ok := errors.AsType[*NotFoundError](err)
	return ok
}
