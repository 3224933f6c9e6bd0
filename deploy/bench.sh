#!/usr/bin/env bash
# Runs the benchmarks against a release build and prints Markdown tables for
# docs/benchmarks.md. Uses the embedded PostgreSQL of deploy/run-local.sh, a
# separate database (roster_bench) and its own processes in /tmp/roster-bench.
#   deploy/bench.sh [rpc|signin|scim|deprov|outbox|sso|events|load|targets|all] [SECONDS]
# (load: 16 clients of mixed traffic for SECONDS, default 600, on all three
# processes, then every accepted change checked; targets: #17's targets side
# by side in one run — RPC vs echo, SCIM creates vs scim2-server and raw
# PostgreSQL, the 10,000-member PATCH, RSS idle and after; neither is part of "all")
set -euo pipefail
cd "$(dirname "$0")/.."
suite="${1:-all}"
seconds="${2:-5}"
if [ "$suite" = load ] && [ -z "${2:-}" ]; then seconds=600; fi
deploy/run-local.sh >/dev/null
# Built as the container builds it (deploy/image/build.sh): the Swift
# runtime linked statically, so memory figures are the shipped ones.
BUILD=(-c release --static-swift-stdlib -Xlinker -lcurl)
swift build "${BUILD[@]}" --product roster >/dev/null
swift build "${BUILD[@]}" --product roster-bench >/dev/null
BIN="$(swift build "${BUILD[@]}" --show-bin-path)"
PGSOCK="$PWD/.local/pgsock"
RUN=/tmp/roster-bench
mkdir -p "$RUN"
psql_() { "$(command -v psql)" -h "$PGSOCK" -p 5432 -U postgres -qAt "$@"; }
if [ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'roster_bench'")" != "1" ]; then
  psql_ -d postgres -c "CREATE DATABASE roster_bench" >/dev/null
fi
export ROSTER_DATABASE_URL="host=$PGSOCK port=5432 user=postgres dbname=roster_bench"
export ROSTER_RUN_DIR="$RUN" ROSTER_SCHEMA_DIR="$PWD/schema" ROSTER_SCIM_LISTEN="unix:$RUN/scim.sock" ROSTER_WEB_LISTEN="unix:$RUN/web.sock"
"$BIN/roster" migrate >/dev/null

pids=()
start() {
  "$BIN/roster" "$1" >>"$RUN/$1.log" 2>&1 &
  pids+=($!)
  echo $! >"$RUN/$1.pid"
  for _ in $(seq 1 100); do [ -S "$RUN/$1.sock" ] && return; sleep 0.1; done
  echo "roster $1 did not start; see $RUN/$1.log" >&2; exit 1
}
# The test virtualenv (scim2-server, aiosmtpd).
ensure_venv() {
  if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/scim2-server ]; then
    python3 -m venv .venv && .venv/bin/pip install -q -r deploy/requirements-test.txt && cp deploy/requirements-test.txt .venv/
  fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; }
# An SMTP sink for the notifications process: `start_smtp_sink` discards,
# `start_smtp_sink DIR` keeps every message in a Maildir.
start_smtp_sink() {
  ensure_venv
  local sport handler=(-c aiosmtpd.handlers.Sink)
  sport=$(free_port)
  if [ -n "${1:-}" ]; then rm -rf "$1"; handler=(-c aiosmtpd.handlers.Mailbox "$1"); fi
  .venv/bin/python -m aiosmtpd -n -l "127.0.0.1:$sport" "${handler[@]}" >"$RUN/smtp-sink.log" 2>&1 &
  pids+=($!)
  wait_port "$sport"
  export ROSTER_SMTP_URL="smtp://127.0.0.1:$sport"
}
# The reference SCIM server, in memory; sets $port.
start_scim2_server() {
  ensure_venv
  port=$(free_port)
  .venv/bin/scim2-server --hostname 127.0.0.1 --port "$port" --bearer-token benchtoken >"$RUN/scim2-server.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait' EXIT
# The load signs in through IdPs on loopback (plain HTTP) with an OIDC client secret.
export ROSTER_PUBLIC_URL="${ROSTER_PUBLIC_URL:-https://app.example.test}" ROSTER_IDP_ALLOW_HTTP_LOOPBACK=true
export ROSTER_SECRET_KEY="${ROSTER_SECRET_KEY:-$(head -c 32 /dev/urandom | base64)}"
# A Python test peer that prints "ready"; sets $port.
start_peer() {
  ensure_venv
  port=$(free_port)
  .venv/bin/python "Tests/Support/peers/$1" "$port" >"$RUN/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q ready "$RUN/$1.log" 2>/dev/null && return; sleep 0.1; done
  echo "the $1 peer did not start; see $RUN/$1.log" >&2; exit 1
}
start provisioning

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs, $(uname -r)"
if [ "$suite" = rpc ] || [ "$suite" = all ]; then
  echo; echo "## system.health over the socket vs an echo baseline ($seconds s per cell)"
  "$BIN/roster-bench" rpc "$RUN/provisioning.sock" "$seconds"
fi
if [ "$suite" = signin ] || [ "$suite" = all ]; then
  echo; echo "## auth.signIn with 100,000 members in 1,000 workspaces ($seconds s per row)"
  "$BIN/roster-bench" seed-signin "$ROSTER_DATABASE_URL"
  "$BIN/roster-bench" signin "$RUN/provisioning.sock" "$seconds"
fi
if [ "$suite" = scim ] || [ "$suite" = all ]; then
  start_scim2_server
  echo; echo "## SCIM POST /Users: Roster vs scim2-server vs raw PostgreSQL ($seconds s per cell)"
  "$BIN/roster-bench" scim-create "$ROSTER_DATABASE_URL" "$RUN/provisioning.sock" "$RUN/scim.sock" "$port" "$seconds"
  echo; echo "## SCIM GET /Users?filter=userName eq \"…\" ($seconds s per row)"
  "$BIN/roster-bench" scim-lookup "$ROSTER_DATABASE_URL" "$RUN/provisioning.sock" "$RUN/scim.sock" 100000,1000000 "$seconds"
  echo; echo "## One PATCH adding 10,000 members to a group"
  "$BIN/roster-bench" scim-patch "$ROSTER_DATABASE_URL" "$RUN/provisioning.sock" "$RUN/scim.sock" 10000
fi
if [ "$suite" = deprov ] || [ "$suite" = all ]; then
  start deprovisioning
  echo; echo "## Deprovisioning: a 100,000-item transfer, and SCIM active:false → job done"
  "$BIN/roster-bench" deprov "$ROSTER_DATABASE_URL" "$RUN/provisioning.sock" "$RUN/deprovisioning.sock" "$RUN/scim.sock" 100000 200
fi
if [ "$suite" = outbox ] || [ "$suite" = all ]; then
  start_smtp_sink
  start notifications
  echo; echo "## Email outbox to a local SMTP sink (aiosmtpd)"
  "$BIN/roster-bench" outbox "$ROSTER_DATABASE_URL" "$RUN/notifications.sock" 2000
fi
if [ "$suite" = sso ] || [ "$suite" = all ]; then
  ensure_venv
  # The comparison library that is not a test peer (needs libxmlsec1-dev to build its binding).
  if ! .venv/bin/python -c 'import onelogin.saml2' 2>/dev/null; then
    need=(); dpkg -s libxmlsec1-dev >/dev/null 2>&1 || need+=(libxmlsec1-dev); command -v xmlsec1 >/dev/null || need+=(xmlsec1)
    if [ "${#need[@]}" -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi
    .venv/bin/pip install -q python3-saml==1.16.0 || echo "(python3-saml could not be installed; its row will say so)" >&2
  fi
  echo; echo "## SSO: the SAML ACS and sso.token, and the Python libraries on the same responses ($seconds s per row)"
  "$BIN/roster-bench" sso "$ROSTER_DATABASE_URL" "$RUN/provisioning.sock" "$RUN/web.sock" "$PWD/.venv/bin/python" "$PWD" "$seconds"
fi
if [ "$suite" = events ] || [ "$suite" = all ]; then
  echo; echo "## Event feed: SCIM active:false → the subscriber holds member.deactivated; one subscriber under SCIM load ($seconds s)"
  "$BIN/roster-bench" events "$RUN/provisioning.sock" "$RUN/scim.sock" 200 "$seconds"
fi
if [ "$suite" = targets ]; then
  # #17's targets side by side in one run, with every process running.
  start_scim2_server
  start_smtp_sink
  start deprovisioning
  start notifications
  sleep 2  # idle: started, connected, nothing asked yet
  echo
  "$BIN/roster-bench" targets "$ROSTER_DATABASE_URL" "$RUN" "$port" "$seconds"
fi
if [ "$suite" = load ]; then
  start_smtp_sink "$RUN/mail"
  start deprovisioning
  start notifications
  start_peer saml_load_idp.py; saml_port=$port
  start_peer oidc_provider.py; oidc_port=$port
  echo; echo "## Mixed load: 16 clients for $seconds s (SCIM, auth.signIn, SAML and OIDC sign-ins, RPC reads, content, email), then every accepted change checked"
  "$BIN/roster-bench" load "$ROSTER_DATABASE_URL" "$RUN" "$seconds" 16 "$RUN/mail/new" "$saml_port" "$oidc_port" "$ROSTER_PUBLIC_URL"
fi
