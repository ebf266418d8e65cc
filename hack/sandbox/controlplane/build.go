// Package controlplane starts the sandbox's Kubernetes control plane: an
// embedded etcd in this process, and kube-apiserver, kube-controller-manager
// and fleet-scheduler as child processes built from this module's pinned
// k8s.io/kubernetes.
//
// Why child processes and not in process: the two k8s.io/kubernetes
// commands keep global state (klog flags, feature gates, the legacy metrics
// registry) that two components in one process would share; the controller
// manager exits through klog.Fatal/os.Exit on some errors; and a sandbox
// binary that links kube-apiserver and kube-controller-manager takes ~3 GiB
// and a minute to link on every edit of the sandbox. As binaries they are
// linked once into bin/ (an up-to-date check costs ~2 s afterwards), each
// stops cleanly on SIGTERM within its own process group, and `ps` shows
// each one's memory on its own.
package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Module is this repository's module path.
const Module = "github.com/fleet-scheduler/fleet-scheduler"

// KubernetesVersion is the version of k8s.io/kubernetes in go.mod; the
// binaries report it.
const KubernetesVersion = "v1.37.2"

// RepoRoot finds the checkout: the nearest directory upward from the
// working directory whose go.mod declares Module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+Module+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod for %s above the working directory", Module)
		}
		dir = parent
	}
}

// Binaries are the paths of the programs the sandbox runs.
type Binaries struct {
	APIServer         string
	ControllerManager string
	Scheduler         string
	KubeStateMetrics  string
	// Kubeadm is for the runbook's token commands (`kubeadm token
	// create`), built like the control plane.
	Kubeadm string
}

// DefaultBinaries are the binaries under root/bin.
func DefaultBinaries(root string) Binaries {
	return Binaries{
		APIServer:         filepath.Join(root, "bin", "kube-apiserver"),
		ControllerManager: filepath.Join(root, "bin", "kube-controller-manager"),
		Scheduler:         filepath.Join(root, "bin", "fleet-scheduler"),
		KubeStateMetrics:  filepath.Join(root, "bin", "kube-state-metrics"),
		Kubeadm:           filepath.Join(root, "bin", "kubeadm"),
	}
}

// KubeStateMetricsModule is the directory of the module that pins
// kube-state-metrics: its Kubernetes libraries are older than ours, so it
// is built from its own go.mod and none of its dependencies enter ours.
const KubeStateMetricsModule = "hack/kube-state-metrics"

// BuildOptions says what EnsureBinaries builds.
type BuildOptions struct {
	// Root is the checkout.
	Root string
	// Scheduler also builds bin/fleet-scheduler (`make build` does that
	// before `make run`; tests ask for it here).
	Scheduler bool
	// Kubeadm also builds bin/kubeadm (`make run`, for the runbook's
	// token commands; tests need none).
	Kubeadm bool
	// Progress reports each build.
	Progress func(format string, args ...any)
}

// EnsureBinaries builds kube-apiserver, kube-controller-manager and
// kube-state-metrics (and, if asked, fleet-scheduler and kubeadm) into root/bin with
// `go build`, which does not relink a binary that is up to date.
//
// kube-controller-manager imports kubelet and volume packages whose
// modules have no go.sum lines in this repository (nothing of ours imports
// them). Rather than add them to the shared go.sum, the control-plane
// binaries are built with -modfile against a copy of go.mod/go.sum under
// .sandbox/build, where `-mod=mod` may add the missing checksums: the module
// versions are the ones go.mod selects, and go.mod and go.sum stay as they are.
func EnsureBinaries(ctx context.Context, o BuildOptions) (Binaries, error) {
	bins := DefaultBinaries(o.Root)
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	buildDir := filepath.Join(o.Root, ".sandbox", "build")
	unlock, err := LockBuild(ctx, o.Root, "controlplane")
	if err != nil {
		return bins, err
	}
	defer unlock()
	modfile := filepath.Join(buildDir, "controlplane.mod")
	if err := syncModfile(o.Root, modfile); err != nil {
		return bins, err
	}
	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X", "k8s.io/component-base/version.gitVersion=" + KubernetesVersion,
		"-X", "k8s.io/component-base/version.gitMajor=1",
		"-X", "k8s.io/component-base/version.gitMinor=" + minor(KubernetesVersion),
		"-X", "k8s.io/component-base/version.gitTreeState=clean",
		"-X", "k8s.io/client-go/pkg/version.gitVersion=" + KubernetesVersion,
		"-X", "k8s.io/client-go/pkg/version.gitMajor=1",
		"-X", "k8s.io/client-go/pkg/version.gitMinor=" + minor(KubernetesVersion),
	}, " ")
	type build struct {
		out  string
		dir  string // module directory, relative to the root
		args []string
	}
	builds := []build{
		{bins.APIServer, ".", []string{"-mod=mod", "-modfile=" + modfile, "-ldflags=" + ldflags, "k8s.io/kubernetes/cmd/kube-apiserver"}},
		{bins.ControllerManager, ".", []string{"-mod=mod", "-modfile=" + modfile, "-ldflags=" + ldflags, "k8s.io/kubernetes/cmd/kube-controller-manager"}},
		{bins.KubeStateMetrics, KubeStateMetricsModule, []string{"-ldflags=-s -w", "k8s.io/kube-state-metrics/v2"}},
	}
	if o.Scheduler {
		builds = append(builds, build{bins.Scheduler, ".", []string{"./cmd/scheduler"}})
	}
	if o.Kubeadm {
		builds = append(builds, build{bins.Kubeadm, ".", []string{"-mod=mod", "-modfile=" + modfile, "-ldflags=" + ldflags, "k8s.io/kubernetes/cmd/kubeadm"}})
	}
	for _, b := range builds {
		if _, err := os.Stat(b.out); err != nil {
			progress("building %s (first run: a few minutes)", filepath.Base(b.out))
		}
		args := append([]string{"build", "-o", b.out}, b.args...)
		cmd := exec.CommandContext(ctx, goBinary(), args...)
		cmd.Dir = filepath.Join(o.Root, b.dir)
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			return bins, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return bins, nil
}

// LockBuild takes the checkout's build lock called name
// (.sandbox/build/<name>.lock) and returns its release. Sandboxes of one
// checkout (test/e2e's and test/keda's, run at once by make test) build
// into the same bin/: the second waits and then finds the binaries up to
// date instead of linking them again beside the first (each link takes
// 2-3 GiB) and rewriting the modfile the first is reading.
func LockBuild(ctx context.Context, root, name string) (unlock func(), err error) {
	dir := filepath.Join(root, ".sandbox", "build")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	// flock(2) cannot be interrupted by ctx: try without blocking, often.
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s (another sandbox of this checkout is building): %w", f.Name(), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// syncModfile copies go.mod and go.sum to modfile and its .sum unless the
// copies already hold them (the .sum copy may have more lines).
func syncModfile(root, modfile string) error {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return err
	}
	sumfile := strings.TrimSuffix(modfile, ".mod") + ".sum"
	oldMod, _ := os.ReadFile(modfile)
	oldSum, _ := os.ReadFile(sumfile)
	if bytes.Equal(oldMod, mod) && containsLines(oldSum, sum) {
		return nil
	}
	if err := os.WriteFile(modfile, mod, 0o644); err != nil {
		return err
	}
	return os.WriteFile(sumfile, sum, 0o644)
}

func containsLines(have, want []byte) bool {
	set := map[string]bool{}
	for _, l := range bytes.Split(have, []byte("\n")) {
		set[string(l)] = true
	}
	for _, l := range bytes.Split(want, []byte("\n")) {
		if !set[string(l)] {
			return false
		}
	}
	return true
}

func minor(v string) string {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 {
		return "0"
	}
	return parts[1]
}

// GoBinary is the go command the sandbox builds with.
func GoBinary() string { return goBinary() }

// goBinary finds the go command: GOROOT's, else the one on PATH.
func goBinary() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := "/usr/local/go/bin/go"; fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
