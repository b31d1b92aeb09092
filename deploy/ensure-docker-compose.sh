#!/bin/sh
# Make sure a `docker-compose` command exists (Debian's v1 package): the compose test validates
# docker-compose.yaml with `docker-compose config -q`, which needs no Docker engine.
exec "$(dirname "$0")/ensure-apt-package.sh" docker-compose docker-compose
