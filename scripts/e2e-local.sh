#!/usr/bin/env bash
# `make e2e-local`: start the real control plane of ../shared/kube (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd on loopback) in a fresh state folder, run `make e2e` against it, then stop it and wipe
# its state, whatever the outcome (docs/e2e.md). Environment (all optional):
#   KUBE_DIR        the control plane's folder (default ../shared/kube, beside the clone)
#   KUBE_STATE      its state folder (default: a new /tmp/yolo-e2e-kube.XXXXXX, removed at the end)
#   KUBE_API_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KCM_PORT, SCHED_PORT: its ports (up.sh's defaults)
#   E2E_FLAGS       pytest flags of `make e2e` (default --local-kubelet; CI adds --with-images)
set -euo pipefail
cd "$(dirname "$0")/.."
kube=${KUBE_DIR:-../shared/kube}
if [ ! -x "$kube/up.sh" ]; then
  echo "e2e-local: no control plane at $kube (up.sh); run 'make e2e' with KUBECONFIG set to a cluster instead" >&2
  exit 2
fi
# up.sh needs kubectl, openssl, curl and xz
./scripts/install-kubectl.sh "${VENV:-.venv}/bin"
export PATH="$PWD/${VENV:-.venv}/bin:$PATH"
./scripts/install-debian.sh openssl openssl "the control plane's certificates (up.sh)"
./scripts/install-debian.sh curl curl "up.sh"
./scripts/install-debian.sh xz xz-utils "unpacking the control plane's binaries (up.sh)"
state=${KUBE_STATE:-$(mktemp -d /tmp/yolo-e2e-kube.XXXXXX)}
stop() {
  "$kube/down.sh" "$state" --wipe || true
  if [ -z "${KUBE_STATE:-}" ]; then rm -rf "$state"; fi
}
trap stop EXIT
start=$SECONDS
"$kube/up.sh" "$state"
echo "e2e-local: control plane up in $((SECONDS - start)) s (state $state)"
start=$SECONDS
rc=0
# YOLO_E2E_CONTROLLERS=real: the stand-in node must see the real Job controller and scheduler (tests/kubelet.py)
KUBECONFIG="$state/kubeconfig" YOLO_E2E_CONTROLLERS=real make e2e VENV="${VENV:-.venv}" E2E_FLAGS="${E2E_FLAGS:---local-kubelet}" || rc=$?
echo "e2e-local: make e2e took $((SECONDS - start)) s (exit $rc)"
exit $rc
