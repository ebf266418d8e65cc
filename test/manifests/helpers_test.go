package manifests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/fleet-scheduler/fleet-scheduler/test/env"
)

// readRepoFile reads a file of the repository, its path given from the root.
func readRepoFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(append([]string{env.RepoRoot()}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// commandOutput runs cmd and returns its standard output; a failure ends the
// test with both outputs, under the name of the tool and args.
func commandOutput(t *testing.T, cmd *exec.Cmd, tool string, args []string) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %v: %v\n%s%s", tool, args, err, out, stderr)
	}
	return string(out)
}

// updateNode applies change to the Node named name and writes it with write
// (Update or UpdateStatus), retrying on conflicts: the controllers write the
// Node as soon as it appears, as they would a kubelet's.
func updateNode(ctx context.Context, kube kubernetes.Interface, name string, change func(*corev1.Node),
	write func(context.Context, *corev1.Node, metav1.UpdateOptions) (*corev1.Node, error)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(n)
		_, err = write(ctx, n, metav1.UpdateOptions{})
		return err
	})
}
