#!/usr/bin/env bash
# Install kubectl into the virtual environment's bin/ when none is on PATH (the e2e suite and ../shared/kube's
# up.sh call it): scripts/install-layer-tool.sh. Usage: scripts/install-kubectl.sh [DEST]
if command -v kubectl >/dev/null; then exit 0; fi
exec "$(dirname "$0")/install-layer-tool.sh" kubectl "${1:-.venv/bin}"
