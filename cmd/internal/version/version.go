// Package version is fleet-scheduler's own version, set at build time, and
// the Kubernetes version the binary is built on, read from the module
// graph it was linked from.
package version

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	k8sversion "k8s.io/component-base/version"
)

// Set by `make build` with -ldflags "-X <this package>.version=v0.1.0
// -X <this package>.revision=<git commit>".
var (
	version  = "(devel)"
	revision = "unknown"
)

// kubernetesModule is the module whose version is "the Kubernetes version"
// this binary is built on: the scheduler framework and its plugins come
// from it.
const kubernetesModule = "k8s.io/kubernetes"

// Info describes this build.
type Info struct {
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	Kubernetes string `json:"kubernetes"`
	GoVersion  string `json:"goVersion"`
	Platform   string `json:"platform"`
}

// Get returns the build's Info. The Kubernetes version is the linked
// k8s.io/kubernetes module's; when build info is missing (it is not, in
// binaries built by the go command) it falls back to what
// k8s.io/component-base reports, which `make build` sets to the same.
func Get() Info {
	info := Info{
		Version:    version,
		Revision:   revision,
		Kubernetes: k8sversion.Get().GitVersion,
		GoVersion:  runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == kubernetesModule {
				info.Kubernetes = m.Version
				if m.Replace != nil && m.Replace.Version != "" {
					info.Kubernetes = m.Replace.Version
				}
			}
		}
	}
	return info
}

// String is the one line `--version` prints.
func (i Info) String() string {
	return fmt.Sprintf("fleet-scheduler %s (revision %s), built on Kubernetes %s with %s %s",
		i.Version, i.Revision, i.Kubernetes, i.GoVersion, i.Platform)
}

// JSON is what `--version=raw` prints.
func (i Info) JSON() string {
	b, _ := json.Marshal(i) // a struct of strings always marshals
	return string(b)
}
