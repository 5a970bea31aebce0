#!/usr/bin/env bash
# ledgerd --tiles-dir DIR served by nginx (issue #7): ledgerd --demo keeps a
# C2SP tlog-tiles directory current; Debian's nginx serves it with
# tools/nginx/ledger-tiles.conf (unprivileged, foreground, loopback port),
# and `ledger-verify audit --json` through nginx must equal the audit
# against ledgerd. Also: the directory's files are ledgerd's bytes; caching
# headers (full tiles immutable, partial tiles and the checkpoint short
# max-age, 404s uncached); full tiles are written once as the log grows; a
# restart catches up with commits made while the directory was not followed.
#
# Exit 77 (skipped) if nginx is not installed (tools/deps.sh installs nginx-light).
#
#   LEDGERD=build/server/ledgerd LEDGERCTL=build/tools/ledgerctl/ledgerctl \
#   VERIFY=build/verifier/ledger-verify BENCH=build/tools/benchmark/ledger-bench \
#   bash tests/tiles_export_test.sh
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${LEDGERCTL:?set LEDGERCTL to the ledgerctl binary}"
: "${VERIFY:?set VERIFY to the ledger-verify binary}"
: "${BENCH:?set BENCH to the ledger-bench binary (it signs the bulk of the accesses)}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_nginx tiles_export_test
command -v curl >/dev/null || { echo "tiles_export_test: curl is required" >&2; exit 1; }
command -v python3 >/dev/null || { echo "tiles_export_test: python3 is required" >&2; exit 1; }

lib_setup tiles_export
lib_on_exit() { stop "$NGINX_PID"; stop "$LEDGERD_PID"; }
chmod 755 "$T"  # nginx's workers run as "nobody" when the test runs as root

same_json() {
  python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    print("reports differ:\n  %s\n  %s" % (json.dumps(a)[:1500], json.dumps(b)[:1500]))
    sys.exit(1)
PY
}
header() {
  tr -d '\r' <"$1" | awk -v n="$(tr 'A-Z' 'a-z' <<<"$2")" -F': ' 'tolower($1) == n { sub(/^[^:]*: /, ""); print; exit }'
}
status() { tr -d '\r' <"$1" | awk 'NR == 1 { print $2 }'; }

DATA="$T/data"
WWW="$T/www"
# start_ledgerd [flags]: ledgerd --demo on DATA; sets URL.
start_ledgerd() {
  rm -f "$T/port"
  "$LEDGERD" --demo --data "$DATA" --listen 127.0.0.1:0 --port-file "$T/port" "$@" >"$T/ledgerd.log" 2>&1 &
  LEDGERD_PID=$!
  for _ in $(seq 1 150); do
    [[ -s $T/port ]] && grep -q 'Try next' "$T/ledgerd.log" && break
    kill -0 "$LEDGERD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'Try next' "$T/ledgerd.log"; then
    echo "ledgerd --demo did not start:" >&2
    cat "$T/ledgerd.log" >&2
    exit 1
  fi
  URL="http://127.0.0.1:$(cat "$T/port")"
  settle
}
# settle: waits until the log stops growing by itself (ledgerd appends a
# subject index commitment about a second after new accesses, SPEC.md §14).
settle() {
  local last="" now same=0
  for _ in $(seq 1 100); do
    now=$(curl -s "$URL/healthz")
    if [[ $now == "$last" ]]; then same=$((same + 1)); else same=0; fi
    last=$now
    ((same >= 6)) && return 0
    sleep 0.25
  done
}
stop_ledgerd() {
  kill "$LEDGERD_PID"
  wait "$LEDGERD_PID" || true
  LEDGERD_PID=""
}
# exported: the directory's checkpoint is ledgerd's current one, once the
# log has settled (waits up to 10 s more).
exported() {
  local want
  settle
  want=$(curl -s "$URL/checkpoint")
  for _ in $(seq 1 100); do
    [[ -f $WWW/checkpoint && "$(cat "$WWW/checkpoint")" == "$want" ]] && return 0
    sleep 0.1
  done
  echo "the directory's checkpoint is not ledgerd's:"; cat "$WWW/checkpoint" 2>&1; echo "$want"
  return 1
}

start_ledgerd --tiles-dir "$WWW"
KEY="@$DATA/log.vkey"
DEMO="$DATA/demo"
PERIOD=$(date -u +%Y-%m)

# sign_accesses N FILE: N accesses by the demo accessor.
sign_accesses() {
  local n=$1 out=$2 i tag
  tag=$("$LEDGERCTL" subject-token --holder demo-bank --vrf-key "$DEMO/holder-vrf.key" --customer alice \
    --period "$PERIOD" --tag-only)
  : >"$out"
  for ((i = 0; i < n; i++)); do
    "$LEDGERCTL" access sign --key "$DEMO/accessor.key" --accessor chat-banking --holder demo-bank --subject "$tag" \
      --purpose CUSTOMER_SUPPORT --categories BALANCES --consent "tiles-$i-$RANDOM" --out "$out"
  done
}

# The bulk (past one full tile) signed in one process: 3 requests of 84.
run "$BENCH" gen-access-bodies --key "$DEMO/accessor.key" --holder demo-bank --accessor chat-banking \
  --entries-per-request 84 --count 3 --out "$T/bulk.jsonl"
expect_rc "ledger-bench signs 252 accesses" 0
while read -r body; do
  printf '%s' "$body" >"$T/body.json"
  run curl -sf -H 'Content-Type: application/json' --data-binary @"$T/body.json" "$URL/v1/entries"
  expect_rc "84 accesses appended" 0
done <"$T/bulk.jsonl"
settle
SIZE=$(curl -s "$URL/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')
check "the log has a full tile and partial ones (size $SIZE > 256)" test "$SIZE" -gt 256
check "the tiles directory follows the log to size $SIZE" exported
check "the directory has a full tile, a full bundle and the level-1 partial tile" \
  test -f "$WWW/tile/0/000" -a -f "$WWW/tile/entries/000" -a -f "$WWW/tile/1/000.p/1"
LAST_W=$((SIZE % 256))
LAST_N=$(printf '%03d' $((SIZE / 256)))
for path in tile/0/000 "tile/0/$LAST_N.p/$LAST_W" tile/1/000.p/1 tile/entries/000 "tile/entries/$LAST_N.p/$LAST_W"; do
  curl -s -o "$T/ledgerd.b" "$URL/$path"
  check "$path in the directory is ledgerd's bytes" cmp "$WWW/$path" "$T/ledgerd.b"
done
check "no temporary files are left" test -z "$(find "$WWW" -name '.tmp.*')"

# nginx with the documented server block (LISTEN and ROOT pointed here).
start_nginx "$WWW"
NURL=$NGINX_URL

run "$VERIFY" audit --log "$URL" --log-key "$KEY" --json
expect_rc "audit against ledgerd verifies" 0
cp "$T/out" "$T/online.json"
run "$VERIFY" audit --log "$NURL" --log-key "$KEY" --json
expect_rc "audit through nginx serving --tiles-dir verifies" 0
cp "$T/out" "$T/nginx.json"
check "the audit through nginx equals the audit against ledgerd" same_json "$T/online.json" "$T/nginx.json"
check "the report covers the whole log ($SIZE entries)" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verified"] is True and r["violations"] == [], r["violations"]
assert r["checkpoint"]["size"] == r["entries"] == int(sys.argv[2]), (r["checkpoint"], r["entries"])
' "$T/nginx.json" "$SIZE"

# Caching headers.
fetch() { curl -s -D "$T/$1.h" -o "$T/$1.b" "${@:3}" "$NURL/$2"; }
IMMUTABLE="public, max-age=31536000, immutable"
for path in tile/0/000 tile/entries/000; do
  fetch h "$path"
  check "$path: 200, Cache-Control $IMMUTABLE" test "$(status "$T/h.h")" = 200 -a "$(header "$T/h.h" Cache-Control)" = "$IMMUTABLE"
done
for path in "tile/0/$LAST_N.p/$LAST_W" tile/1/000.p/1 "tile/entries/$LAST_N.p/$LAST_W"; do
  fetch h "$path"
  check "$path: 200, Cache-Control public, max-age=60 (got '$(header "$T/h.h" Cache-Control)')" \
    test "$(status "$T/h.h")" = 200 -a "$(header "$T/h.h" Cache-Control)" = "public, max-age=60"
done
fetch h checkpoint
check "checkpoint: Cache-Control public, max-age=1 (got '$(header "$T/h.h" Cache-Control)')" \
  test "$(header "$T/h.h" Cache-Control)" = "public, max-age=1"
check "checkpoint: text/plain; charset=utf-8" test "$(header "$T/h.h" Content-Type)" = "text/plain; charset=utf-8"
fetch h tile/0/009
check "a tile the tree has not reached: 404, not cached" test "$(status "$T/h.h")" = 404 -a -z "$(header "$T/h.h" Cache-Control)"

# The log grows: new tiles appear, full ones are not rewritten.
INODE0=$(stat -c '%i %Y' "$WWW/tile/0/000")
run "$VERIFY" audit --log "$NURL" --log-key "$KEY" --state "$T/state" --json
expect_rc "incremental audit through nginx: first run saves its state" 0
sign_accesses 6 "$T/more2.jsonl"
run "$LEDGERCTL" submit --log "$URL" --log-key "$DATA/log.vkey" "$T/more2.jsonl"
expect_rc "ledgerctl submits 6 more accesses" 0
check "the tiles directory follows the log" exported
check "the full tile was not rewritten" test "$(stat -c '%i %Y' "$WWW/tile/0/000")" = "$INODE0"
run "$VERIFY" audit --log "$NURL" --log-key "$KEY" --state "$T/state" --json
expect_rc "incremental audit through nginx after growth verifies" 0
cp "$T/out" "$T/nginx2.json"
run "$VERIFY" audit --log "$URL" --log-key "$KEY" --json
cp "$T/out" "$T/online2.json"
check "the incremental audit through nginx equals a full audit against ledgerd" same_json "$T/online2.json" "$T/nginx2.json"

# Commits while nothing follows the directory; a restart catches up.
stop_ledgerd
start_ledgerd
sign_accesses 3 "$T/more3.jsonl"
run "$LEDGERCTL" submit --log "$URL" --log-key "$DATA/log.vkey" "$T/more3.jsonl"
expect_rc "3 accesses appended without --tiles-dir" 0
settle
check "the directory is behind the log" test "$(cat "$WWW/checkpoint")" != "$(curl -s "$URL/checkpoint")"
stop_ledgerd
start_ledgerd --tiles-dir "$WWW"
check "after a restart with --tiles-dir the directory catches up" exported
run "$VERIFY" audit --log "$NURL" --log-key "$KEY" --json
cp "$T/out" "$T/nginx3.json"
run "$VERIFY" audit --log "$URL" --log-key "$KEY" --json
cp "$T/out" "$T/online3.json"
check "after the catch-up, the audit through nginx equals the audit against ledgerd" same_json "$T/online3.json" "$T/nginx3.json"

# A directory ahead of the log (another log's) is refused.
stop_ledgerd
mkdir -p "$T/other"
printf 'localhost/access-ledger\n999999\nAAAA\n' >"$T/other/checkpoint"
run "$LEDGERD" --demo --data "$DATA" --listen 127.0.0.1:0 --port-file "$T/port2" --tiles-dir "$T/other"
check "ledgerd refuses a --tiles-dir whose checkpoint is beyond the log" test "$RC" -ne 0 -a -n "$(grep -i 'tiles-dir' <<<"$ERR")"

lib_finish tiles_export
