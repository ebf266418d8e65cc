package env

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Poll checks cond every 100ms until it holds; after timeout it fails the
// test with what() names.
func Poll(t testing.TB, timeout time.Duration, cond wait.ConditionWithContextFunc, what func() string) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what(), err)
	}
}

// Conditioned is an object with status conditions: NodePool, EC2NodeClass.
type Conditioned interface {
	GetGeneration() int64
	GetCondition(conditionType string) *metav1.Condition
}

// HasCondition reports whether obj's condition has the status, set for
// obj's current generation.
func HasCondition(obj Conditioned, conditionType string, status metav1.ConditionStatus) bool {
	c := obj.GetCondition(conditionType)
	return c != nil && c.Status == status && c.ObservedGeneration == obj.GetGeneration()
}
