package ec2

import (
	"errors"
	"strings"
)

// Reasons a launch failed, as the claim's Launched condition, the events on
// the claim, its pods and its NodePool, and karpenter_cloudprovider_errors_total
// name them. Each says what an operator does about it.
const (
	// ReasonInsufficientCapacity: EC2 has no capacity for the offerings
	// asked; other offerings (types, zones) are tried.
	ReasonInsufficientCapacity = "InsufficientCapacity"
	// ReasonVcpuLimitExceeded: the account's vCPU quota for the instance
	// family's bucket is used up; raise it (Service Quotas L-1216C47A for
	// standard on-demand) or free instances.
	ReasonVcpuLimitExceeded = "VcpuLimitExceeded"
	// ReasonMaxSpotInstanceCountExceeded: the account's spot quota is used up.
	ReasonMaxSpotInstanceCountExceeded = "MaxSpotInstanceCountExceeded"
	// ReasonInstanceLimitExceeded: the older per-type instance count limit.
	ReasonInstanceLimitExceeded = "InstanceLimitExceeded"
	// ReasonUnauthorized: the scheduler's IAM identity may not make the call.
	ReasonUnauthorized = "Unauthorized"
	// ReasonInvalidParameter: EC2 refused the request as malformed (an AMI,
	// subnet, security group or instance profile that does not exist or
	// does not fit, bad user data...).
	ReasonInvalidParameter = "InvalidParameter"
	// ReasonThrottled: EC2 kept throttling the call past its retries.
	ReasonThrottled = "Throttled"
	// ReasonCallTimeout: the call did not answer within its deadline.
	ReasonCallTimeout = "CallTimeout"
	// ReasonLaunchFailed: anything else.
	ReasonLaunchFailed = "LaunchFailed"
)

// Reason names why a launch (or another EC2 call) failed.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	if IsCallTimeout(err) {
		return ReasonCallTimeout
	}
	if ice, ok := errors.AsType[*InsufficientCapacityError](err); ok {
		return reasonOfFailures(ice.Failures, ReasonInsufficientCapacity)
	}
	if q, ok := errors.AsType[*QuotaExceededError](err); ok {
		if q.Err != nil && len(q.Failures) == 0 {
			return reasonOfCode(apiErrorCode(q.Err))
		}
		return reasonOfFailures(q.Failures, ReasonVcpuLimitExceeded)
	}
	if l, ok := errors.AsType[*LaunchError](err); ok {
		return reasonOfFailures(l.Failures, ReasonLaunchFailed)
	}
	return reasonOfCode(apiErrorCode(err))
}

// reasonOfFailures is the reason of the first failure with a known one.
func reasonOfFailures(failures []OfferingFailure, fallback string) string {
	for _, f := range failures {
		if r := reasonOfCode(f.Code); r != ReasonLaunchFailed {
			return r
		}
	}
	return fallback
}

func reasonOfCode(code string) string {
	switch {
	case code == "":
		return ReasonLaunchFailed
	case capacityCodes[code]:
		return ReasonInsufficientCapacity
	case code == "VcpuLimitExceeded":
		return ReasonVcpuLimitExceeded
	case code == "MaxSpotInstanceCountExceeded":
		return ReasonMaxSpotInstanceCountExceeded
	case code == "InstanceLimitExceeded":
		return ReasonInstanceLimitExceeded
	case unauthorizedCodes[code]:
		return ReasonUnauthorized
	case code == "RequestLimitExceeded" || code == "Throttling" || code == "ThrottlingException":
		return ReasonThrottled
	case strings.HasPrefix(code, "Invalid") || code == "MissingParameter" || code == "UnknownParameter" ||
		code == "InvalidParameterValue" || code == "InvalidParameterCombination":
		return ReasonInvalidParameter
	}
	return ReasonLaunchFailed
}

// unauthorizedCodes are EC2's answers to a caller that may not do what it
// asked (its policy, a service control policy, an unsubscribed region).
var unauthorizedCodes = map[string]bool{
	"UnauthorizedOperation": true,
	"AuthFailure":           true,
	"AccessDenied":          true,
	"AccessDeniedException": true,
	"Blocked":               true,
	"OptInRequired":         true,
	"PendingVerification":   true,
	"SignatureDoesNotMatch": true,
}
