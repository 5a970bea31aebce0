#!/usr/bin/env bash
# ledger-verify subject end to end, as a customer runs it: ledgerd --demo
# logs accesses for alice and bob (and commits the subject index after
# every batch, --index-interval-ms 1); ledgerctl issues their subject tokens
# with the demo holder's VRF key; `ledger-verify subject` must verify each
# and print exactly their accesses (time, accessor, actor, purpose,
# categories, disclosed), a customer with no accesses verifies with none
# (non-membership), paging gives the same list, tokens for several customers
# come from a file; a bad token, another holder's key, another log's key
# fail with exit 1 and malformed input with exit 2. A second ledgerd whose
# commitments lag (--index-interval-ms 3600000) shows the accesses as
# pending. Finally the audit checks every commitment of the log, full and
# incremental.
#
# Needs: bash, curl, python3. Binaries from the environment: LEDGERD,
# LEDGERCTL, VERIFY (ctest sets them; see tests/CMakeLists.txt).
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${LEDGERCTL:?set LEDGERCTL to the ledgerctl binary}"
: "${VERIFY:?set VERIFY to the ledger-verify binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')

HOLDER=demo-bank
ACCESSOR=chat-banking
PERIOD=$(date -u +%Y-%m)
OTHER_KEY='example.com/ledger/test+25820e75+Ab3lzRZCNxpgpYFc/Ojlt9gggVCneVxW22xikMi8o8ci'

lib_setup subject_verify

# run ARGS...: runs ledger-verify (lib_run).
run() { lib_run "$VERIFY" "$@"; }
expect() {
  if [ "$RC" = "$1" ]; then pass "$2"; else fail "$2 (exit $RC, want $1)" "$(printf '%s\n%s' "$OUT" "$ERR" | head -c 1500)"; fi
}
# pycheck NAME PYTHON-EXPR-STATEMENTS: runs Python with j = the last JSON output.
pycheck() {
  local name="$1" code="$2"
  if "$PY" -c "
import json, sys
j = json.load(open(sys.argv[1]))
$code" "$WORK/out" 2>"$WORK/pyerr"; then pass "$name"; else fail "$name" "$(head -c 1500 "$WORK/pyerr")"; fi
}

# start_demo DIR INTERVAL_MS: ledgerd --demo on DIR; sets LOG.
start_demo() {
  "$LEDGERD" --demo --data "$1" --listen 127.0.0.1:0 --port-file "$1.port" --batch-wait-us 0 \
    --index-interval-ms "$2" >"$1.out" 2>&1 &
  PIDS+=($!)
  LOG="http://127.0.0.1:$(wait_port "$1.port" "${PIDS[-1]}")"
}

token() { "$LEDGERCTL" subject-token --holder "$HOLDER" --vrf-key "$1/demo/holder-vrf.key" --customer "$2" --period "$PERIOD"; }

# add_access DATA LOG CUSTOMER PURPOSE CATEGORIES: one access signed by the demo accessor.
add_access() {
  local tag
  tag=$("$LEDGERCTL" subject-token --holder "$HOLDER" --vrf-key "$1/demo/holder-vrf.key" --customer "$3" --period "$PERIOD" --tag-only)
  "$LEDGERCTL" access sign --key "$1/demo/accessor.key" --accessor "$ACCESSOR" --holder "$HOLDER" --subject "$tag" \
    --purpose "$4" --categories "$5" --consent "consent-e2e" --actor "e2e-agent" --detail "added by the test" \
    >"$WORK/access.jsonl"
  "$LEDGERCTL" submit --log "$2" --log-key "$1/log.vkey" "$WORK/access.jsonl" >/dev/null
}

cd "$WORK"
umask 077

echo "== ledgerd --demo, committing the subject index after every batch"
DATA="$WORK/data"
start_demo "$DATA" 1
KEY="@$DATA/log.vkey"
HKEY="@$DATA/demo/holder-vrf.key"
ALICE=$(token "$DATA" alice)
BOB=$(token "$DATA" bob)
CAROL=$(token "$DATA" carol)
# The demo's last access is followed by its commitment (same batch).
for _ in $(seq 1 50); do
  run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE" --json
  [ "$RC" = 0 ] && "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["tokens"][0]["count"] == 3 else 1)' "$WORK/out" && break
  sleep 0.1
done

echo "== alice: three accesses, all disclosed, proven complete"
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE" --json
expect 0 "alice's token verifies (exit 0)"
pycheck "alice: the demo's three accesses, in order, with who, purpose, categories, disclosed" '
t = j["tokens"][0]
assert j["verified"] is True and t["verified"] is True, t
assert t["holder"] == "demo-bank" and t["customer"] == "alice", t
assert t["commitment"] is not None and t["commitment"]["size"] == t["commitment"]["index"], t["commitment"]
assert t["proof"]["end"] == "member", t["proof"]
rows = [(a["accessor"], a["actor"], a["purpose"], a["categories"], a["disclosed"], a["detail"]) for a in t["accesses"]]
want = [("chat-banking", "demo-agent", "CUSTOMER_SUPPORT", ["BALANCES"], True, "customer asked for her balance in chat"),
        ("chat-banking", "demo-agent", "PAYMENT_INITIATION", ["ACCOUNT_BASIC", "PAYMENT_SUPPORT"], True, "pay rent, initiated by the customer"),
        ("chat-banking", "demo-agent", "CUSTOMER_SUPPORT", ["ACCOUNT_BASIC"], True, "address change request")]
assert rows == want, rows
assert [a["index"] for a in t["accesses"]] == sorted(a["index"] for a in t["accesses"])
assert all(a["policy_version"] == 1 and a["time"].endswith("Z") for a in t["accesses"]), t["accesses"]
assert t["count"] == 3 and t["pending"] == [] and t["undisclosed"] == 0 and t["failures"] == []'
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE"
expect 0 "alice, human report"
check "the human report lists the rows with disclosed ✓ and says VERIFIED" \
  eval 'contains "$OUT" "Accesses: 3" && contains "$OUT" "disclosed ✓" && contains "$OUT" "CUSTOMER_SUPPORT: answering the customer" && contains "$OUT" "who         chat-banking (actor demo-agent)" && contains "$OUT" "VERIFIED: 3 accesses"'

echo "== bob, carol (no accesses), several tokens from a file"
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$BOB" --json
expect 0 "bob's token verifies"
pycheck "bob: two accesses (CUSTOMER_SUPPORT, FRAUD_PREVENTION)" '
t = j["tokens"][0]
assert [a["purpose"] for a in t["accesses"]] == ["CUSTOMER_SUPPORT", "FRAUD_PREVENTION"], t["accesses"]'
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$CAROL" --json
expect 0 "carol (no accesses) verifies"
pycheck "carol: zero accesses, proven by non-membership" '
t = j["tokens"][0]
assert t["count"] == 0 and t["accesses"] == [] and t["pending"] == [] and t["verified"], t
assert t["proof"]["end"] in ("empty", "leaf"), t["proof"]'
printf '# tokens\n%s\n\n%s\n%s\n' "$ALICE" "$BOB" "$CAROL" >"$WORK/tokens.txt"
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token-file "$WORK/tokens.txt" --json
expect 0 "three tokens from a file verify"
pycheck "... one result per token, in order" '
assert [t["customer"] for t in j["tokens"]] == ["alice", "bob", "carol"], j
assert [t["count"] for t in j["tokens"]] == [3, 2, 0], j'

echo "== more accesses; paging"
for i in 1 2 3 4 5; do add_access "$DATA" "$LOG" alice CUSTOMER_SUPPORT BALANCES; done
add_access "$DATA" "$LOG" bob FRAUD_PREVENTION TRANSACTIONS
for _ in $(seq 1 50); do
  run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE" --json
  "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["tokens"][0]["count"] == 8 else 1)' "$WORK/out" && break
  sleep 0.1
done
cp "$WORK/out" "$WORK/alice-one-page.json"
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE" --json --page-size 3
expect 0 "alice with 3 entries per page verifies"
pycheck "... eight accesses over three pages, the same as one page" '
one = json.load(open("'"$WORK"'/alice-one-page.json"))["tokens"][0]
t = j["tokens"][0]
assert t["count"] == 8 and t["pages"] == 3 and one["pages"] == 1, (t["count"], t["pages"], one["pages"])
assert [a["index"] for a in t["accesses"]] == [a["index"] for a in one["accesses"]]
assert [a["actor"] for a in t["accesses"]][3:] == ["e2e-agent"] * 5'

echo "== bad tokens and keys"
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "not-a-token"
expect 2 "a malformed token is a usage error (exit 2)"
# Alice's token with bob's tag: well formed, but the proof gives another tag.
BAD=$(cut -d: -f1-4 <<<"$ALICE"):$(cut -d: -f5 <<<"$BOB"):$(cut -d: -f6 <<<"$ALICE")
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$BAD" --json
expect 1 "a token whose tag is not its proof's output fails (exit 1)"
pycheck "... and nothing is looked up" 'assert j["verified"] is False and "error" in j["tokens"][0], j'
"$LEDGERCTL" keygen --type vrf --out "$WORK/other-vrf.key" >/dev/null
run subject --log "$LOG" --log-key "$KEY" --holder-key "@$WORK/other-vrf.key" --token "$ALICE"
expect 1 "another holder's VRF key fails (exit 1)"
check "... saying the token does not verify" contains "$OUT" "DOES NOT VERIFY"
run subject --log "$LOG" --log-key "$KEY" --holder-key "AAAA" --token "$ALICE"
expect 2 "a malformed holder key is a usage error (exit 2)"
run subject --log "$LOG" --log-key "$OTHER_KEY" --holder-key "$HKEY" --token "$ALICE" --json
expect 1 "another log's key: the checkpoint does not verify (exit 1)"
pycheck "... reported as a failure" 'assert any("checkpoint does not verify" in f for f in j["tokens"][0]["failures"]), j'
run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY"
expect 2 "no token is a usage error"
run subject --log "$WORK" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE"
expect 2 "a mirror directory has no subject index (exit 2)"

echo "== commitments that lag: accesses shown as pending"
LOG1=$LOG
DATA2="$WORK/data2"
start_demo "$DATA2" 3600000
LOG2=$LOG
run subject --log "$LOG2" --log-key "@$DATA2/log.vkey" --holder-key "@$DATA2/demo/holder-vrf.key" --token "$(token "$DATA2" alice)" --json
expect 0 "with no commitment yet, alice's token verifies"
pycheck "... no access proven complete, three pending" '
t = j["tokens"][0]
assert t["commitment"] is None and t["count"] == 0 and len(t["pending"]) == 3, t
assert all(a["disclosed"] for a in t["pending"])'
run subject --log "$LOG2" --log-key "@$DATA2/log.vkey" --holder-key "@$DATA2/demo/holder-vrf.key" --token "$(token "$DATA2" alice)"
check "the human report marks them pending" eval 'contains "$OUT" "Pending: 3" && contains "$OUT" "(pending)" && contains "$OUT" "commitment  none yet"'
kill "${PIDS[-1]}" 2>/dev/null || true
LOG=$LOG1

echo "== the audit checks every commitment"
run audit --log "$LOG" --log-key "$KEY" --json
expect 0 "the audit of the demo log with commitments verifies"
pycheck "... and counts its commitments; the rebuilt index has alice, bob" '
s = j["subject_index"]
assert s["commitments"] >= 2 and s["subjects"] == 2 and s["accesses"] == 11, s
assert j["entries_by_kind"]["index"] == s["commitments"], j["entries_by_kind"]'
cp "$WORK/out" "$WORK/full1.json"
run audit --log "$LOG" --log-key "$KEY" --json --state "$WORK/audit.state"
expect 0 "incremental audit (first run)"
add_access "$DATA" "$LOG" carol CUSTOMER_SUPPORT BALANCES
add_access "$DATA" "$LOG" alice FRAUD_PREVENTION TRANSACTIONS
# Wait for the commitment that covers them (so both audits see one log).
for _ in $(seq 1 100); do
  run subject --log "$LOG" --log-key "$KEY" --holder-key "$HKEY" --token "$ALICE" --token "$CAROL" --json
  "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["tokens"]; sys.exit(0 if t[0]["count"] == 9 and t[1]["count"] == 1 else 1)' "$WORK/out" && break
  sleep 0.1
done
run audit --log "$LOG" --log-key "$KEY" --json --state "$WORK/audit.state"
expect 0 "incremental audit after more accesses and commitments"
cp "$WORK/out" "$WORK/inc.json"
run audit --log "$LOG" --log-key "$KEY" --json
cp "$WORK/out" "$WORK/full2.json"
check "the incremental report equals the full one (subject index included)" cmp -s "$WORK/inc.json" "$WORK/full2.json"
pycheck "... with carol in the index" 'assert j["subject_index"]["subjects"] == 3, j["subject_index"]'

lib_finish subject_verify
