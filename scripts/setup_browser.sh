#!/usr/bin/env bash
# Install Debian's chromium for the browser test of the built book (tests/test_book_browser.py),
# where /usr/bin/chromium is missing. Idempotent: a no-op (well under a second) when it is there.
# Otherwise: apt-get update, then apt-get install --no-install-recommends chromium (about
# 100 MB of packages, ~300 MB on disk; measured 1-2 minutes on the 2-core build machine).
# Needs root (or sudo) and access to a Debian/Ubuntu package mirror.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
    echo "setup_browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "setup_browser: $CHROMIUM is missing and there is no apt-get: install chromium yourself" \
         "and set CHROMIUM=/path/to/chromium" >&2
    exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup_browser: need root or sudo to install chromium" >&2; exit 1; }
    SUDO="sudo"
fi
t0=$SECONDS
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
echo "setup_browser: $("$CHROMIUM" --version) installed in $((SECONDS - t0)) s"
