#!/usr/bin/env bash
# Debian's podman, runc and mmdebstrap for `make images` and `make image-test` (docs/images.md).
# Installed with apt-get when missing and we are root; otherwise say what to run.
set -euo pipefail
if command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null
else
  echo "the images need podman, runc and mmdebstrap: run 'sudo apt-get install podman runc mmdebstrap'" >&2
  exit 1
fi
