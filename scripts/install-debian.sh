#!/usr/bin/env bash
# Install a Debian package when the command it provides is missing: `install-debian.sh COMMAND PACKAGE WHY`.
# Used for the test and benchmark tools that come from Debian (chromium for the /ui test, promtool for the
# metrics lint, wrk for the load benchmarks). apt-get as root; otherwise say what to run.
set -euo pipefail
command=$1 package=$2 why=$3
if command -v "$command" >/dev/null || [ -x "$command" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null
else
  echo "$why needs $command: run 'sudo apt-get install $package'" >&2
  exit 1
fi
