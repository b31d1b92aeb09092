#!/bin/sh
# ensure-apt-package.sh COMMAND PACKAGE: install Debian's PACKAGE with apt-get when COMMAND (a name
# on PATH or an absolute path) is missing. Idempotent; needs root or sudo only when it installs.
set -eu
COMMAND=$1
PACKAGE=$2
if command -v "$COMMAND" >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "$COMMAND missing and not root: apt-get install $PACKAGE" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$PACKAGE" >/dev/null
command -v "$COMMAND" >/dev/null
