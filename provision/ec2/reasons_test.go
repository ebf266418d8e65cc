package ec2

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func TestReason(t *testing.T) {
	api := func(code string) error {
		return &smithy.OperationError{ServiceID: "EC2", OperationName: "CreateFleet", Err: &smithy.GenericAPIError{Code: code, Message: code + " message"}}
	}
	failure := func(code string) OfferingFailure {
		return OfferingFailure{InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: CapacityTypeOnDemand, Code: code}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("boom"), ReasonLaunchFailed},
		{&CallTimeoutError{Operation: "CreateFleet", Timeout: time.Second, Err: context.DeadlineExceeded}, ReasonCallTimeout},
		{fmt.Errorf("launching: %w", &CallTimeoutError{Operation: "DescribeInstances", Timeout: time.Second}), ReasonCallTimeout},
		{classifyFailures([]OfferingFailure{failure("InsufficientInstanceCapacity")}), ReasonInsufficientCapacity},
		{classifyFailures([]OfferingFailure{failure("VcpuLimitExceeded")}), ReasonVcpuLimitExceeded},
		{classifyFailures([]OfferingFailure{failure("MaxSpotInstanceCountExceeded")}), ReasonMaxSpotInstanceCountExceeded},
		{classifyFailures([]OfferingFailure{failure("InvalidAMIID.NotFound")}), ReasonInvalidParameter},
		{classifyFailures([]OfferingFailure{failure("UnauthorizedOperation")}), ReasonUnauthorized},
		{classifyAPIError(api("VcpuLimitExceeded")), ReasonVcpuLimitExceeded},
		{classifyAPIError(api("MaxSpotInstanceCountExceeded")), ReasonMaxSpotInstanceCountExceeded},
		{classifyAPIError(api("InstanceLimitExceeded")), ReasonInstanceLimitExceeded},
		{classifyAPIError(api("InsufficientInstanceCapacity")), ReasonInsufficientCapacity},
		{api("UnauthorizedOperation"), ReasonUnauthorized},
		{api("AuthFailure"), ReasonUnauthorized},
		{api("InvalidParameterValue"), ReasonInvalidParameter},
		{api("InvalidParameterCombination"), ReasonInvalidParameter},
		{api("InvalidLaunchTemplateId.NotFound"), ReasonInvalidParameter},
		{api("MissingParameter"), ReasonInvalidParameter},
		{api("RequestLimitExceeded"), ReasonThrottled},
		{api("InternalError"), ReasonLaunchFailed},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
