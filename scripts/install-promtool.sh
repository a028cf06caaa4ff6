#!/usr/bin/env bash
# Debian's promtool (package prometheus) for the metrics tests: `promtool check metrics` lints both
# expositions. Installed with apt-get when missing and we are root; otherwise say what to run.
set -euo pipefail
if command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  # the package's service is not wanted, only its promtool binary
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
else
  echo "the metrics tests need promtool: run 'sudo apt-get install prometheus'" >&2
  exit 1
fi
