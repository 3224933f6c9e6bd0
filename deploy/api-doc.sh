#!/usr/bin/env bash
# Writes docs/api.md from the rpc.discover documents of the three processes
# (the same test that fails when the file is stale, in write mode). Needs
# what deploy/test.sh installs (PostgreSQL server binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
ROSTER_WRITE_API_DOC=1 swift test --skip-build --filter IntegratorTests/apiReferenceIsCurrent
echo "wrote docs/api.md"
