#!/usr/bin/env bash
# Offline audit through a plain web server: ledgerd --demo (plus a few
# hundred accesses submitted with ledgerctl, so the tree has a full tile and
# partial ones), `ledger-verify mirror` copies it into a C2SP tiles
# directory, Debian's nginx serves that directory with
# tools/nginx/ledger-tiles.conf (unprivileged, in the foreground, on a
# loopback port), and `ledger-verify audit --json` must give the same report
# online (ledgerd), offline (nginx) and from the directory. Also checks
# nginx's headers (MIME types, immutable caching of tiles and bundles, a
# revalidated checkpoint, no directory listing, no caching of 404s), that
# nginx serves the very bytes ledgerd serves, and an incremental audit
# through nginx after the log grows and the mirror is updated.
#
# Exit 77 (skipped) if nginx is not installed (apt-get install nginx-light).
#
#   LEDGERD=build/server/ledgerd LEDGERCTL=build/tools/ledgerctl/ledgerctl \
#   VERIFY=build/verifier/ledger-verify bash tests/nginx_audit_test.sh
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${LEDGERCTL:?set LEDGERCTL to the ledgerctl binary}"
: "${VERIFY:?set VERIFY to the ledger-verify binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_nginx nginx_audit_test
command -v curl >/dev/null || { echo "nginx_audit_test: curl is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "nginx_audit_test: python3 is required" >&2; exit 1; }
PY=$(python3 -c 'import sys; print(sys.executable)')

lib_setup nginx_audit
lib_on_exit() { stop "$NGINX_PID"; stop "$LEDGERD_PID"; }
# nginx's workers run as "nobody" when the test runs as root: let them read.
chmod 755 "$T"

# same_json A B: the two files hold equal JSON documents.
same_json() {
  "$PY" - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    print("reports differ:\n  %s\n  %s" % (json.dumps(a)[:1500], json.dumps(b)[:1500]))
    sys.exit(1)
PY
}

# header FILE NAME: the value of a response header in a `curl -D` dump.
header() {
  tr -d '\r' <"$1" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$2")" -F': ' 'tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }'
}
status() { tr -d '\r' <"$1" | awk 'NR == 1 { print $2 }'; }

# --- ledgerd --demo, grown past one full tile with ledgerctl ----------------

DATA="$T/data"
"$LEDGERD" --demo --data "$DATA" --listen 127.0.0.1:0 --port-file "$T/port" --index-interval-ms 200 \
  >"$T/ledgerd.log" 2>&1 &
LEDGERD_PID=$!
for _ in $(seq 1 150); do
  [[ -s $T/port ]] && grep -q 'ledgerd: demo' "$T/ledgerd.log" && break
  kill -0 "$LEDGERD_PID" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q 'ledgerd: demo' "$T/ledgerd.log"; then
  echo "ledgerd --demo did not start:" >&2
  cat "$T/ledgerd.log" >&2
  exit 1
fi
URL="http://127.0.0.1:$(cat "$T/port")"
KEY="@$DATA/log.vkey"
DEMO="$DATA/demo"
PERIOD=$(date -u +%Y-%m)

# sign_accesses N FILE: N accesses by the demo accessor for a few customers.
sign_accesses() {
  local n=$1 out=$2 i tag
  local -a tags=()
  for c in alice bob carol dave; do
    tags+=("$("$LEDGERCTL" subject-token --holder demo-bank --vrf-key "$DEMO/holder-vrf.key" --customer "$c" \
      --period "$PERIOD" --tag-only)")
  done
  : >"$out"
  for ((i = 0; i < n; i++)); do
    tag=${tags[$((i % 4))]}
    if ((i % 3 == 0)); then
      "$LEDGERCTL" access sign --key "$DEMO/accessor.key" --accessor chat-banking --holder demo-bank --subject "$tag" \
        --purpose CUSTOMER_SUPPORT --categories BALANCES --consent "consent-$i" --detail "balance question $i" --out "$out"
    else
      "$LEDGERCTL" access sign --key "$DEMO/accessor.key" --accessor chat-banking --holder demo-bank --subject "$tag" \
        --purpose PAYMENT_INITIATION --categories ACCOUNT_BASIC,PAYMENT_SUPPORT --consent "consent-$i" --out "$out"
    fi
  done
}

sign_accesses 252 "$T/more.jsonl"
run "$LEDGERCTL" submit --log "$URL" --log-key "$DATA/log.vkey" "$T/more.jsonl"
expect_rc "ledgerctl submits 252 more accesses to the demo log" 0
# ledgerd appends an index commitment (SPEC §14) within --index-interval-ms
# of accesses: settle waits until the size stays put before audits compare.
settle() {
  local prev=-1 size
  for _ in $(seq 1 30); do
    size=$(curl -s "$URL/healthz" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["size"])')
    [[ $size == "$prev" ]] && return 0
    prev=$size
    sleep 1
  done
}
settle
SIZE=$(curl -s "$URL/healthz" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["size"])')
check "the log now has a full tile and partial ones (size $SIZE > 256)" test "$SIZE" -gt 256

# --- the mirror and nginx ----------------------------------------------------

WWW="$T/www"
run "$VERIFY" mirror --log "$URL" --log-key "$KEY" --out "$WWW"
expect_rc "ledger-verify mirror copies the log" 0
check "the mirror has the checkpoint, a full tile and a full bundle" \
  test -f "$WWW/checkpoint" -a -f "$WWW/tile/0/000" -a -f "$WWW/tile/entries/000"
chmod -R a+rX "$WWW"

# The documented server block served by nginx (tests/lib.sh start_nginx).
start_nginx "$WWW"
MIRROR_URL=$NGINX_URL

# --- the same audit three ways ---------------------------------------------

run "$VERIFY" audit --log "$URL" --log-key "$KEY" --json
expect_rc "audit online (ledgerd) verifies" 0
cp "$T/out" "$T/online.json"
run "$VERIFY" audit --log "$MIRROR_URL" --log-key "$KEY" --json
expect_rc "audit offline through nginx verifies" 0
cp "$T/out" "$T/nginx.json"
run "$VERIFY" audit --log "$WWW" --log-key "$KEY" --json
expect_rc "audit of the mirror directory verifies" 0
cp "$T/out" "$T/dir.json"
check "online and nginx reports are identical" same_json "$T/online.json" "$T/nginx.json"
check "online and directory reports are identical" same_json "$T/online.json" "$T/dir.json"
check "the report covers the whole log ($SIZE entries, 257 accesses)" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verified"] is True and r["violations"] == [], r["violations"]
assert r["checkpoint"]["size"] == r["entries"] == int(sys.argv[2]), (r["checkpoint"], r["entries"])
assert r["entries_by_kind"]["access"] == 5 + 252, r["entries_by_kind"]
' "$T/online.json" "$SIZE"
run "$VERIFY" checkpoint --log "$MIRROR_URL" --log-key "$KEY" --json
expect_rc "ledger-verify checkpoint through nginx" 0
run "$VERIFY" inclusion --log "$MIRROR_URL" --log-key "$KEY" --index 3 \
  --leaf-hash "$(curl -s "$URL/v1/entries/3" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["leaf_hash"])')"
expect_rc "ledger-verify inclusion through nginx (proof from nginx's tiles)" 0

# --- nginx's headers and bytes -------------------------------------------------

# fetch NAME PATH [curl args]: headers to $T/NAME.h, body to $T/NAME.b.
fetch() {
  local name=$1 path=$2
  shift 2
  curl -s -D "$T/$name.h" -o "$T/$name.b" "$@" "$MIRROR_URL/$path"
}
LAST_W=$((SIZE % 256))
LAST_N=$(printf '%03d' $((SIZE / 256)))
IMMUTABLE="public, max-age=31536000, immutable"
for path in tile/0/000 "tile/0/$LAST_N.p/$LAST_W" tile/1/000.p/1 tile/entries/000 "tile/entries/$LAST_N.p/$LAST_W"; do
  fetch tile "$path"
  check "$path: 200" test "$(status "$T/tile.h")" = 200
  check "$path: Content-Type application/octet-stream (got '$(header "$T/tile.h" Content-Type)')" \
    test "$(header "$T/tile.h" Content-Type)" = application/octet-stream
  # Full tiles are immutable; partial ones are superseded (60 s).
  want="$IMMUTABLE"
  [[ $path == *.p/* ]] && want="public, max-age=60"
  check "$path: Cache-Control $want" test "$(header "$T/tile.h" Cache-Control)" = "$want"
  curl -s -o "$T/ledgerd.b" "$URL/$path"
  check "$path: nginx serves ledgerd's bytes" cmp "$T/tile.b" "$T/ledgerd.b"
done
fetch cp checkpoint
check "checkpoint: 200" test "$(status "$T/cp.h")" = 200
check "checkpoint: Content-Type text/plain; charset=utf-8 (got '$(header "$T/cp.h" Content-Type)')" \
  test "$(header "$T/cp.h" Content-Type)" = "text/plain; charset=utf-8"
check "checkpoint: Cache-Control public, max-age=1 (got '$(header "$T/cp.h" Cache-Control)')" \
  test "$(header "$T/cp.h" Cache-Control)" = "public, max-age=1"
check "checkpoint: an ETag to revalidate with" test -n "$(header "$T/cp.h" ETag)"
curl -s -o "$T/ledgerd.b" "$URL/checkpoint"
check "checkpoint: nginx serves ledgerd's checkpoint" cmp "$T/cp.b" "$T/ledgerd.b"
fetch cp304 checkpoint -H "If-None-Match: $(header "$T/cp.h" ETag)"
check "checkpoint: revalidation answers 304" test "$(status "$T/cp304.h")" = 304

for path in "" tile/ tile/0/ tile/entries/ tile/0/000.p/ "tile/0/$LAST_N.p"; do
  fetch dir "$path"
  check "/$path: 404, no directory listing" test "$(status "$T/dir.h")" = 404
done
for path in tile/0/001 tile/entries/x001/000 tile/0/000.p/0 tile/0/000.p/256 tile/0/0000 tile/64/000; do
  fetch missing "$path"
  check "/$path: 404" test "$(status "$T/missing.h")" = 404
  check "/$path: the 404 is not cached as immutable" test -z "$(header "$T/missing.h" Cache-Control)"
done
fetch post checkpoint -X POST
check "POST /checkpoint: 405" test "$(status "$T/post.h")" = 405
fetch head tile/0/000 -I
check "HEAD of a tile: 200 with its length" test "$(status "$T/head.h")" = 200 -a \
  "$(header "$T/head.h" Content-Length)" = 8192

# --- the log grows; the mirror follows; an incremental audit through nginx -----

run "$VERIFY" audit --log "$MIRROR_URL" --log-key "$KEY" --state "$T/state" --json
expect_rc "incremental audit through nginx: first run saves the state" 0
sign_accesses 20 "$T/more2.jsonl"
run "$LEDGERCTL" submit --log "$URL" --log-key "$DATA/log.vkey" "$T/more2.jsonl"
expect_rc "ledgerctl submits 20 more accesses" 0
settle
cp "$WWW/tile/0/000" "$T/tile0.before"
run "$VERIFY" mirror --log "$URL" --log-key "$KEY" --out "$WWW"
expect_rc "ledger-verify mirror updates the copy" 0
chmod -R a+rX "$WWW"
check "full tiles are not rewritten by the update" cmp "$WWW/tile/0/000" "$T/tile0.before"
run "$VERIFY" audit --log "$MIRROR_URL" --log-key "$KEY" --state "$T/state" --json
expect_rc "incremental audit through nginx after the update verifies" 0
cp "$T/out" "$T/nginx2.json"
run "$VERIFY" audit --log "$URL" --log-key "$KEY" --json
cp "$T/out" "$T/online2.json"
check "the incremental offline report equals a full online audit" same_json "$T/online2.json" "$T/nginx2.json"

lib_finish nginx_audit
