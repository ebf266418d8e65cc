package nodeclass

import (
	"context"
	"errors"

	"github.com/aws/smithy-go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
	"github.com/fleet-scheduler/fleet-scheduler/provision/conditions"
)

// readyDependents are the conditions Ready sums up.
var readyDependents = []string{
	ec2v1.ConditionTypeSubnetsReady, ec2v1.ConditionTypeSecurityGroupsReady, ec2v1.ConditionTypeAMIsReady,
	ec2v1.ConditionTypeInstanceProfileReady,
}

// record applies one resolution to the class. When the AWS call itself
// failed it keeps what was resolved before, unless that was for an older
// spec (or nothing): then the condition turns Unknown with the error.
func record(class *ec2v1.EC2NodeClass, conditionType, notFoundReason string, err error, apply func()) error {
	if callFailed(err) {
		if prev := class.GetCondition(conditionType); prev == nil || prev.ObservedGeneration != class.Generation {
			class.SetCondition(metav1.Condition{Type: conditionType, Status: metav1.ConditionUnknown,
				Reason: "ResolveFailed", Message: err.Error()})
		}
		return err
	}
	apply()
	if err != nil {
		class.SetCondition(metav1.Condition{Type: conditionType, Status: metav1.ConditionFalse, Reason: notFoundReason, Message: err.Error()})
	} else {
		class.SetCondition(metav1.Condition{Type: conditionType, Status: metav1.ConditionTrue, Reason: conditionType})
	}
	return nil
}

// callFailed tells an AWS call that did not answer (throttled, denied,
// unreachable) from a term that matched nothing or is malformed: the SDK
// wraps every failed call in a smithy.OperationError.
func callFailed(err error) bool {
	var op *smithy.OperationError
	return errors.As(err, &op) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// readyCondition is False when a dependent is False, Unknown when one is
// not known yet, else True; the message carries the dependents' messages.
func readyCondition(class *ec2v1.EC2NodeClass) metav1.Condition {
	status := metav1.ConditionTrue
	var messages []string
	dependents := readyDependents
	if class.GetCondition(ec2v1.ConditionTypeBootstrapTokenReady) != nil {
		dependents = append(dependents[:len(dependents):len(dependents)], ec2v1.ConditionTypeBootstrapTokenReady)
	}
	for _, t := range dependents {
		c := class.GetCondition(t)
		switch {
		case c == nil:
			messages = append(messages, t+" not resolved yet")
		case c.Status == metav1.ConditionTrue:
			continue
		default:
			messages = append(messages, c.Message)
		}
		if c != nil && c.Status == metav1.ConditionFalse {
			status = metav1.ConditionFalse
		} else if status == metav1.ConditionTrue {
			status = metav1.ConditionUnknown
		}
	}
	return conditions.Ready(ec2v1.ConditionTypeReady, status, messages)
}
