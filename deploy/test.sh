#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Swift: installs
# what the tests need (PostgreSQL server, libpq headers, socat, nginx, a Python
# virtualenv with the SMTP/DNS/SCIM test peers), builds, and runs `swift test`.
# The tests start their own PostgreSQL cluster, DNS and SMTP servers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

have_pg_server() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

need=()
have_pg_server || need+=(postgresql)
[ -f /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
# SSO: libxml2 (XML, C14N), libcrypto (signatures, X.509, AES-GCM), zlib (DEFLATE).
[ -f /usr/include/libxml2/libxml/c14n.h ] || need+=(libxml2-dev)
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
# The container recipe links FoundationNetworking statically (needs libcurl's .so link).
[ -e /usr/lib/x86_64-linux-gnu/libcurl.so ] || [ -e /usr/lib/aarch64-linux-gnu/libcurl.so ] || need+=(libcurl4-openssl-dev)
# The real SAML IdP of the tests (pysaml2) signs with the xmlsec1 tool.
command -v xmlsec1 >/dev/null 2>&1 || need+=(xmlsec1)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v socat >/dev/null 2>&1 || need+=(socat)
# The guided setup's pages are tested in a real browser: headless Chromium over WebDriver.
command -v chromedriver >/dev/null 2>&1 || need+=(chromium chromium-driver)
# Monitoring is tested with a real Prometheus (and its promtool).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
fc-list 2>/dev/null | grep -q DejaVu || need+=(fonts-dejavu-core)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The cluster the tests start runs as `postgres` when we are root.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi

if [ ! -x .venv/bin/python ] || ! cmp -s deploy/requirements-test.txt .venv/requirements-test.txt; then
  log "preparing the Python test peers in .venv"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r deploy/requirements-test.txt
  cp deploy/requirements-test.txt .venv/requirements-test.txt
fi

log "building"
swift build --build-tests

log "running the tests"
export ROSTER_TEST_PYTHON="$PWD/.venv/bin/python"
# Every test process logs at debug here; afterwards the logs are scanned for secrets.
ROSTER_TEST_LOG_DIR="$(mktemp -d /tmp/roster-test-logs-XXXXXX)"
export ROSTER_TEST_LOG_DIR
swift test --skip-build "$@"

log "scanning the test run's logs for secrets"
deploy/scan-logs.sh "$ROSTER_TEST_LOG_DIR"
rm -rf "$ROSTER_TEST_LOG_DIR"

log "checking the container recipe without a Docker engine"
PYTHON="$PWD/.venv/bin/python" deploy/container-check.sh
