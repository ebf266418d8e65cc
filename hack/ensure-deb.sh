#!/usr/bin/env bash
# ensure-deb.sh PACKAGE FILE: install Debian's PACKAGE when FILE (a path, or
# a command looked up on PATH) is missing. These machines run as root and
# reach Debian's archive, so `make run` and `make test` set themselves up;
# anywhere else this says what to install and fails.
set -euo pipefail
pkg=$1 want=$2
have() { if [[ $want == /* ]]; then [ -e "$want" ]; else command -v "$want" >/dev/null 2>&1; fi; }
have && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "$want not found: install Debian's $pkg package (apt-get install $pkg) or the equivalent for this system" >&2
	exit 1
fi
echo "$want not found: installing Debian's $pkg package" >&2
export DEBIAN_FRONTEND=noninteractive
# Only the files: no service started by the package's maintainer scripts
# (invoke-rc.d asks policy-rc.d; 101 = "not allowed").
policy=/usr/sbin/policy-rc.d
restore=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && restore=1
fi
trap '[ -z "$restore" ] || rm -f "$policy"' EXIT
log=$(mktemp)
if ! { apt-get install -y --no-install-recommends "$pkg" || { apt-get update && apt-get install -y --no-install-recommends "$pkg"; }; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	echo "installing Debian's $pkg failed (log above); install it by hand: apt-get install $pkg" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
have || { echo "Debian's $pkg is installed but $want is still missing" >&2; exit 1; }
