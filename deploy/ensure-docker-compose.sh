#!/bin/sh
# Make sure a `docker-compose` command exists (Debian's v1 package): the compose test validates
# docker-compose.yaml with `docker-compose config -q`, which needs no Docker engine.
# Idempotent; installs with apt-get only when the command is missing (needs root or sudo).
set -eu
if command -v docker-compose >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "docker-compose missing and not root: apt-get install docker-compose" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
command -v docker-compose >/dev/null
