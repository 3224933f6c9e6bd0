#!/usr/bin/env bash
# Installs Roster for systemd from a release build — every path the units
# and roster.env.example name:
#   /usr/local/bin/roster                     the executable
#   /usr/local/share/roster/schema/           the migrations (ROSTER_SCHEMA_DIR)
#   /usr/local/share/roster/data/             domain lists (ROSTER_DATA_DIR)
#   /usr/local/share/doc/roster/              docs (the units' Documentation=)
#   /etc/systemd/system/roster*.{service,target}
#   /etc/roster/roster.env                    from roster.env.example, only if absent
# and the `roster` user and group (uid/gid 10001).
#   deploy/systemd/install.sh [DESTDIR]       (DESTDIR: a staging root, default /)
# Build first: swift build -c release --product roster (ROSTER_BIN_DIR: another build's folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
dest="${1:-}"
bin="${ROSTER_BIN_DIR:-$(swift build -c release --show-bin-path 2>/dev/null)}"
[ -x "$bin/roster" ] || { echo "no release build at $bin/roster: run swift build -c release --product roster" >&2; exit 2; }
[ -f "$bin/Roster_Policy.resources/Resources/public_suffix_list.dat" ] || { echo "no domain lists at $bin/Roster_Policy.resources" >&2; exit 2; }

install -D -m 0755 "$bin/roster" "$dest/usr/local/bin/roster"
install -d "$dest/usr/local/share/roster/schema" "$dest/usr/local/share/roster/data" "$dest/usr/local/share/doc/roster" \
  "$dest/etc/systemd/system" "$dest/etc/roster"
install -m 0644 schema/*.sql "$dest/usr/local/share/roster/schema/"
cp -R "$bin/Roster_Policy.resources/Resources/." "$dest/usr/local/share/roster/data/"
cp -R docs/. "$dest/usr/local/share/doc/roster/"
install -m 0644 deploy/systemd/*.service deploy/systemd/*.target "$dest/etc/systemd/system/"
if [ ! -e "$dest/etc/roster/roster.env" ]; then
  install -m 0640 deploy/systemd/roster.env.example "$dest/etc/roster/roster.env"
  echo "wrote $dest/etc/roster/roster.env: set ROSTER_DATABASE_URL, ROSTER_PUBLIC_URL, ROSTER_SMTP_URL and ROSTER_MAIL_FROM in it"
fi
if [ -z "$dest" ]; then
  getent group roster >/dev/null || groupadd --system --gid 10001 roster
  id roster >/dev/null 2>&1 || useradd --system --uid 10001 --gid roster --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin roster
  chgrp roster /etc/roster/roster.env
  systemctl daemon-reload 2>/dev/null || true
  echo "installed; start with: systemctl enable --now roster.target"
else
  echo "staged under $dest"
fi
