#!/usr/bin/env bash
# Install the pinned helm (for `helm lint`, `helm template` and the e2e chart install) into the virtual
# environment's bin/: scripts/install-layer-tool.sh. Usage: scripts/install-helm.sh [DEST]
exec "$(dirname "$0")/install-layer-tool.sh" helm "${1:-.venv/bin}"
