// Package keda runs KEDA in the sandbox: its operator and its metrics API
// server, built from github.com/kedacore/keda/v2 in the hack/keda module
// (KEDA's dependencies stay out of this repository's go.mod), as child
// processes with the keda-operator ServiceAccount's short-lived tokens;
// KEDA's own CRDs and RBAC read from the module; the metrics server
// registered as the v1beta1.external.metrics.k8s.io APIService through a
// Service and EndpointSlice on the control-plane node's address, which the
// API server's egress proxy forwards to the process.
package keda

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleet-scheduler/fleet-scheduler/hack/sandbox/controlplane"
)

// ModulePath is KEDA's module.
const ModulePath = "github.com/kedacore/keda/v2"

// Module is the KEDA module hack/keda/go.mod requires, as downloaded.
type Module struct {
	Version string
	// Dir is the module's source in the module cache; its config/
	// directory holds KEDA's CRDs and RBAC.
	Dir string
}

// Binaries are the built KEDA programs.
type Binaries struct {
	Operator      string
	MetricsServer string
}

// BuildFlags are the flags of both builds besides -ldflags (which also
// strips the symbol table and sets KEDA's version); with goCommand's
// CGO_ENABLED=0 they are the build cache's key, so keep them as they are or
// pay for a cold build.
var BuildFlags = []string{"-trimpath"}

// EnsureBinaries builds bin/keda-operator and bin/keda-metrics-apiserver
// from the hack/keda module with `go build` (which does nothing but check
// when they are up to date; the first build compiles ~2,000 packages) and
// returns them with the module's version and source directory.
func EnsureBinaries(ctx context.Context, root string, progress func(string, ...any)) (Binaries, Module, error) {
	bins := Binaries{
		Operator:      filepath.Join(root, "bin", "keda-operator"),
		MetricsServer: filepath.Join(root, "bin", "keda-metrics-apiserver"),
	}
	dir := filepath.Join(root, "hack", "keda")
	unlock, err := controlplane.LockBuild(ctx, root, "keda")
	if err != nil {
		return bins, Module{}, err
	}
	defer unlock()
	mod, err := download(ctx, dir)
	if err != nil {
		return bins, mod, err
	}
	ldflags := fmt.Sprintf("-s -w -X %[1]s/version.Version=%[2]s -X %[1]s/version.GitCommit=module-%[2]s", ModulePath, mod.Version)
	for _, b := range []struct{ out, pkg string }{
		{bins.Operator, ModulePath + "/cmd/operator"},
		{bins.MetricsServer, ModulePath + "/cmd/adapter"},
	} {
		if _, err := os.Stat(b.out); err != nil && progress != nil {
			progress("building %s from %s@%s (first build: 10-20 minutes on 2 cores)", filepath.Base(b.out), ModulePath, mod.Version)
		}
		args := append(append([]string{"build"}, BuildFlags...), "-ldflags="+ldflags, "-o", b.out, b.pkg)
		if out, err := goCommand(ctx, dir, args...).CombinedOutput(); err != nil {
			return bins, mod, fmt.Errorf("go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, out)
		}
	}
	return bins, mod, nil
}

// download fetches KEDA's module (a no-op when it is in the module cache)
// and returns its version and directory.
func download(ctx context.Context, dir string) (Module, error) {
	out, err := goCommand(ctx, dir, "mod", "download", "-json", ModulePath).Output()
	if err != nil {
		return Module{}, fmt.Errorf("go mod download %s (in %s): %w", ModulePath, dir, exitDetail(err))
	}
	var m Module
	if err := json.Unmarshal(out, &m); err != nil {
		return Module{}, fmt.Errorf("go mod download -json %s: %w", ModulePath, err)
	}
	if m.Dir == "" || m.Version == "" {
		return Module{}, fmt.Errorf("go mod download -json %s: no version or directory in %s", ModulePath, out)
	}
	return m, nil
}

// goCommand runs go in dir (the hack/keda module) with the caller's
// environment, cgo off and the module's go.sum as the only authority.
func goCommand(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, controlplane.GoBinary(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -buildvcs=false", "GOWORK=off")
	return cmd
}

func exitDetail(err error) error {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
