#!/usr/bin/env bash
# Runtime stage of the container image: the user, the socket folder.
# deploy/Dockerfile runs exactly this (as root, on debian:bookworm-slim after
# installing libpq5, libxml2, libssl3, zlib1g, libcurl4 and ca-certificates);
# deploy/container-check.sh too.
#   image/install.sh [ROOT]      (ROOT defaults to /)
set -euo pipefail
root="${1:-/}"
if ! getent group roster >/dev/null; then groupadd --gid 10001 roster; fi
if ! id roster >/dev/null 2>&1; then
  useradd --uid 10001 --gid roster --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin roster
fi
install -d -o roster -g roster -m 0750 "$root/run/roster"
