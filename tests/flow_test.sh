#!/usr/bin/env bash
# The whole Access Ledger product, end to end, as its users run it:
#   operator   starts ledgerd in ledger mode with a holders file;
#   bank       makes its keys, registers as a holder, authorises an accessor,
#              issues a customer's subject tag and runs ledger-gate;
#   accessor   publishes its policy, signs an access, submits it, and
#              presents the receipt to the bank's gate, which releases data;
#   and the ways it must fail: an undisclosed use is refused by the log (so
#   there is no receipt and the gate refuses), a receipt does not stretch to
#   other categories, subjects or a second release, and a revoked key cannot
#   log any more accesses.
#
# Needs: bash, curl, sed, awk, grep. Binaries from the environment:
#   LEDGERD, LEDGERCTL, GATE   (ctest sets them; see tests/CMakeLists.txt)
# Prints one line per check and a final "N passed, M failed".
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${LEDGERCTL:?set LEDGERCTL to the ledgerctl binary}"
: "${GATE:?set GATE to the ledger-gate binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LEDGERD=$(absolute "$LEDGERD")
LEDGERCTL=$(absolute "$LEDGERCTL")
GATE=$(absolute "$GATE")

HOLDER=demo-bank
ACCESSOR=chat-banking
PERIOD=$(date -u +%Y-%m)

lib_setup flow_test
trap 'echo "FAIL line $LINENO: $BASH_COMMAND (exit $?)"' ERR

# gate_request RECEIPT_JSON SUBJECT ACCESSOR CATEGORIES_JSON: POST to the
# gate; sets CODE and BODY.
gate_request() {
  local body="{\"receipt\": $1, \"subject\": \"$2\", \"accessor\": \"$3\", \"categories\": $4}"
  gate_post "$body"
}
gate_post() {
  local out
  out=$(curl -sS -o "$WORK/gate.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$1" "$GATE_URL/accounts/data")
  CODE=$out
  BODY=$(cat "$WORK/gate.out")
}

# receipt_of LINE: the tlog_proof string literal of a receipts JSONL line,
# still JSON-escaped (ready to embed in a request).
receipt_of() { sed -n 's/.*"tlog_proof":\("[^"]*"\).*/\1/p' <<<"$1"; }

cd "$WORK"
umask 077

echo "== keys and holders file (bank)"
HOLDER_PUB=$("$LEDGERCTL" keygen --type ed25519 --out holder.key)
VRF_PUB=$("$LEDGERCTL" keygen --type vrf --out holder-vrf.key)
ACCESSOR_PUB=$("$LEDGERCTL" keygen --type ed25519 --out accessor.key)
check "keygen prints base64url public keys" \
  test "${#HOLDER_PUB}" = 43 -a "${#VRF_PUB}" = 43 -a "${#ACCESSOR_PUB}" = 43
"$LEDGERCTL" holder-config --name "$HOLDER" --signing-key holder.key --vrf-key holder-vrf.key --file holders.json >/dev/null
check "holders file names the holder's keys" grep -qF -- "$VRF_PUB" holders.json

echo "== ledgerd in ledger mode (operator)"
"$LEDGERD" --data "$WORK/log" --listen 127.0.0.1:0 --port-file "$WORK/log.port" --entries ledger \
  --holders holders.json --batch-wait-us 0 >"$WORK/ledgerd.out" 2>&1 &
PIDS+=($!)
LOG_PORT=$(wait_port "$WORK/log.port" "${PIDS[-1]}")
LOG="http://127.0.0.1:$LOG_PORT"
VKEY="$WORK/log/log.vkey"
check "ledgerd registered the holder from the holders file" grep -q "holder $HOLDER registered" "$WORK/ledgerd.out"

echo "== the bank's gate"
"$GATE" --listen 127.0.0.1:0 --port-file "$WORK/gate.port" --log-key "$VKEY" --holder "$HOLDER" \
  --releases "$WORK/releases.jsonl" >"$WORK/gate.log" 2>&1 &
PIDS+=($!)
GATE_PID=${PIDS[-1]}
GATE_URL="http://127.0.0.1:$(wait_port "$WORK/gate.port" "$GATE_PID")"
check "gate is healthy" contains "$(curl -sS "$GATE_URL/healthz")" '"status":"ok"'

echo "== the holder authorises the accessor; the accessor publishes its policy"
OUT=$("$LEDGERCTL" authorize --holder "$HOLDER" --holder-key holder.key --accessor "$ACCESSOR" \
  --key-file accessor.key --log "$LOG" --log-key "$VKEY")
check "authorize is logged ($OUT)" contains "$OUT" "entry "
cat >policy.json <<'EOF'
{"version": 1, "purposes": [{"purpose": "CUSTOMER_SUPPORT", "categories": ["BALANCES"]}]}
EOF
OUT=$("$LEDGERCTL" policy publish --key accessor.key --holder "$HOLDER" --accessor "$ACCESSOR" \
  --file policy.json --log "$LOG" --log-key "$VKEY")
check "policy v1 is logged ($OUT)" contains "$OUT" "entry "

echo "== subject tags (bank -> accessor)"
ALICE=$("$LEDGERCTL" subject-token --holder "$HOLDER" --vrf-key holder-vrf.key --customer alice --period "$PERIOD" --tag-only)
BOB=$("$LEDGERCTL" subject-token --holder "$HOLDER" --vrf-key holder-vrf.key --customer bob --period "$PERIOD" --tag-only)
check "subject tags are 32-byte base64url and differ per customer" \
  test "${#ALICE}" = 43 -a "${#BOB}" = 43 -a "$ALICE" != "$BOB"

echo "== a disclosed access: logged, receipt, data released"
"$LEDGERCTL" access sign --key accessor.key --accessor "$ACCESSOR" --holder "$HOLDER" --subject "$ALICE" \
  --purpose CUSTOMER_SUPPORT --categories BALANCES --consent chat-session-1 --request-id req-1 >access1.jsonl
OUT=$("$LEDGERCTL" submit --log "$LOG" --log-key "$VKEY" --receipts receipts.jsonl access1.jsonl)
check "the disclosed access is logged ($OUT)" contains "$OUT" "entry "
ACCESS1_INDEX=${OUT#entry }
RECEIPT1=$(receipt_of "$(tail -n 1 receipts.jsonl)")
check "submit saved a tlog-proof receipt with the entry" contains "$RECEIPT1" 'c2sp.org/tlog-proof@v1\nextra '

gate_request "$RECEIPT1" "$ALICE" "$ACCESSOR" '["BALANCES"]'
check "gate releases BALANCES against the receipt (200)" test "$CODE" = 200
check "the response has the balances" contains "$BODY" '"BALANCES":{'
check "the response has nothing else" eval '! contains "$BODY" TRANSACTIONS'
check "the release is recorded" grep -q "\"request_id\":\"req-1\".*\"index\":$ACCESS1_INDEX" "$WORK/releases.jsonl"

gate_request "$RECEIPT1" "$ALICE" "$ACCESSOR" '["BALANCES"]'
check "the same receipt does not release twice (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "already used"'

echo "== receipts do not stretch"
"$LEDGERCTL" access sign --key accessor.key --accessor "$ACCESSOR" --holder "$HOLDER" --subject "$ALICE" \
  --purpose CUSTOMER_SUPPORT --categories BALANCES --consent chat-session-2 --request-id req-2 >access2.jsonl
OUT=$("$LEDGERCTL" submit --log "$LOG" --log-key "$VKEY" access2.jsonl)
check "a second disclosed access is logged ($OUT)" contains "$OUT" "entry "
ACCESS2_INDEX=${OUT#entry }
# This time the receipt comes straight from the log's read API.
RECEIPT2=$(curl -sS "$LOG/v1/proof/tlog-proof?index=$ACCESS2_INDEX" | json_string)

gate_request "$RECEIPT2" "$ALICE" "$ACCESSOR" '["BALANCES","TRANSACTIONS"]'
check "the receipt for BALANCES does not release TRANSACTIONS (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "category not logged: TRANSACTIONS"'
gate_request "$RECEIPT2" "$BOB" "$ACCESSOR" '["BALANCES"]'
check "alice's receipt does not release bob's data (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "subject mismatch"'
gate_request "$RECEIPT2" "$ALICE" "ad-network" '["BALANCES"]'
check "another accessor cannot use the receipt (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "accessor mismatch"'
gate_request "$RECEIPT2" "$ALICE" "$ACCESSOR" '["BALANCES"]'
check "the log-served receipt releases BALANCES (200)" test "$CODE" = 200

echo "== an undisclosed use: refused at the log, so no data"
"$LEDGERCTL" access sign --key accessor.key --accessor "$ACCESSOR" --holder "$HOLDER" --subject "$ALICE" \
  --purpose TARGETED_ADVERTISING --categories TRANSACTIONS --consent none --request-id req-ads >ads.jsonl
RC=0
OUT=$("$LEDGERCTL" submit --log "$LOG" --log-key "$VKEY" --receipts receipts.jsonl ads.jsonl 2>/dev/null) || RC=$?
check "TARGETED_ADVERTISING is refused by the log ($OUT)" \
  eval 'test "$RC" = 1 && contains "$OUT" "refused: undisclosed use"'
check "no receipt was issued for it" test "$(grep -c . receipts.jsonl)" = 1

# Without a receipt the gate has nothing to check: each attempt is refused.
gate_request '"none"' "$ALICE" "$ACCESSOR" '["TRANSACTIONS"]'
check "a request without a valid receipt is refused (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "malformed receipt"'
# The refused entry wrapped in a real receipt of another entry.
FORGED_ENTRY=$(head -c -1 ads.jsonl | base64 -w0)
FORGED=$(curl -sS "$LOG/v1/proof/tlog-proof?index=$ACCESS2_INDEX" |
  sed "s|^extra .*|extra $FORGED_ENTRY|" | json_string)
gate_request "$FORGED" "$ALICE" "$ACCESSOR" '["TRANSACTIONS"]'
check "the refused access in a borrowed receipt is refused (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "not included"'
check "the gate released nothing for it" eval '! grep -q req-ads "$WORK/releases.jsonl"'

echo "== malformed requests"
gate_post '{"receipt": '
check "bad JSON is 400" test "$CODE" = 400
gate_post "{\"receipt\": $RECEIPT2, \"subject\": \"$ALICE\", \"accessor\": \"$ACCESSOR\"}"
check "missing categories is 400 ($BODY)" test "$CODE" = 400
gate_post "{\"receipt\": $RECEIPT2, \"subject\": \"not-a-tag\", \"accessor\": \"$ACCESSOR\", \"categories\": [\"BALANCES\"]}"
check "a bad subject tag is 400 ($BODY)" test "$CODE" = 400
CODE=$(curl -sS -o /dev/null -w '%{http_code}' --data-binary '{}' -H 'Content-Type: text/plain' "$GATE_URL/accounts/data")
check "a non-JSON content type is 415" test "$CODE" = 415
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "$GATE_URL/accounts/data")
check "GET /accounts/data is 405" test "$CODE" = 405

echo "== the holder revokes the accessor's key"
OUT=$("$LEDGERCTL" revoke --holder "$HOLDER" --holder-key holder.key --accessor "$ACCESSOR" \
  --key-file accessor.key --log "$LOG" --log-key "$VKEY")
check "revoke is logged ($OUT)" contains "$OUT" "entry "
"$LEDGERCTL" access sign --key accessor.key --accessor "$ACCESSOR" --holder "$HOLDER" --subject "$ALICE" \
  --purpose CUSTOMER_SUPPORT --categories BALANCES --consent chat-session-3 --request-id req-3 >access3.jsonl
RC=0
OUT=$("$LEDGERCTL" submit --log "$LOG" --log-key "$VKEY" --receipts receipts.jsonl access3.jsonl 2>/dev/null) || RC=$?
check "the revoked key's next access is refused by the log ($OUT)" \
  eval 'test "$RC" = 1 && contains "$OUT" "refused: "'

echo "== the release record survives a gate restart"
kill "$GATE_PID"
wait "$GATE_PID" 2>/dev/null || true
rm -f "$WORK/gate.port"
"$GATE" --listen 127.0.0.1:0 --port-file "$WORK/gate.port" --log-key "$VKEY" --holder "$HOLDER" \
  --releases "$WORK/releases.jsonl" >>"$WORK/gate.log" 2>&1 &
PIDS+=($!)
GATE_URL="http://127.0.0.1:$(wait_port "$WORK/gate.port" "${PIDS[-1]}")"
check "two releases on record" test "$(grep -c '"request_id"' "$WORK/releases.jsonl")" = 2
gate_request "$RECEIPT1" "$ALICE" "$ACCESSOR" '["BALANCES"]'
check "a receipt released before the restart stays used (403: $BODY)" \
  eval 'test "$CODE" = 403 && contains "$BODY" "already used"'

lib_finish flow_test
