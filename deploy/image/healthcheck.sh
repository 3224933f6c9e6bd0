#!/bin/sh
# HEALTHCHECK: asks this container's process for system.health.
# The role is read from PID 1's command line (the entrypoint execs roster ROLE).
set -eu
roster="${ROSTER_BIN:-/usr/local/bin/roster}"
role="${ROSTER_ROLE:-$(tr '\0' '\n' < /proc/1/cmdline 2>/dev/null | sed -n 2p)}"
case "$role" in
  provisioning|deprovisioning|notifications)
    out="$("$roster" call --raw "$role" system.health)" || exit 1
    case "$out" in *'"status":"ok"'*) exit 0 ;; *) echo "$out"; exit 1 ;; esac ;;
  *) exit 0 ;;  # migrate and one-off commands have nothing to check
esac
