#!/usr/bin/env bash
# The customer page in Debian's headless Chromium (tests/customer_page_test.py):
# verified lists for the demo customers, tampered proofs, malformed tokens,
# an unreachable server, an independently obtained key; screenshots under
# $ARTIFACTS. Needs the Debian packages chromium, chromium-driver and
# python3; skips (77) only when Chromium or its driver is not installed.
# Env: LEDGERD, LEDGERCTL, ARTIFACTS.
set -euo pipefail
: "${LEDGERD:?}" "${LEDGERCTL:?}" "${ARTIFACTS:?}"

# Debian's /usr/bin/chromium is a wrapper script; drive the binary itself.
CHROMIUM=${CHROMIUM:-}
for c in /usr/lib/chromium/chromium /usr/bin/chromium; do
  [ -z "$CHROMIUM" ] && [ -x "$c" ] && CHROMIUM=$c
done
CHROMEDRIVER=${CHROMEDRIVER:-$(command -v chromedriver || true)}
if [ -z "$CHROMIUM" ] || [ -z "$CHROMEDRIVER" ]; then
  echo "SKIP: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
  exit 77
fi
command -v python3 >/dev/null || { echo "FAIL: python3 is needed"; exit 1; }

mkdir -p "$ARTIFACTS"
export CHROMIUM CHROMEDRIVER
exec python3 "$(dirname "$0")/customer_page_test.py"
