#!/usr/bin/env bash
# Scans the logs of a full test run (every process at debug level, see
# ROSTER_TEST_LOG_DIR in deploy/test.sh) for secrets: SCIM bearer tokens, any
# "Bearer <credential>", setup-link tokens in URLs, SCIM passwords not
# removed, and what P9 says never to log: SAML responses and assertions
# (their base64), ID tokens (JWTs), sign-in codes in URLs, OIDC client
# secrets. Fails when one is found, and when there is too little to scan.
#   deploy/scan-logs.sh DIR
set -euo pipefail
dir="${1:?usage: deploy/scan-logs.sh DIR}"
files=$(find "$dir" -type f -name '*.log' | wc -l)
lines=$(find "$dir" -type f -name '*.log' -exec cat {} + | wc -l)
if [ "$files" -lt 20 ] || [ "$lines" -lt 10000 ]; then
  echo "scan-logs: only $files logs with $lines lines in $dir; the run did not log what it should" >&2
  exit 1
fi
patterns=(
  'roster_scim_[a-z0-9]{20,}'
  'Bearer +[A-Za-z0-9._~+/=-]{8,}'
  '/setup/[A-Za-z0-9_-]{30,}'
  '"password" *: *"[^(]'
  'PHNhbWxwOlJlc3BvbnNl|PHNhbWwycDpSZXNwb25zZ|PHNhbWw6QXNzZXJ0aW9u|PHNhbWwyOkFzc2VydGlvb'
  'eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.'
  '[?&]code=[A-Za-z0-9_-]{30,}'
  '"clientSecret" *: *"[^"(]'
)
found=0
for p in "${patterns[@]}"; do
  if hits=$(grep -rEoh --include='*.log' -- "$p" "$dir" | head -5) && [ -n "$hits" ]; then
    echo "scan-logs: a secret matching /$p/ is in the logs:" >&2
    grep -rEl --include='*.log' -- "$p" "$dir" | head -5 | sed 's/^/  in /' >&2
    echo "$hits" | sed -E 's/(.{24}).*/  \1…/' >&2
    found=1
  fi
done
[ "$found" = 0 ] || exit 1
echo "scan-logs: no secrets in $files logs ($lines lines)"
