package ec2

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// ErrNotFound is wrapped by errors about instances or launch templates that
// do not exist (or, for instances, are terminated).
var ErrNotFound = errors.New("not found")

// IsNotFound reports whether err means the thing asked about does not exist.
func IsNotFound(err error) bool {
	if errors.Is(err, ErrNotFound) {
		return true
	}
	return notFoundCodes[apiErrorCode(err)]
}

var notFoundCodes = map[string]bool{
	"InvalidInstanceID.NotFound":                  true,
	"InvalidLaunchTemplateName.NotFoundException": true,
	"InvalidLaunchTemplateId.NotFound":            true,
}

// Fleet error codes that mean "this offering cannot be had right now": the
// caller should mark it unavailable and try the others.
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity":      true,
	"InsufficientCapacity":              true,
	"UnfulfillableCapacity":             true,
	"InsufficientFreeAddressesInSubnet": true,
	"SpotMaxPriceTooLow":                true,
	"Unsupported":                       true,
}

// Fleet error codes that mean an account quota is exhausted: for the
// instance's vCPU bucket, for spot instances, or (older accounts) for the
// instance type.
var quotaCodes = map[string]bool{
	"VcpuLimitExceeded":            true,
	"InstanceLimitExceeded":        true,
	"MaxSpotInstanceCountExceeded": true,
}

// OfferingFailure is one launch-template override EC2 Fleet could not use.
type OfferingFailure struct {
	InstanceType string
	Zone         string
	SubnetID     string
	CapacityType string
	Code         string
	Message      string
}

func (f OfferingFailure) String() string {
	return fmt.Sprintf("%s in %s (%s): %s", f.InstanceType, f.Zone, f.CapacityType, f.Code)
}

// InsufficientCapacityError: EC2 had no capacity for any offering tried.
// Failures lists every failed offering (capacity ones and any others).
type InsufficientCapacityError struct{ Failures []OfferingFailure }

func (e *InsufficientCapacityError) Error() string {
	return "insufficient capacity: " + summarize(e.Failures)
}

// QuotaExceededError: an account limit (vCPU quota) stopped the launch.
type QuotaExceededError struct {
	Failures []OfferingFailure
	Err      error // the API error, when the quota came back as one
}

func (e *QuotaExceededError) Error() string {
	if e.Err != nil && len(e.Failures) == 0 {
		return "quota exceeded: " + e.Err.Error()
	}
	return "quota exceeded: " + summarize(e.Failures)
}

func (e *QuotaExceededError) Unwrap() error { return e.Err }

// LaunchError: the fleet launched nothing for another reason (bad AMI,
// invalid parameters, ...).
type LaunchError struct{ Failures []OfferingFailure }

func (e *LaunchError) Error() string {
	msg := "launch failed: " + summarize(e.Failures)
	if len(e.Failures) > 0 && e.Failures[0].Message != "" && e.Failures[0].Message != e.Failures[0].Code {
		msg += " (" + e.Failures[0].Message + ")"
	}
	return msg
}

// IsInsufficientCapacity reports whether err is an InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	_, ok := errors.AsType[*InsufficientCapacityError](err)
	return ok
}

// IsQuotaExceeded reports whether err is a QuotaExceededError.
func IsQuotaExceeded(err error) bool {
	_, ok := errors.AsType[*QuotaExceededError](err)
	return ok
}

// UnavailableOfferings returns the offerings a launch error says to stop
// trying for a while: those that failed for capacity or quota reasons and
// that EC2 named (errors raised by the call itself name none).
func UnavailableOfferings(err error) []OfferingFailure {
	var failures []OfferingFailure
	var ice *InsufficientCapacityError
	var quota *QuotaExceededError
	switch {
	case errors.As(err, &ice):
		failures = ice.Failures
	case errors.As(err, &quota):
		failures = quota.Failures
	}
	out := make([]OfferingFailure, 0, len(failures))
	for _, f := range failures {
		if f.InstanceType != "" && (capacityCodes[f.Code] || quotaCodes[f.Code]) {
			out = append(out, f)
		}
	}
	return out
}

// fleetFailures converts CreateFleet's Errors list. zoneOf maps subnet ids
// to zones for overrides that carry only a subnet.
func fleetFailures(errs []ec2types.CreateFleetError, zoneOf map[string]string) []OfferingFailure {
	out := make([]OfferingFailure, 0, len(errs))
	for _, e := range errs {
		f := OfferingFailure{
			CapacityType: string(e.Lifecycle),
			Code:         aws.ToString(e.ErrorCode),
			Message:      aws.ToString(e.ErrorMessage),
		}
		if lto := e.LaunchTemplateAndOverrides; lto != nil && lto.Overrides != nil {
			f.InstanceType = string(lto.Overrides.InstanceType)
			f.SubnetID = aws.ToString(lto.Overrides.SubnetId)
			f.Zone = aws.ToString(lto.Overrides.AvailabilityZone)
			if f.Zone == "" {
				f.Zone = zoneOf[f.SubnetID]
			}
		}
		if f.CapacityType == "" || f.CapacityType == "scheduled" {
			f.CapacityType = CapacityTypeOnDemand
		}
		out = append(out, f)
	}
	return out
}

// classifyFailures turns the failures of a fleet that launched nothing into
// one typed error: capacity wins over quota, quota over anything else.
func classifyFailures(failures []OfferingFailure) error {
	var capacity, quota bool
	for _, f := range failures {
		capacity = capacity || capacityCodes[f.Code]
		quota = quota || quotaCodes[f.Code]
	}
	switch {
	case capacity:
		return &InsufficientCapacityError{Failures: failures}
	case quota:
		return &QuotaExceededError{Failures: failures}
	default:
		return &LaunchError{Failures: failures}
	}
}

// classifyAPIError wraps an error returned by an API call (rather than in
// CreateFleet's Errors list) in the matching typed error.
func classifyAPIError(err error) error {
	code := apiErrorCode(err)
	switch {
	case quotaCodes[code]:
		return &QuotaExceededError{Err: err}
	case capacityCodes[code]:
		return &InsufficientCapacityError{Failures: []OfferingFailure{{Code: code, Message: err.Error()}}}
	}
	return err
}

func apiErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func summarize(failures []OfferingFailure) string {
	if len(failures) == 0 {
		return "no offerings reported"
	}
	const max = 5
	parts := make([]string, 0, max+1)
	for i, f := range failures {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(failures)-max))
			break
		}
		parts = append(parts, f.String())
	}
	return strings.Join(parts, "; ")
}
