#!/usr/bin/env bash
# The offline instance-type catalogue (provision/catalog/snapshot/): what
# DescribeInstanceTypes, DescribeInstanceTypeOfferings and
# DescribeAvailabilityZones answer for us-east-1, as moto_server serves AWS's
# published data, cut to the fields the catalogue reads. `kubectl fleet plan
# --offline` builds its instance types from it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin:$HOME/.pyenv/shims"
go test -count=1 -run '^TestOfflineSnapshotMatchesEC2$' ./provision/catalog -update-offline-snapshot
