#!/usr/bin/env bash
# Regenerates every generated file. Run through `make generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in hack/codegen-*.sh; do
  echo "== $script"
  bash "$script"
done
