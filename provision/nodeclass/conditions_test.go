package nodeclass

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ec2v1 "github.com/fleet-scheduler/fleet-scheduler/provision/apis/ec2/v1"
)

func TestRecord(t *testing.T) {
	throttled := fmt.Errorf("subnetSelectorTerms[0] {id: subnet-1}: describing subnets: %w",
		&smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeSubnets", Err: errors.New("RequestLimitExceeded")})
	notFound := errors.New("no subnet matched: subnetSelectorTerms[0] {id: subnet-1}")
	resolved := []ec2v1.Subnet{{ID: "subnet-1", Zone: "us-east-1a"}}
	for _, tc := range []struct {
		name        string
		resolvedGen int64 // generation SubnetsReady was last set at; 0: never
		err         error
		wantStatus  metav1.ConditionStatus
		wantSubnets int
		wantErr     bool
	}{
		{"resolved", 2, nil, metav1.ConditionTrue, 0, false},
		{"nothing matched", 2, notFound, metav1.ConditionFalse, 0, false},
		{"call failed: keep what was resolved", 2, throttled, metav1.ConditionTrue, 1, true},
		{"call failed after a spec change", 1, throttled, metav1.ConditionUnknown, 1, true},
		{"call failed, never resolved", 0, throttled, metav1.ConditionUnknown, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class := &ec2v1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Generation: tc.resolvedGen}}
			if tc.resolvedGen > 0 {
				class.Status.Subnets = resolved
				class.SetCondition(metav1.Condition{Type: ec2v1.ConditionTypeSubnetsReady, Status: metav1.ConditionTrue})
			}
			class.Generation = 2
			err := record(class, ec2v1.ConditionTypeSubnetsReady, "SubnetsNotFound", tc.err, func() { class.Status.Subnets = nil })
			if (err != nil) != tc.wantErr {
				t.Errorf("record returned %v, want error %v", err, tc.wantErr)
			}
			if c := class.GetCondition(ec2v1.ConditionTypeSubnetsReady); c.Status != tc.wantStatus {
				t.Errorf("SubnetsReady = %+v, want %s", c, tc.wantStatus)
			}
			if len(class.Status.Subnets) != tc.wantSubnets {
				t.Errorf("status.subnets = %+v, want %d", class.Status.Subnets, tc.wantSubnets)
			}
		})
	}
}

func TestReadyCondition(t *testing.T) {
	cond := func(t string, s metav1.ConditionStatus, msg string) metav1.Condition {
		return metav1.Condition{Type: t, Status: s, Reason: "R", Message: msg}
	}
	for _, tc := range []struct {
		name       string
		conditions []metav1.Condition
		want       metav1.ConditionStatus
		message    string
	}{
		{"nothing resolved", nil, metav1.ConditionUnknown,
			"SubnetsReady not resolved yet; SecurityGroupsReady not resolved yet; AMIsReady not resolved yet; InstanceProfileReady not resolved yet"},
		{"all true", []metav1.Condition{
			cond(ec2v1.ConditionTypeSubnetsReady, "True", ""), cond(ec2v1.ConditionTypeSecurityGroupsReady, "True", ""),
			cond(ec2v1.ConditionTypeAMIsReady, "True", ""), cond(ec2v1.ConditionTypeInstanceProfileReady, "True", "")}, metav1.ConditionTrue, ""},
		{"false wins over unknown, both named", []metav1.Condition{
			cond(ec2v1.ConditionTypeSubnetsReady, "Unknown", "throttled"), cond(ec2v1.ConditionTypeSecurityGroupsReady, "True", ""),
			cond(ec2v1.ConditionTypeAMIsReady, "False", "no AMI matched"), cond(ec2v1.ConditionTypeInstanceProfileReady, "True", "")}, metav1.ConditionFalse, "throttled; no AMI matched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class := &ec2v1.EC2NodeClass{Status: ec2v1.EC2NodeClassStatus{Conditions: tc.conditions}}
			got := readyCondition(class)
			if got.Status != tc.want || got.Message != tc.message {
				t.Errorf("Ready = %s %q, want %s %q", got.Status, got.Message, tc.want, tc.message)
			}
		})
	}
}
