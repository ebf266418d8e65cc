// Package cloudprovider is the narrow interface the NodeClaim controllers
// use to turn a claim into a machine and back: Create, Delete, Get, List.
package cloudprovider

import (
	"context"
	"errors"
	"fmt"

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
}

// InsufficientCapacityError means no offering of the claim could be
// launched now; the claim should be deleted so its pods are provisioned
// again elsewhere.
type InsufficientCapacityError struct{ Err error }

func (e *InsufficientCapacityError) Error() string {
	return fmt.Sprintf("insufficient capacity: %v", e.Err)
}
func (e *InsufficientCapacityError) Unwrap() error { return e.Err }

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

// IsInsufficientCapacity reports whether err is an InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	var e *InsufficientCapacityError
	return errors.As(err, &e)
}

// IsNodeClassNotReady reports whether err is a NodeClassNotReadyError.
func IsNodeClassNotReady(err error) bool {
	var e *NodeClassNotReadyError
	return errors.As(err, &e)
}

// IsNotFound reports whether err is a NotFoundError.
func IsNotFound(err error) bool {
	var e *NotFoundError
	return errors.As(err, &e)
}
