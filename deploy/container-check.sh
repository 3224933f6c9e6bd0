#!/usr/bin/env bash
# Checks the container recipe without a Docker engine (none runs on CI):
# performs the Dockerfile's build and runtime steps on this Debian machine —
# the same scripts, paths under a staging root, the same non-root user — then
# starts the three roles as that user against a throwaway PostgreSQL and runs
# the smoke test: health of all three, one SCIM create, one deprovisioning.
# Also checks compose.yaml and the entrypoint's refusal of an unknown role.
# Run by deploy/test.sh (and so by .ci/run); needs root for the user switch.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
log() { printf '\033[1m==> container-check: %s\033[0m\n' "$*"; }
fail() { echo "container-check: FAILED: $*" >&2; exit 1; }

root="$(mktemp -d /tmp/roster-image-XXXXXX)"
chmod 755 "$root"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # Whatever still runs from the staging root (a role started through a
  # wrapper that did not pass the signal on) is stopped too, so no process
  # outlives the check.
  pkill -TERM -f "$root/usr/local/bin/roster" 2>/dev/null || true
  for _ in $(seq 1 50); do pgrep -f "$root/usr/local/bin/roster" >/dev/null || break; sleep 0.1; done
  pkill -KILL -f "$root/usr/local/bin/roster" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -f "$root/pg/data/postmaster.pid" ]; then as_pg "$(pgbin pg_ctl)" -D "$root/pg/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$root"
}
trap cleanup EXIT
pgbin() { if command -v "$1" >/dev/null 2>&1; then command -v "$1"; else ls /usr/lib/postgresql/*/bin/"$1" | sort -V | tail -1; fi; }
if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
  as_roster() { runuser -u roster -- "$@"; }
else
  as_pg() { "$@"; }
  as_roster() { "$@"; }
fi

log "compose.yaml names only services, volumes and variables that exist"
"${PYTHON:-$repo/.venv/bin/python}" deploy/check-compose.py deploy/compose.yaml

log "build stage (deploy/image/build.sh, as in the Dockerfile)"
deploy/image/build.sh "$repo" "$root" >/dev/null

log "runtime stage (deploy/image/install.sh, as in the Dockerfile)"
if [ "$(id -u)" = 0 ]; then deploy/image/install.sh "$root"; else mkdir -p "$root/run/roster"; chmod 750 "$root/run/roster"; fi
[ "$(stat -c %a "$root/run/roster")" = 750 ] || fail "/run/roster is not 0750"

# The image's environment, under the staging root.
export ROSTER_BIN="$root/usr/local/bin/roster"
export ROSTER_RUN_DIR="$root/run/roster"
export ROSTER_SCHEMA_DIR="$root/usr/local/share/roster/schema"
export ROSTER_DATA_DIR="$root/usr/local/share/roster/data"
export ROSTER_LOG_FORMAT=json
export ROSTER_SCIM_LISTEN="unix:$root/run/roster/scim.sock"
export ROSTER_SMTP_URL="smtp://127.0.0.1:9"   # no relay: mail stays queued, which is fine here
export ROSTER_OPS_UIDS="0,10001,$(id -u)"
entry="$root/usr/local/bin/roster-entrypoint"

log "the entrypoint refuses an unknown role"
set +e; out="$("$entry" bogus 2>&1)"; rc=$?; set -e
[ "$rc" = 2 ] || fail "entrypoint returned $rc for an unknown role"
case "$out" in *"unknown role 'bogus'"*) ;; *) fail "unclear message: $out" ;; esac

log "throwaway PostgreSQL"
mkdir -p "$root/pg/data" "$root/pg/sock"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$root/pg"
chmod 700 "$root/pg/data"; chmod 755 "$root/pg" "$root/pg/sock"
as_pg "$(pgbin initdb)" -D "$root/pg/data" -A trust -U postgres --no-sync >/dev/null
as_pg "$(pgbin pg_ctl)" -D "$root/pg/data" -l "$root/pg/log" -o "-k $root/pg/sock -c listen_addresses='' -p 5432 -c fsync=off" -w start >/dev/null
"$(pgbin psql)" -h "$root/pg/sock" -U postgres -d postgres -qc "CREATE DATABASE roster"
export ROSTER_DATABASE_URL="host=$root/pg/sock port=5432 user=postgres dbname=roster"

log "migrate, then the three roles as the image's user"
as_roster env "PATH=$PATH" ROSTER_BIN="$ROSTER_BIN" "$entry" migrate
for role in provisioning deprovisioning notifications; do
  # runuser itself in the background (not the as_roster function, whose
  # subshell would take the signal without passing it on).
  metrics="ROSTER_METRICS_LISTEN=unix:$ROSTER_RUN_DIR/$role-metrics.sock"
  if [ "$(id -u)" = 0 ]; then runuser -u roster -- env "$metrics" "$entry" "$role" >"$root/$role.log" 2>&1 &
  else env "$metrics" "$entry" "$role" >"$root/$role.log" 2>&1 &
  fi
  pids+=($!)
done
for role in provisioning deprovisioning notifications; do
  for _ in $(seq 1 100); do [ -S "$ROSTER_RUN_DIR/$role.sock" ] && break; sleep 0.1; done
  [ -S "$ROSTER_RUN_DIR/$role.sock" ] || { cat "$root/$role.log" >&2; fail "$role did not start"; }
  [ "$(stat -c %a "$ROSTER_RUN_DIR/$role.sock")" = 660 ] || fail "$role.sock is not 0660"
  health="$(echo '{"jsonrpc":"2.0","method":"system.health","id":1}' | socat -t 5 - "UNIX-CONNECT:$ROSTER_RUN_DIR/$role.sock")"
  case "$health" in *'"status":"ok"'*) ;; *) fail "$role health: $health" ;; esac
  scrape="$(printf 'GET /metrics HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n' | socat -t 5 - "UNIX-CONNECT:$ROSTER_RUN_DIR/$role-metrics.sock")"
  case "$scrape" in "HTTP/1.1 200"*"# TYPE roster_database_up gauge"*) ;; *) fail "$role metrics: $(echo "$scrape" | head -3)" ;; esac
done
log "each role serves GET /metrics on ROSTER_METRICS_LISTEN"
call() { as_roster "$ROSTER_BIN" call --raw "$@"; }

log "smoke: one SCIM create"
ws="$(call provisioning workspace.create '{"name":"Smoke","plan":"enterprise","owner":{"email":"owner@smoke.test"}}')"
wid="$(echo "$ws" | sed -E 's/.*"workspaceId":"([^"]+)".*/\1/')"
owner="$(echo "$ws" | sed -E 's/.*"ownerMemberId":"([^"]+)".*/\1/')"
dir="$(call provisioning directory.enable "{\"workspaceId\":\"$wid\",\"actor\":{\"memberId\":\"$owner\"}}")"
token="$(echo "$dir" | sed -E 's/.*"bearerToken":"([^"]+)".*/\1/')"
body='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"smoke@smoke.test","emails":[{"value":"smoke@smoke.test","primary":true}],"active":true}'
reply="$(printf 'POST /scim/v2/Users HTTP/1.1\r\nHost: roster\r\nAuthorization: Bearer %s\r\nContent-Type: application/scim+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$token" "${#body}" "$body" \
  | socat -t 10 - "UNIX-CONNECT:$ROSTER_RUN_DIR/scim.sock")"
case "$reply" in "HTTP/1.1 201"*) ;; *) fail "SCIM create: $reply" ;; esac
uid="$(echo "$reply" | tail -1 | sed -E 's/.*"id":"([^"]+)".*/\1/')"

log "smoke: the browser-facing listener (web.sock) answers /sso/ with its own page"
[ -S "$ROSTER_RUN_DIR/web.sock" ] || fail "provisioning did not bind web.sock"
page="$(printf 'GET /sso/nowhere HTTP/1.1\r\nHost: roster\r\nConnection: close\r\n\r\n' | socat -t 5 - "UNIX-CONNECT:$ROSTER_RUN_DIR/web.sock")"
case "$page" in "HTTP/1.1 404"*"X-Frame-Options: DENY"*) ;; *) fail "web.sock: $page" ;; esac
log "smoke: the guided setup: a link opens its overview"
link="$(call provisioning setup.createLink "{\"workspaceId\":\"$wid\",\"actor\":{\"memberId\":\"$owner\"}}")"
setup_path="$(echo "$link" | sed -E 's|.*"url":"https?://[^/]+(/setup/[^"]+)".*|\1|')"
page="$(printf 'GET %s HTTP/1.1\r\nHost: roster\r\nConnection: close\r\n\r\n' "$setup_path" | socat -t 5 - "UNIX-CONNECT:$ROSTER_RUN_DIR/web.sock")"
case "$page" in "HTTP/1.1 200"*"Set up sign-in for"*) ;; *) fail "setup page: $(echo "$page" | head -3)" ;; esac

log "smoke: one deprovisioning"
job="$(call deprovisioning deprovision.member "{\"workspaceId\":\"$wid\",\"memberId\":\"$uid\",\"actor\":{\"memberId\":\"$owner\"}}")"
jid="$(echo "$job" | sed -E 's/.*"jobId":"([^"]+)".*/\1/')"
for _ in $(seq 1 100); do
  status="$(call deprovisioning job.get "{\"jobId\":\"$jid\"}" | sed -E 's/.*"status":"([^"]+)".*/\1/')"
  [ "$status" = done ] && break
  sleep 0.1
done
[ "$status" = done ] || fail "deprovisioning job is $status"

log "the HEALTHCHECK script passes for each running role"
for role in provisioning deprovisioning notifications; do
  as_roster env ROSTER_ROLE="$role" ROSTER_BIN="$ROSTER_BIN" ROSTER_RUN_DIR="$ROSTER_RUN_DIR" "$root/usr/local/bin/roster-healthcheck" \
    || fail "healthcheck for $role"
done

log "stopping: every role exits on SIGTERM"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for _ in $(seq 1 100); do pgrep -f "$root/usr/local/bin/roster" >/dev/null || break; sleep 0.1; done
if pgrep -f "$root/usr/local/bin/roster" >/dev/null; then fail "a role was still running 10 s after SIGTERM"; fi
for role in provisioning deprovisioning notifications; do
  [ ! -e "$ROSTER_RUN_DIR/$role.sock" ] || fail "$role left its socket behind"
done

log "ok: image recipe builds, runs as non-root, serves, provisions and deprovisions, and stops cleanly"
