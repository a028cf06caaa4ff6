#!/usr/bin/env bash
# Build the operator, API and trainer images from the repository root; see docs/images.md.
# Environment (all optional; `make images` passes its variables of the same names):
#   ENGINE       podman or docker (default: podman where installed, else docker)
#   TAG          image tag (default dev): yolo-operator:TAG, yolo-api:TAG, yolo-trainer:TAG
#   BASE         base image of all three (default: each Dockerfile's upstream python:3.11 slim bookworm)
#   BUILD_FLAGS  more flags for every build, e.g. CI's network and CA bundle (.ci/run)
#   IMAGES       which of operator, api, trainer to build (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; else engine=docker; fi
fi
tag=${TAG:-dev}
read -r -a flags <<< "${BUILD_FLAGS:-}"
if [ -n "${BASE:-}" ]; then
  flags+=(--build-arg "BASE=$BASE")
fi
declare -A dockerfiles=([operator]=operator/Dockerfile [api]=api/Dockerfile [trainer]=trainer_image/Dockerfile)
for name in ${IMAGES:-operator api trainer}; do
  dockerfile=${dockerfiles[$name]:?"unknown image $name (operator, api or trainer)"}
  start=$SECONDS
  "$engine" build "${flags[@]}" --file "$dockerfile" --tag "yolo-$name:$tag" .
  echo "built yolo-$name:$tag with $engine in $((SECONDS - start)) s"
done
"$engine" images --filter "reference=yolo-*:$tag"
