#!/usr/bin/env bash
# Before the image builds: give back the disk that earlier builds on this machine still hold, then check
# that the trainer build has room, and say so plainly when it has not (docs/images.md, "Disk").
#
# Why: podman holds the trainer's torch layer (about 5.5 GB) up to four times while it commits it (the build
# container, two temporary copies in /var/tmp, the stored layer); measured here, the trainer build took
# 22.5 GB of free disk at its peak. A build killed at that moment leaves its temporary copies in /var/tmp,
# and every rebuild of a tag leaves the previous image dangling: on a reused CI machine these filled the
# disk ("no space left on device" while committing the torch layer).
#
# Steps, each only as far as needed: dangling images; temporary copies left by killed builds (only while no
# podman runs); then every image no container uses, which costs the layer cache, not correctness.
# NEED_GB (default 24, in 10^9 bytes) is the free space asked for; ENGINE (default podman).
set -euo pipefail
engine="${ENGINE:-podman}"
need_gb="${NEED_GB:-24}"
# where podman keeps its temporary copies: containers.conf's image_copy_tmp_dir, else $TMPDIR, else /var/tmp
tmp_dir="$("$engine" info --format '{{.Store.ImageCopyTmpDir}}' 2>/dev/null || true)"
[ -d "$tmp_dir" ] || tmp_dir="${TMPDIR:-/var/tmp}"
store="$("$engine" info --format '{{.Store.GraphRoot}}' 2>/dev/null || true)"
[ -d "$store" ] || store=/

avail_bytes() {
  local bytes
  bytes=$(df -B1 --output=avail "$1" | tail -1 | tr -dc 0-9)
  if [ -z "$bytes" ]; then
    echo "cannot read the free space of $1 with df" >&2
    exit 2
  fi
  echo "$bytes"
}

free_gb() {
  # the smaller free space (10^9 bytes) of the image store and the temporary directory (often one filesystem)
  local a b
  a=$(avail_bytes "$store") || exit 2
  b=$(avail_bytes "$tmp_dir") || exit 2
  echo $(((a < b ? a : b) / 1000000000))
}

report() {
  echo "disk: $1 GB free for image builds (store $store, temporary copies in $tmp_dir; need $need_gb GB)"
}

# Each check assigns at the top level, so that set -e stops the script when df cannot be read.
free=$(free_gb); report "$free"
[ "$free" -ge "$need_gb" ] && exit 0

echo "reclaiming: dangling images of earlier builds"
"$engine" image prune --force >/dev/null
free=$(free_gb); report "$free"
[ "$free" -ge "$need_gb" ] && exit 0

if ! command -v pgrep >/dev/null; then
  echo "pgrep is missing (Debian's procps): cannot tell whether a build runs, so $tmp_dir is left alone"
elif pgrep -x podman >/dev/null || pgrep -x buildah >/dev/null; then
  echo "a podman or buildah process is running: its temporary copies in $tmp_dir are left alone"
else
  stale=$(find "$tmp_dir" -maxdepth 1 -mindepth 1 -type d \( -name 'buildah*' -o -name 'storage*' \) -print)
  if [ -n "$stale" ]; then
    echo "reclaiming: temporary copies left by killed builds: $(echo "$stale" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    rm -rf $stale
    free=$(free_gb); report "$free"
    [ "$free" -ge "$need_gb" ] && exit 0
  fi
fi

echo "reclaiming: every image no container uses (the next builds start without a layer cache)"
"$engine" image prune --all --force >/dev/null
free=$(free_gb); report "$free"
if [ "$free" -lt "$need_gb" ]; then
  echo "not enough disk for the trainer image: $free GB free, about $need_gb GB needed at the build's peak;" \
    "free space on the filesystem of $store and $tmp_dir, or set image_copy_tmp_dir in CONTAINERS_CONF" >&2
  exit 1
fi
