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
# NEED_GB (default 24) is the free space asked for; ENGINE (default podman).
set -euo pipefail
engine="${ENGINE:-podman}"
need_gb="${NEED_GB:-24}"
tmp_dir="${IMAGE_COPY_TMP_DIR:-/var/tmp}"
store="$("$engine" info --format '{{.Store.GraphRoot}}' 2>/dev/null || true)"
[ -d "$store" ] || store=/

free_gb() {
  # the smaller free space of the image store and the temporary directory (they are often one filesystem)
  local a b
  a=$(df -BG --output=avail "$store" | tail -1 | tr -dc 0-9)
  b=$(df -BG --output=avail "$tmp_dir" | tail -1 | tr -dc 0-9)
  echo $((a < b ? a : b))
}

report() {
  echo "disk: $(free_gb) GB free for image builds (store $store, temporary copies in $tmp_dir; need $need_gb GB)"
}

report
[ "$(free_gb)" -ge "$need_gb" ] && exit 0

echo "reclaiming: dangling images of earlier builds"
"$engine" image prune --force >/dev/null
report
[ "$(free_gb)" -ge "$need_gb" ] && exit 0

if pgrep -x podman >/dev/null || pgrep -x buildah >/dev/null; then
  echo "a podman or buildah process is running: its temporary copies in $tmp_dir are left alone"
else
  stale=$(find "$tmp_dir" -maxdepth 1 -mindepth 1 -type d \( -name 'buildah*' -o -name 'storage*' \) -print)
  if [ -n "$stale" ]; then
    echo "reclaiming: temporary copies left by killed builds: $(echo "$stale" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    rm -rf $stale
    report
    [ "$(free_gb)" -ge "$need_gb" ] && exit 0
  fi
fi

echo "reclaiming: every image no container uses (the next builds start without a layer cache)"
"$engine" image prune --all --force >/dev/null
report
if [ "$(free_gb)" -lt "$need_gb" ]; then
  echo "not enough disk for the trainer image: $(free_gb) GB free, about $need_gb GB needed at the build's peak;" \
    "free space on the filesystem of $store and $tmp_dir, or set image_copy_tmp_dir in CONTAINERS_CONF" >&2
  exit 1
fi
