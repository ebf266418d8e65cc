package env

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A data directory left by a test process that has exited is removed by the
// next one; the directory of a live process is kept.
func TestRemoveOrphansKeepsLiveProcessesData(t *testing.T) {
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	orphan, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, done.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(orphan) })
	if err := os.WriteFile(filepath.Join(orphan, "wal"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	live, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getppid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(live) })

	removeOrphans()

	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("data of exited process %d still there: %v", done.Process.Pid, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("data of live process %d removed: %v", os.Getppid(), err)
	}
}
