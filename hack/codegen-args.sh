#!/usr/bin/env bash
# Generates deepcopy, defaulter and conversion code for the plugin args in
# plugins/apis/config. Run through `make generate`; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

boilerplate=hack/boilerplate.go.txt
internal=github.com/fleet-scheduler/fleet-scheduler/plugins/apis/config
v1="$internal/v1"

# The generators load the packages they write into; delete the old output
# first so a stale file can never shape the new one.
rm -f plugins/apis/config/zz_generated.*.go plugins/apis/config/v1/zz_generated.*.go

go tool deepcopy-gen --go-header-file "$boilerplate" \
  --output-file zz_generated.deepcopy.go "$internal" "$v1"
go tool defaulter-gen --go-header-file "$boilerplate" \
  --output-file zz_generated.defaults.go "$v1"
# metav1 supplies the *Duration <-> Duration and *float64 <-> float64 helpers.
go tool conversion-gen --go-header-file "$boilerplate" \
  --extra-peer-dirs k8s.io/apimachinery/pkg/apis/meta/v1,k8s.io/apimachinery/pkg/conversion,k8s.io/apimachinery/pkg/runtime \
  --output-file zz_generated.conversion.go "$v1"
