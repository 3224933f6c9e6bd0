#!/usr/bin/env bash
# Runs the benchmarks against a release build of the local system (started
# with deploy/run-local.sh) and prints Markdown tables for docs/benchmarks.md.
#   deploy/bench.sh [rpc|all] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
suite="${1:-all}"
seconds="${2:-5}"
deploy/run-local.sh >/dev/null
swift build -c release --product roster-bench >/dev/null
BENCH="$(swift build -c release --show-bin-path)/roster-bench"
RUN="${ROSTER_RUN_DIR:-$PWD/.local/run}"
[ ${#RUN} -gt 80 ] && RUN="/tmp/roster-local-$(id -u)"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs, $(uname -r)"
case "$suite" in
  rpc|all) echo; echo "## system.health over the socket vs an echo baseline ($seconds s per cell)"; "$BENCH" rpc "$RUN/provisioning.sock" "$seconds" ;;
esac
