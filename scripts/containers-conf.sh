#!/usr/bin/env bash
# Print the containers.conf that podman needs on this machine, or nothing. On a machine with the hybrid
# cgroup layout (CI's), crun, podman's default runtime, refuses to start containers and runc works: the
# repository's .ci/containers.conf selects runc (and no default ulimits). The Makefile exports the result as
# CONTAINERS_CONF for the image builds, the image tests and the e2e suite's podman node, unless it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v podman >/dev/null && [ -d /sys/fs/cgroup/unified ] && command -v runc >/dev/null; then
  echo "$PWD/.ci/containers.conf"
fi
