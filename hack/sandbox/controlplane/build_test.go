package controlplane

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLockBuildWaitsForTheHolder: a second builder of the same checkout
// waits while the first holds the lock (here until its context ends), and
// gets it once the first releases it.
func TestLockBuildWaitsForTheHolder(t *testing.T) {
	root := t.TempDir()
	unlock, err := LockBuild(context.Background(), root, "controlplane")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if second, err := LockBuild(ctx, root, "controlplane"); err == nil {
		second()
		t.Fatal("a second LockBuild got the lock while the first held it")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second LockBuild: %v, want the context's deadline", err)
	}
	// Another name is another lock.
	other, err := LockBuild(ctx, root, "keda")
	if err != nil {
		t.Fatalf("LockBuild(keda) while controlplane is held: %v", err)
	}
	other()

	got := make(chan error, 1)
	go func() {
		second, err := LockBuild(context.Background(), root, "controlplane")
		if err == nil {
			second()
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting LockBuild did not get the lock within 10s of its release")
	}
}
