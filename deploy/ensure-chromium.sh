#!/bin/sh
# Make sure Debian's Chromium exists at /usr/bin/chromium: the browser tests (tests/test_ui_*.py)
# drive it through Playwright with executable_path, since no browser is downloaded at run time.
# Idempotent; installs with apt-get only when it is missing (needs root or sudo).
set -eu
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "$CHROMIUM missing and not root: apt-get install chromium" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x "$CHROMIUM"
