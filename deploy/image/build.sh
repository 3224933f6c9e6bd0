#!/usr/bin/env bash
# Build stage of the container image (deploy/Dockerfile runs exactly this; so
# does deploy/container-check.sh on a plain Debian machine).
#   image/build.sh SOURCE_DIR STAGING_DIR
# Leaves STAGING_DIR/usr/local/{bin,share/roster} ready to copy into the runtime image.
set -euo pipefail
src="$(cd "$1" && pwd)"
out="$2"
cd "$src"
# FoundationNetworking (HTTPS to IdPs) links statically too; it needs libcurl.
swift build -c release --product roster --static-swift-stdlib -Xlinker -lcurl
bin="$(swift build -c release --show-bin-path)"
install -d "$out/usr/local/bin" "$out/usr/local/share/roster"
install -m 0755 "$bin/roster" "$out/usr/local/bin/roster"
rm -rf "$out/usr/local/share/roster/data" "$out/usr/local/share/roster/schema"
cp -r "$bin/Roster_Policy.resources/Resources" "$out/usr/local/share/roster/data"
cp -r schema "$out/usr/local/share/roster/schema"
install -m 0755 deploy/image/entrypoint.sh "$out/usr/local/bin/roster-entrypoint"
install -m 0755 deploy/image/healthcheck.sh "$out/usr/local/bin/roster-healthcheck"
