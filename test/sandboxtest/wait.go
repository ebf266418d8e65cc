package sandboxtest

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// WaitFor checks cond every interval until it holds; it fails t when cond
// does not hold within timeout, or ctx ends first.
func WaitFor(ctx context.Context, t testing.TB, what string, interval, timeout time.Duration, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) {
		return cond(), nil
	}); err != nil {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
