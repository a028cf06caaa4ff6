#!/usr/bin/env bash
# Debian's Chromium for the /ui browser test (Playwright drives it; no browser download at run time).
# Installed with apt-get when missing and we are root; otherwise say what to run.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "the /ui test needs Chromium: run 'sudo apt-get install chromium' (or set YOLO_TEST_CHROMIUM)" >&2
  exit 1
fi
