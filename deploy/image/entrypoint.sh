#!/bin/sh
# Container entrypoint: one image, one role per container.
#   provisioning | deprovisioning | notifications | migrate | call … | version | --help
set -eu
roster="${ROSTER_BIN:-/usr/local/bin/roster}"
role="${1:-}"
case "$role" in
  provisioning|deprovisioning|notifications|migrate|call|version|--help|-h|help)
    exec "$roster" "$@" ;;
  "")
    echo "roster-entrypoint: no role given; use one of: provisioning, deprovisioning, notifications, migrate" >&2
    exit 2 ;;
  *)
    echo "roster-entrypoint: unknown role '$role'; use one of: provisioning, deprovisioning, notifications, migrate (or: call, version, --help)" >&2
    exit 2 ;;
esac
