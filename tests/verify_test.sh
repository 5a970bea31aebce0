#!/usr/bin/env bash
# ledger-verify end to end, as a regulator runs it against a live log:
#   ledgerd --demo serves a log; ledgerctl appends more accesses; every
#   ledger-verify command is run online (and offline against a mirror) and
#   its exit code and key output checked: checkpoint, inclusion (proof from
#   tiles, and from a tlog-proof file), consistency between a saved
#   checkpoint and the new one, the offline receipt check, the full audit,
#   the incremental audit (equal to a full one), mirror + offline audit (same
#   report), reconcile against a release file, witness quorums (two
#   ledger-witness processes, one of which cosigns the log's checkpoint:
#   --witness/--quorum on checkpoint, receipt, audit and ledgerctl receipt
#   check), usage errors (exit 2) and a wrong log key (exit 1).
#
# Needs: bash, curl, sed, grep, base64, cmp. Binaries from the environment:
#   LEDGERD, LEDGERCTL, VERIFY, WITNESS   (ctest sets them; see
#   tests/CMakeLists.txt)
# Prints one line per check and a final "N passed, M failed".
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${LEDGERCTL:?set LEDGERCTL to the ledgerctl binary}"
: "${VERIFY:?set VERIFY to the ledger-verify binary}"
: "${WITNESS:?set WITNESS to the ledger-witness binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LEDGERD=$(absolute "$LEDGERD")
LEDGERCTL=$(absolute "$LEDGERCTL")
VERIFY=$(absolute "$VERIFY")
WITNESS=$(absolute "$WITNESS")

HOLDER=demo-bank
ACCESSOR=chat-banking
PERIOD=$(date -u +%Y-%m)
# Another log's key (SPEC.md §2's known-answer key): valid, but not this log's.
OTHER_KEY='example.com/ledger/test+25820e75+Ab3lzRZCNxpgpYFc/Ojlt9gggVCneVxW22xikMi8o8ci'

lib_setup verify_test
trap 'echo "FAIL line $LINENO: $BASH_COMMAND (exit $?)"' ERR
# run ARGS...: runs ledger-verify; sets RC and OUT (stdout), ERR (stderr).
run() { lib_run "$VERIFY" "$@"; }
# expect CODE NAME: checks the last run's exit code (and shows why if not).
expect() {
  if [ "$RC" = "$1" ]; then pass "$2"; else fail "$2 (exit $RC, want $1)" "$(printf '%s\n%s' "$OUT" "$ERR" | head -c 600)"; fi
}
# json_number KEY TEXT: the first "KEY":<number> in TEXT.
json_number() { sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" <<<"$2" | sed -n 1p; }

# entry_bytes INDEX FILE: writes entry INDEX's bytes (from the log's API) to FILE.
entry_bytes() { curl -sS "$LOG/v1/entries/$1" | sed -n 's/.*"entry":"\([^"]*\)".*/\1/p' | base64 -d >"$2"; }

# add_access REQUEST_ID SUBJECT PURPOSE CATEGORIES: signs and submits one
# access as the demo accessor; prints its index.
add_access() {
  "$LEDGERCTL" access sign --key "$DATA/demo/accessor.key" --accessor "$ACCESSOR" --holder "$HOLDER" \
    --subject "$2" --purpose "$3" --categories "$4" --consent "consent-$1" --request-id "$1" >"$WORK/access.jsonl"
  local out
  out=$("$LEDGERCTL" submit --log "$LOG" --log-key "$KEY_FILE" --receipts "$WORK/receipts.jsonl" "$WORK/access.jsonl")
  echo "${out#entry }"
}

cd "$WORK"
umask 077

echo "== a demo log (ledgerd --demo)"
DATA="$WORK/data"
# Subject index commitments (SPEC.md §14) an hour apart: none during the
# test, so the sizes below are those of the entries this test appends
# (tests/subject_verify_test.sh covers commitments).
"$LEDGERD" --demo --data "$DATA" --listen 127.0.0.1:0 --port-file "$WORK/log.port" --batch-wait-us 0 \
  --index-interval-ms 3600000 >"$WORK/ledgerd.out" 2>&1 &
PIDS+=($!)
LOG="http://127.0.0.1:$(wait_port "$WORK/log.port" "${PIDS[-1]}")"
KEY_FILE="$DATA/log.vkey"
KEY="@$KEY_FILE"
ALICE=$("$LEDGERCTL" subject-token --holder "$HOLDER" --vrf-key "$DATA/demo/holder-vrf.key" --customer alice --period "$PERIOD" --tag-only)
BOB=$("$LEDGERCTL" subject-token --holder "$HOLDER" --vrf-key "$DATA/demo/holder-vrf.key" --customer bob --period "$PERIOD" --tag-only)
check "the demo log has 8 entries" contains "$(curl -sS "$LOG/checkpoint")" $'\n8\n'

echo "== checkpoint"
run checkpoint --log "$LOG" --log-key "$KEY"
expect 0 "the log's checkpoint verifies"
check "it shows size 8" contains "$OUT" "size  8"
run checkpoint --log "$LOG" --log-key "$(cat "$KEY_FILE")" --json
expect 0 "the key string works as well as @FILE"
check "--json says verified, size 8" contains "$OUT" '"size":8,'
curl -sS "$LOG/checkpoint" >cp8.txt
run checkpoint --log-key "$KEY" --checkpoint cp8.txt
expect 0 "a saved checkpoint verifies offline"
RC=0; OUT=$("$VERIFY" checkpoint --log-key "$KEY" --checkpoint - <cp8.txt) || RC=$?
expect 0 "a checkpoint on stdin verifies"
# Change the root's first character to a different one (the root may start with any letter).
awk 'NR == 3 { c = substr($0, 1, 1); $0 = (c == "A" ? "B" : "A") substr($0, 2) } { print }' cp8.txt >cp-tampered.txt
check "the tampered copy differs" test "$(cat cp8.txt)" != "$(cat cp-tampered.txt)"
run checkpoint --log-key "$KEY" --checkpoint cp-tampered.txt
expect 1 "a tampered checkpoint does not verify"

echo "== more accesses"
A1=$(add_access req-1 "$ALICE" CUSTOMER_SUPPORT BALANCES)
A2=$(add_access req-2 "$BOB" FRAUD_PREVENTION TRANSACTIONS)
A3=$(add_access req-3 "$ALICE" PAYMENT_INITIATION ACCOUNT_BASIC,PAYMENT_SUPPORT)
check "three accesses appended ($A1 $A2 $A3)" test "$A1" = 8 -a "$A3" = 10
curl -sS "$LOG/checkpoint" >cp11.txt

echo "== inclusion"
entry_bytes "$A2" entry.bin
run inclusion --log "$LOG" --log-key "$KEY" --entry entry.bin --index "$A2"
expect 0 "an entry is included (proof computed from tiles)"
check "it names the tree size" contains "$OUT" "is in the tree of size 11"
run inclusion --log "$LOG" --log-key "$KEY" --entry entry.bin --index "$A1"
expect 1 "the same entry at another index is not"
LEAF=$(curl -sS "$LOG/v1/entries/3" | sed -n 's/.*"leaf_hash":"\([^"]*\)".*/\1/p')
run inclusion --log "$LOG" --log-key "$KEY" --leaf-hash "$LEAF" --index 3 --checkpoint cp8.txt --json
expect 0 "a leaf hash is included in an older checkpoint's tree"
check "--json says verified" contains "$OUT" '"verified":true'
run inclusion --log "$LOG" --log-key "$KEY" --leaf-hash "$LEAF" --index 9 --checkpoint cp8.txt
expect 1 "an index beyond the checkpoint is not included"
curl -sS "$LOG/v1/proof/tlog-proof?index=$A2" >proof.txt
run inclusion --log-key "$KEY" --proof proof.txt
expect 0 "a tlog-proof file verifies offline (entry from its extra line)"
run inclusion --log-key "$KEY" --proof proof.txt --entry cp8.txt
expect 1 "a tlog-proof does not prove another entry"

echo "== consistency"
run consistency --log "$LOG" --log-key "$KEY" --old cp8.txt
expect 0 "the latest checkpoint extends the saved one"
check "it names both sizes" contains "$OUT" "size 11 extends the tree of size 8"
run consistency --log "$LOG" --log-key "$KEY" --old cp8.txt --new cp11.txt --json
expect 0 "two saved checkpoints are consistent"
check "--json has the proof" contains "$OUT" '"consistency":["'
run consistency --log "$LOG" --log-key "$KEY" --old cp11.txt --new cp8.txt
expect 1 "a smaller 'new' checkpoint is a rollback"
check "the failure prints both checkpoints as evidence" \
  eval 'contains "$OUT" "Old checkpoint:" && contains "$OUT" "New checkpoint:" && contains "$OUT" "FORK"'

echo "== receipt (the offline gate check)"
curl -sS "$LOG/v1/proof/tlog-proof?index=$A1" >receipt.txt
run receipt --log-key "$KEY" --receipt receipt.txt --accessor "$ACCESSOR" --holder "$HOLDER" --subject "$ALICE" \
  --categories BALANCES --purpose CUSTOMER_SUPPORT
expect 0 "the receipt allows what was logged"
check "it says allowed" contains "$OUT" "allowed: entry $A1"
run receipt --log-key "$KEY" --receipt receipt.txt --subject "$BOB"
expect 1 "the receipt does not stretch to another customer"
check "refused: subject mismatch" contains "$OUT" "refused: subject mismatch"
run receipt --log-key "$KEY" --receipt receipt.txt --categories TRANSACTIONS
expect 1 "nor to another category"
head -n 1 receipts.jsonl >receipt.jsonl
run receipt --log-key "$KEY" --receipt receipt.jsonl --json
expect 0 "a ledgerctl submit --receipts line is a receipt too"
check "--json says verified" contains "$OUT" '"verified":true'

echo "== audit"
run audit --log "$LOG" --log-key "$KEY"
expect 0 "the full audit verifies"
check "no violations" contains "$OUT" "Violations: 0"
check "entries by kind" contains "$OUT" "Entries: 11 (holder 1, accessor 1, policy 1, access 8)"
check "accesses by accessor, purpose, category" contains "$OUT" "FRAUD_PREVENTION"
run audit --log "$LOG" --log-key "$KEY" --json
expect 0 "the full audit verifies (--json)"
FULL11="$OUT"
check "--json: 11 entries, 8 accesses, no violations, verified" \
  eval 'contains "$OUT" "\"entries\":11," && contains "$OUT" "\"access\":8," && contains "$OUT" "\"violations\":[]" && contains "$OUT" "\"verified\":true}"'
check "--json: FRAUD_PREVENTION TRANSACTIONS counted twice" contains "$OUT" '"FRAUD_PREVENTION":{"TRANSACTIONS":2}'
run audit --log "$LOG" --log-key "$KEY" --json --threads 1 --connections 1
check "one thread gives the same report" test "$OUT" = "$FULL11"
run audit --log "$LOG" --log-key "$KEY" --json --checkpoint cp8.txt
expect 0 "an audit up to an older checkpoint verifies"
check "it covers 8 entries" contains "$OUT" '"entries":8,'
check "nothing on stderr when it is not a terminal (no progress bar)" test -z "$ERR"

echo "== incremental audit"
run audit --log "$LOG" --log-key "$KEY" --state state.txt --json --checkpoint cp8.txt
expect 0 "a first audit with --state verifies and saves the state"
check "the state file exists" test -s state.txt
run audit --log "$LOG" --log-key "$KEY" --state state.txt --json
expect 0 "the incremental audit from size 8 to 11 verifies"
check "it equals the full audit at 11" test "$OUT" = "$FULL11"
for i in $(seq 4 23); do add_access "req-$i" "$BOB" CUSTOMER_SUPPORT TRANSACTIONS >/dev/null; done
run audit --log "$LOG" --log-key "$KEY" --state state.txt
expect 0 "the incremental audit after 20 more accesses verifies"
check "it resumed from the state" contains "$OUT" "resumed     from state state.txt at size 11"
check "it replayed only the new entries" contains "$OUT" "replayed    20 entries (11..30)"
run audit --log "$LOG" --log-key "$KEY" --state state.txt --json
INCR="$OUT"
run audit --log "$LOG" --log-key "$KEY" --json
FULL31="$OUT"
check "incremental equals full (same counters and violations)" test "$INCR" = "$FULL31"
check "31 entries, 28 accesses" eval 'contains "$FULL31" "\"entries\":31," && contains "$FULL31" "\"access\":28,"'
run audit --log "$LOG" --log-key "$KEY" --state state.txt --checkpoint cp8.txt
expect 1 "a state ahead of the checkpoint is a rollback (fork), exit 1"
check "reported as fork" contains "$OUT" "fork at entry 31"

echo "== mirror and offline audit"
run mirror --log "$LOG" --log-key "$KEY" --out mirror
expect 0 "the mirror copies and verifies the log"
check "the mirror has the checkpoint, tiles and bundles" \
  test -s mirror/checkpoint -a -s mirror/tile/0/000.p/31 -a -s mirror/tile/entries/000.p/31
run audit --log mirror --log-key "$KEY" --json
expect 0 "the offline audit of the mirror verifies"
check "it gives the same report as the online audit" test "$OUT" = "$FULL31"
run inclusion --log mirror --log-key "$KEY" --entry entry.bin --index "$A2"
expect 0 "inclusion proofs work offline from the mirror"
add_access req-24 "$ALICE" CUSTOMER_SUPPORT BALANCES >/dev/null
run mirror --log "$LOG" --log-key "$KEY" --out mirror --json
expect 0 "re-running the mirror updates it"
check "the mirror's checkpoint is the new one" contains "$(cat mirror/checkpoint)" $'\n32\n'
run mirror --log "$LOG" --log-key "$KEY" --out mirror --json
expect 0 "a mirror already up to date verifies"
check "no file is left in staging" test -z "$(find mirror -name '.staging-*' -o -name '*.tmp.*')"
run audit --log mirror --log-key "$KEY" --json
ONLINE_OUT=$("$VERIFY" audit --log "$LOG" --log-key "$KEY" --json || true)
check "after the update, offline and online reports agree" test "$OUT" = "$ONLINE_OUT"

echo "== reconcile"
# Release records as ledger-gate writes them (tools/gate/main.cc), one with
# the receipt the gate checked.
RECEIPT_JSON=$(json_string <receipt.txt)
{
  echo "{\"request_id\":\"demo-1\",\"accessor\":\"$ACCESSOR\",\"subject\":\"$ALICE\",\"time\":\"2026-01-01T00:00:00Z\",\"index\":3,\"categories\":[\"BALANCES\"],\"purpose\":\"CUSTOMER_SUPPORT\",\"access_time\":\"2026-01-01T00:00:00Z\",\"tree_size\":8}"
  echo "{\"request_id\":\"demo-3\",\"accessor\":\"$ACCESSOR\",\"subject\":\"$BOB\",\"time\":\"2026-01-01T00:00:00Z\",\"index\":5,\"categories\":[\"TRANSACTIONS\"],\"purpose\":\"CUSTOMER_SUPPORT\"}"
  echo "{\"request_id\":\"req-1\",\"accessor\":\"$ACCESSOR\",\"subject\":\"$ALICE\",\"time\":\"2026-01-01T00:00:00Z\",\"index\":$A1,\"categories\":[\"BALANCES\"],\"receipt\":$RECEIPT_JSON}"
} >releases.jsonl
run reconcile --log "$LOG" --log-key "$KEY" --releases releases.jsonl --holder "$HOLDER"
expect 0 "every release has its access in the log"
check "3 matched" contains "$OUT" "matched      3 releases"
check "the other logged accesses are listed as unreleased" contains "$OUT" "Unreleased accesses (logged, no release recorded; informational): 26"
cp releases.jsonl releases-bad.jsonl
echo "{\"request_id\":\"never-logged\",\"accessor\":\"$ACCESSOR\",\"subject\":\"$ALICE\",\"time\":\"2026-01-01T00:00:00Z\",\"index\":4,\"categories\":[\"BALANCES\"]}" >>releases-bad.jsonl
echo "{\"request_id\":\"demo-2\",\"accessor\":\"$ACCESSOR\",\"subject\":\"$BOB\",\"time\":\"2026-01-01T00:00:00Z\",\"categories\":[\"PAYMENT_SUPPORT\"]}" >>releases-bad.jsonl
run reconcile --log "$LOG" --log-key "$KEY" --releases releases-bad.jsonl --holder "$HOLDER" --json
expect 1 "a release without a logged access is a violation"
check "two releases without access" test "$(grep -o '"rule":"release without access"' <<<"$OUT" | wc -l)" = 2
check "the wrong subject is named" contains "$OUT" "the logged subject is $ALICE"
run reconcile --log mirror --log-key "$KEY" --releases releases.jsonl --holder "$HOLDER" --json
expect 0 "reconcile runs offline from the mirror"

echo "== witness quorum (ledger-witness cosigns the log's checkpoint)"
# start_witness NAME: runs a ledger-witness for this log in $WORK/NAME; sets
# W_URL to its base URL. Its verifier key is in $WORK/NAME/state/witness.vkey.
ORIGIN=$(head -n 1 mirror/checkpoint)
start_witness() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  printf '{"name": "%s.example/witness", "key": "witness.key", "logs": [{"origin": "%s", "key": "%s"}]}\n' \
    "$1" "$ORIGIN" "$(cat "$KEY_FILE")" >"$dir/witness.json"
  "$WITNESS" --config "$dir/witness.json" --state "$dir/state" --listen 127.0.0.1:0 --port-file "$dir/port" \
    >"$dir/out" 2>&1 &
  PIDS+=($!)
  W_URL="http://127.0.0.1:$(wait_port "$dir/port" "${PIDS[-1]}")"
}
start_witness w1
W1_URL="$W_URL"
start_witness w2
W1="@$WORK/w1/state/witness.vkey"
W2="@$WORK/w2/state/witness.vkey"
check "the witnesses wrote their verifier keys" test -s "$WORK/w1/state/witness.vkey" -a -s "$WORK/w2/state/witness.vkey"
curl -sS "$LOG/checkpoint" >cp-log.txt
# The witness's first checkpoint of a log: old 0, no proof.
{ printf 'old 0\n\n'; cat cp-log.txt; } >add-checkpoint.txt
HTTP=$(curl -sS -o cosig1.txt -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary @add-checkpoint.txt \
  "$W1_URL/add-checkpoint")
check "w1 cosigns the log's checkpoint (HTTP $HTTP)" test "$HTTP" = 200
check "the answer is w1's cosignature line" contains "$(cat cosig1.txt)" "— w1.example/witness "
{ cat cp-log.txt; printf '%s\n' "$(cat cosig1.txt)"; } >cp-witnessed.txt
run checkpoint --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --quorum 1
expect 0 "the cosigned checkpoint meets a quorum of 1 (w1)"
check "it lists w1 as cosigning" contains "$OUT" "cosigned      $(cat "$WORK/w1/state/witness.vkey")"
run checkpoint --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1"
expect 0 "--quorum defaults to every listed witness (here 1)"
run checkpoint --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --witness "$W2" --quorum 2
expect 1 "a quorum of 2 with w2, which did not cosign, fails"
check "it says 1 valid cosignature of 2 required, cosigned by w1" \
  contains "$OUT" "1 valid cosignature from distinct listed witnesses, 2 required (of 2 listed; cosigned by: w1.example/witness)"
check "it lists w2 as not cosigning" contains "$OUT" "not cosigned  $(cat "$WORK/w2/state/witness.vkey")"
run checkpoint --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --witness "$W2" --json
expect 1 "the default quorum (both) fails too (--json)"
check "--json lists the cosigning witness" \
  eval 'contains "$OUT" "\"valid\":1," && contains "$OUT" "\"cosigned\":[{\"witness\":\"$(cat "$WORK/w1/state/witness.vkey")\""'
run checkpoint --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --witness "$W2" --quorum 1
expect 0 "a quorum of 1 of the two is met"
run checkpoint --log-key "$KEY" --checkpoint cp-log.txt --witness "$W1"
expect 1 "the log's checkpoint without cosignatures fails the quorum"
run checkpoint --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --quorum 2
expect 2 "--quorum above the number of witnesses is a usage error"
run audit --log "$LOG" --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --json
expect 0 "an audit up to the cosigned checkpoint meets the quorum"
run audit --log "$LOG" --log-key "$KEY" --checkpoint cp-witnessed.txt --witness "$W1" --witness "$W2"
expect 1 "the audit refuses it without w2's cosignature"
# A receipt whose checkpoint carries the cosignature (the log has not grown,
# so its tlog-proof is against the cosigned checkpoint).
curl -sS "$LOG/v1/proof/tlog-proof?index=$A1" >receipt-log.txt
{ cat receipt-log.txt; printf '%s\n' "$(cat cosig1.txt)"; } >receipt-witnessed.txt
check "the receipt is against the cosigned checkpoint" contains "$(cat receipt-log.txt)" "$(cat cp-log.txt)"
run receipt --log-key "$KEY" --receipt receipt-witnessed.txt --accessor "$ACCESSOR" --witness "$W1" --quorum 1
expect 0 "ledger-verify receipt: the witnessed receipt is allowed"
run receipt --log-key "$KEY" --receipt receipt-witnessed.txt --witness "$W1" --witness "$W2" --quorum 2
expect 1 "ledger-verify receipt: refused below the quorum"
check "refused: witness quorum" contains "$OUT" "refused: witness quorum: "
RC=0; OUT=$("$LEDGERCTL" receipt check --log-key "$KEY_FILE" --receipt receipt-witnessed.txt --witness "$W1" --quorum 1 2>&1) || RC=$?
expect 0 "ledgerctl receipt check: the witnessed receipt is allowed"
RC=0; OUT=$("$LEDGERCTL" receipt check --log-key "$KEY_FILE" --receipt receipt-witnessed.txt --witness "$W1" --witness "$W2" 2>&1) || RC=$?
expect 1 "ledgerctl receipt check: refused below the quorum (default: both)"
check "it names the witness quorum" contains "$OUT" "refused: witness quorum: "
RC=0; OUT=$("$LEDGERCTL" receipt check --log-key "$KEY_FILE" --receipt receipt-witnessed.txt --witness "$W1" --quorum 2 2>&1) || RC=$?
expect 2 "ledgerctl receipt check: --quorum above the witnesses is a usage error"

echo "== usage errors exit 2"
run
expect 2 "no command"
run frobnicate
expect 2 "unknown command"
run audit --log "$LOG" --log-key "$KEY" --frob
expect 2 "unknown flag"
run audit --log-key "$KEY"
expect 2 "missing --log"
run audit --log "$LOG" --log-key "$KEY" --threads 0
expect 2 "--threads 0"
run checkpoint --log "$LOG" --log-key not-a-key
expect 2 "a malformed log key"
run audit --log "$WORK/no-such-dir" --log-key "$KEY"
expect 2 "a missing mirror directory"
run audit --log http://127.0.0.1:1 --log-key "$KEY"
expect 2 "an unreachable log is an I/O error"
run inclusion --log "$LOG" --log-key "$KEY" --index 1
expect 2 "inclusion without an entry"
run reconcile --log "$LOG" --log-key "$KEY" --releases "$WORK/none.jsonl" --holder "$HOLDER"
expect 2 "a missing release file"
run audit --help
expect 0 "--help exits 0"
check "--help documents the JSON" contains "$OUT" "--json"

echo "== a wrong log key exits 1"
run checkpoint --log "$LOG" --log-key "$OTHER_KEY"
expect 1 "checkpoint with another log's key"
run audit --log "$LOG" --log-key "$OTHER_KEY"
expect 1 "audit with another log's key"
run audit --log "$LOG" --log-key "$OTHER_KEY" --json
check "--json says not verified" contains "$OUT" '"verified":false'
run receipt --log-key "$OTHER_KEY" --receipt receipt.txt
expect 1 "receipt with another log's key"

lib_finish verify_test
