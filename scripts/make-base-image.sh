#!/usr/bin/env bash
# A Debian bookworm base image made from Debian's packages: python3 (3.11, as in python:3.11-slim-bookworm),
# python3-venv and the CA certificates. For machines that reach no container registry (CI's): build with
# `make images BASE=<this image>`. Usage: scripts/make-base-image.sh [IMAGE]   (default localhost/yolo-base:bookworm)
# Environment: ENGINE (podman or docker), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
image=${1:-localhost/yolo-base:bookworm}
engine=${ENGINE:-podman}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
for tool in mmdebstrap "$engine"; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is not installed (Debian: apt-get install podman runc mmdebstrap)" >&2
    exit 1
  fi
done
start=$SECONDS
# documentation, manual pages and translations are left out (licences stay); apt's lists are cleaned
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm - "$mirror" | "$engine" import --quiet - "$image" >/dev/null
echo "$image made from $mirror in $((SECONDS - start)) s"
