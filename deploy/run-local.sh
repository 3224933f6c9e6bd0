#!/usr/bin/env bash
# Starts (or stops) the whole system locally: builds roster, initialises and
# starts an embedded PostgreSQL under .local/, migrates, and starts the three
# processes in the background.
#   deploy/run-local.sh          start (idempotent)
#   deploy/run-local.sh stop     stop the processes and PostgreSQL
#   deploy/run-local.sh status   show what runs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LOCAL="$ROOT/.local"
PGDATA="$LOCAL/pgdata"
PGSOCK="$LOCAL/pgsock"
LOGS="$LOCAL/logs"
RUN="${ROSTER_RUN_DIR:-$LOCAL/run}"
# Unix socket paths must fit in 107 bytes.
if [ ${#RUN} -gt 80 ]; then RUN="/tmp/roster-local-$(id -u)"; fi
PGPORT=5432
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
AS_PG=(); [ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
pgbin() {
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; else ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1; fi
}

stop_all() {
  for p in notifications deprovisioning provisioning; do
    if [ -f "$LOCAL/$p.pid" ] && kill -0 "$(cat "$LOCAL/$p.pid")" 2>/dev/null; then
      kill -TERM "$(cat "$LOCAL/$p.pid")" && log "stopped roster $p"
    fi
    rm -f "$LOCAL/$p.pid"
  done
  if [ -f "$LOCAL/smtp-sink.pid" ]; then kill "$(cat "$LOCAL/smtp-sink.pid")" 2>/dev/null || true; rm -f "$LOCAL/smtp-sink.pid"; fi
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS_PG[@]}" "$(pgbin pg_ctl)" -D "$PGDATA" -m fast -w stop >/dev/null && log "stopped PostgreSQL"
  fi
}

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  status)
    for p in provisioning deprovisioning notifications; do
      if [ -f "$LOCAL/$p.pid" ] && kill -0 "$(cat "$LOCAL/$p.pid")" 2>/dev/null; then echo "$p: running (pid $(cat "$LOCAL/$p.pid"))"; else echo "$p: stopped"; fi
    done
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

need=()
[ -n "$(pgbin initdb)" ] || need+=(postgresql)
[ -f /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
[ -f /usr/include/libxml2/libxml/c14n.h ] || need+=(libxml2-dev)
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v socat >/dev/null 2>&1 || need+=(socat)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

log "building roster (release)"
swift build -c release --product roster
BIN="$(swift build -c release --show-bin-path)/roster"

mkdir -p "$LOCAL" "$LOGS" "$PGSOCK"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGSOCK"; chmod 755 "$LOCAL"; fi
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  log "initialising PostgreSQL in $PGDATA"
  mkdir -p "$PGDATA"; chmod 700 "$PGDATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
  "${AS_PG[@]}" "$(pgbin initdb)" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C >/dev/null
fi
if ! "${AS_PG[@]}" "$(pgbin pg_ctl)" -D "$PGDATA" status >/dev/null 2>&1; then
  log "starting PostgreSQL (socket in $PGSOCK)"
  touch "$LOGS/postgres.log"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$LOGS/postgres.log"
  # Modest settings for a developer machine; size them for production (docs/operations.md).
  "${AS_PG[@]}" "$(pgbin pg_ctl)" -D "$PGDATA" -l "$LOGS/postgres.log" \
    -o "-k $PGSOCK -c listen_addresses='' -p $PGPORT -c shared_buffers=512MB -c max_wal_size=2GB -c wal_compression=on" -w start >/dev/null
fi
psql_() { "$(pgbin psql)" -h "$PGSOCK" -p $PGPORT -U postgres -qAt "$@"; }
if [ "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'roster'")" != "1" ]; then
  psql_ -d postgres -c "CREATE DATABASE roster" >/dev/null
fi

export ROSTER_DATABASE_URL="host=$PGSOCK port=$PGPORT user=postgres dbname=roster"
export ROSTER_RUN_DIR="$RUN"
export ROSTER_SCHEMA_DIR="$ROOT/schema"
export ROSTER_PUBLIC_URL="${ROSTER_PUBLIC_URL:-http://localhost:3000}"
export ROSTER_MAIL_FROM="${ROSTER_MAIL_FROM:-roster@localhost}"
export ROSTER_SCIM_METRICS="${ROSTER_SCIM_METRICS:-true}"
if [ -z "${ROSTER_SMTP_URL:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then
  # A local mail sink (from the test command's virtualenv): every email lands in .local/mail.
  if ! { [ -f "$LOCAL/smtp-sink.pid" ] && kill -0 "$(cat "$LOCAL/smtp-sink.pid")" 2>/dev/null; }; then
    mkdir -p "$LOCAL/mail/tmp" "$LOCAL/mail/new" "$LOCAL/mail/cur"  # a Maildir
    nohup "$ROOT/.venv/bin/python" -m aiosmtpd -n -l 127.0.0.1:2525 -c aiosmtpd.handlers.Mailbox "$LOCAL/mail" >"$LOGS/smtp-sink.log" 2>&1 &
    echo $! > "$LOCAL/smtp-sink.pid"
  fi
  export ROSTER_SMTP_URL="smtp://127.0.0.1:2525"
fi

log "migrating"
"$BIN" migrate

mkdir -p "$RUN"; chmod 750 "$RUN"
for p in provisioning deprovisioning notifications; do
  if [ -f "$LOCAL/$p.pid" ] && kill -0 "$(cat "$LOCAL/$p.pid")" 2>/dev/null; then
    log "roster $p already running (pid $(cat "$LOCAL/$p.pid"))"
    continue
  fi
  nohup "$BIN" "$p" >>"$LOGS/$p.log" 2>&1 &
  echo $! > "$LOCAL/$p.pid"
done
for p in provisioning deprovisioning notifications; do
  for _ in $(seq 1 100); do [ -S "$RUN/$p.sock" ] && break; sleep 0.1; done
  [ -S "$RUN/$p.sock" ] || { echo "roster $p did not start; see $LOGS/$p.log" >&2; tail -5 "$LOGS/$p.log" >&2; exit 1; }
done

cat <<MSG

Roster is running.
  provisioning    $RUN/provisioning.sock
  deprovisioning  $RUN/deprovisioning.sock
  notifications   $RUN/notifications.sock
  SCIM (HTTP)     $RUN/scim.sock
  web (HTTP)      $RUN/web.sock  (/sso/, /setup/)
  logs            $LOGS/
  database        psql -h $PGSOCK -p $PGPORT -U postgres roster
  mail            ${ROSTER_SMTP_URL:-smtp://127.0.0.1:25 (no relay running: mail stays queued)}

In your shell, so that \`roster call\` and the README's examples find them:
  export ROSTER_RUN_DIR=$RUN PATH=$(dirname "$BIN"):\$PATH ROSTER_DATABASE_URL='$ROSTER_DATABASE_URL'

Try:
  roster call provisioning system.health
  echo '{"jsonrpc":"2.0","method":"system.health","id":1}' | socat -t 30 - UNIX-CONNECT:$RUN/provisioning.sock

Stop everything with:
  deploy/run-local.sh stop
MSG
