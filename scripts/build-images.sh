#!/usr/bin/env bash
# Build the operator, API and trainer images from the repository root; see docs/images.md.
# What a machine needs is detected here, in one place, and said on the first lines of the output:
#   - podman on a machine whose cgroup layout crun refuses (CI's: hybrid, runc installed): the repository's
#     .ci/containers.conf (runc, no default ulimits), unless CONTAINERS_CONF is set;
#   - no container registry (the upstream python:3.11 slim bookworm neither present nor pullable): a Debian
#     bookworm base made from Debian's packages (scripts/make-base-image.sh, localhost/yolo-base:bookworm);
#   - podman with a host CA bundle (any Debian-like host): pip inside the builds trusts it (--volume it, PIP_CERT),
#     on the host network, which is also right where a proxy or private CA sits between the host and PyPI.
# Environment (all optional; `make images` passes its variables of the same names):
#   ENGINE       podman or docker (default: podman where installed, else docker)
#   TAG          image tag (default dev): yolo-operator:TAG, yolo-api:TAG, yolo-trainer:TAG
#   BASE         base image of all three (default: detected as above)
#   BUILD_FLAGS  more flags for every build (default: detected as above)
#   IMAGES       which of operator, api, trainer to build (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; else engine=docker; fi
fi
tag=${TAG:-dev}
upstream=python:3.11.11-slim-bookworm
if [ "$engine" = podman ] && [ -z "${CONTAINERS_CONF:-}" ]; then
  conf=$(./scripts/containers-conf.sh)
  if [ -n "$conf" ]; then export CONTAINERS_CONF="$conf"; fi
fi
if [ "$engine" = podman ] && [ -n "${CONTAINERS_CONF:-}" ]; then
  echo "images: podman runs with $CONTAINERS_CONF"
fi
base=${BASE:-}
if [ -z "$base" ]; then
  if "$engine" image inspect "$upstream" >/dev/null 2>&1 || timeout 120 "$engine" pull -q "$upstream" >/dev/null 2>&1; then
    base=$upstream
  else
    base=localhost/yolo-base:bookworm
    echo "images: $upstream cannot be had (no registry): building on $base, made from Debian's packages"
    "$engine" image inspect "$base" >/dev/null 2>&1 || ENGINE="$engine" ./scripts/make-base-image.sh "$base"
  fi
fi
if [ -n "${BUILD_FLAGS+set}" ]; then
  read -r -a flags <<< "$BUILD_FLAGS"
else
  flags=()
  ca=/etc/ssl/certs/ca-certificates.crt
  if [ "$engine" = podman ] && [ -f "$ca" ]; then
    flags=(--network host --volume "$ca:$ca:ro" --build-arg "PIP_CERT=$ca")
    echo "images: pip in the builds trusts the host's CA bundle ($ca)"
  fi
fi
flags+=(--build-arg "BASE=$base")
echo "images: $engine, base $base, tag $tag"
declare -A dockerfiles=([operator]=operator/Dockerfile [api]=api/Dockerfile [trainer]=trainer_image/Dockerfile)
for name in ${IMAGES:-operator api trainer}; do
  dockerfile=${dockerfiles[$name]:?"unknown image $name (operator, api or trainer)"}
  start=$SECONDS
  "$engine" build "${flags[@]}" --file "$dockerfile" --tag "yolo-$name:$tag" .
  echo "built yolo-$name:$tag with $engine in $((SECONDS - start)) s"
done
"$engine" images --filter "reference=yolo-*:$tag"
