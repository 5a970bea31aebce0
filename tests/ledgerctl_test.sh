#!/usr/bin/env bash
# End-to-end test of ledgerctl against a real ledgerd in ledger mode: keys,
# holders file, authorisation, policy, single and batched accesses with
# receipts, the gate's receipt check, refusals (undisclosed use, revoked
# key, reused request id), idempotent resubmission, subject tokens, --help
# and usage errors.
#
#   LEDGERD=build/server/ledgerd LEDGERCTL=build/tools/ledgerctl/ledgerctl bash tests/ledgerctl_test.sh
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${LEDGERCTL:?set LEDGERCTL to the ledgerctl binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v curl >/dev/null || { echo "ledgerctl_test: curl is required" >&2; exit 1; }

lib_setup ledgerctl_test
lib_on_exit() { stop "$LEDGERD_PID"; }

# expect DESC STATUS [REGEX]: the last run exited with STATUS and, if given,
# its stdout matches the extended REGEX.
expect() {
  local desc=$1 want=$2 pattern=${3-}
  if [[ $RC -eq $want ]] && { [[ -z $pattern ]] || grep -qE -- "$pattern" <<<"$OUT"; }; then
    pass "$desc"
  else
    failed "$desc (want exit $want${pattern:+, stdout matching /$pattern/})"
  fi
}

# expect_err DESC STATUS REGEX: as expect, matching stderr instead.
expect_err() {
  local desc=$1 want=$2 pattern=$3
  if [[ $RC -eq $want ]] && grep -qE -- "$pattern" <<<"$ERR"; then
    pass "$desc"
  else
    failed "$desc (want exit $want, stderr matching /$pattern/)"
  fi
}

ctl() { "$LEDGERCTL" "$@"; }

# --- keys and holders file ---------------------------------------------------

run ctl keygen --type ed25519 --out "$T/holder.key"
expect "keygen ed25519 prints a base64url public key" 0 '^[A-Za-z0-9_-]{43}$'
HOLDER_PUB=$OUT
check "key file has mode 0600" test "$(stat -c %a "$T/holder.key")" = 600
SEED=$(sed -E 's/.*"seed":"([^"]+)".*/\1/' "$T/holder.key")
check "keygen does not print the seed" test -n "$SEED" -a "${OUT/$SEED/}" = "$OUT"
run ctl keygen --type vrf --out "$T/holder-vrf.key"
expect "keygen vrf" 0 '^[A-Za-z0-9_-]{43}$'
HOLDER_VRF_PUB=$OUT
run ctl keygen --type ed25519 --out "$T/accessor.key"
expect "keygen accessor key" 0 '^[A-Za-z0-9_-]{43}$'
ACCESSOR_PUB=$OUT
run ctl keygen --type ed25519 --out "$T/accessor2.key"
ACCESSOR2_PUB=$OUT
run ctl keygen --type vrf --out "$T/other-vrf.key"
OTHER_VRF_PUB=$OUT
run ctl keygen --type ed25519 --out "$T/holder.key"
expect_err "keygen refuses to overwrite a key" 1 'already exists'

run ctl holder-config --name bank --signing-key "$T/holder.key" --vrf-key "$T/holder-vrf.key"
expect "holder-config without --file prints the holders JSON" 0 "\"vrf_key\": \"$HOLDER_VRF_PUB\""
run ctl holder-config --name bank --signing-key "$T/holder.key" --vrf-key "$T/holder-vrf.key" --file "$T/holders.json"
expect "holder-config creates the holders file" 0 'added'
run ctl holder-config --name bank --signing-key "$HOLDER_PUB" --vrf-key "$HOLDER_VRF_PUB" --file "$T/holders.json"
expect "holder-config replaces a holder (public keys accepted)" 0 'updated'
check "holders file lists the holder once" test "$(grep -c '"name": "bank"' "$T/holders.json")" = 1
run ctl holder-config --name Bank --signing-key "$T/holder.key" --vrf-key "$T/holder-vrf.key"
expect_err "holder-config rejects an invalid name" 2 'holder'

# --- ledgerd -----------------------------------------------------------------

# No index commitments (SPEC §14) during the test: it checks exact indexes.
"$LEDGERD" --data "$T/data" --entries ledger --holders "$T/holders.json" --listen 127.0.0.1:0 --max-skew 3600 \
  --index-interval-ms 3600000 \
  --port-file "$T/port" >"$T/ledgerd.log" 2>&1 &
LEDGERD_PID=$!
for _ in $(seq 1 100); do
  [[ -s $T/port ]] && break
  sleep 0.1
done
if [[ ! -s $T/port ]]; then
  echo "ledgerd did not start:" >&2
  cat "$T/ledgerd.log" >&2
  exit 1
fi
URL="http://127.0.0.1:$(cat "$T/port")"
VKEY="$T/data/log.vkey"
check "ledgerd registered the holder" grep -q 'holder bank registered' "$T/ledgerd.log"

# --- authorisation and policy ------------------------------------------------

run ctl authorize --holder bank --holder-key "$T/holder.key" --accessor chat --key-file "$T/accessor.key" \
  --key "$ACCESSOR2_PUB" --log "$URL" --log-key "$VKEY"
expect "authorize submits and prints the entry index" 0 '^entry 1$'
run ctl authorize --holder bank --holder-key "$T/holder.key" --accessor chat --key "$ACCESSOR_PUB"
expect "authorize without --log prints the entry line" 0 '^\{"payload":"[^"]+","payloadType":"application/vnd.access-ledger.accessor.v1\+json"'
run ctl authorize --holder bank --holder-key "$T/accessor.key" --accessor chat --key "$ACCESSOR_PUB" --log "$URL"
expect "authorize signed by a key other than the holder's is refused" 1 '^refused: unauthorised key'

cat >"$T/policy.json" <<'EOF'
{"version": 1,
 "purposes": [{"purpose": "CUSTOMER_SUPPORT", "categories": ["ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"], "retention_days": 90},
              {"purpose": "FRAUD_PREVENTION", "categories": ["TRANSACTIONS"]}]}
EOF
run ctl policy publish --key "$T/accessor.key" --holder bank --accessor chat --file "$T/policy.json" --log "$URL"
expect "policy publish submits the policy" 0 '^entry 2$'
echo '{"version": 1, "purposes": [{"purpose": "LEGAL_COMPLIANCE", "categories": ["STATEMENTS"]}]}' >"$T/policy-v1b.json"
run ctl policy publish --key "$T/accessor.key" --holder bank --accessor chat --file "$T/policy-v1b.json" --log "$URL"
expect "a policy version that does not increase is refused" 1 '^refused: policy version'
cat >"$T/bad-policy.json" <<'EOF'
{"version": 2, "purposes": [{"purpose": "TARGETED_ADVERTISING", "categories": ["TRANSACTIONS"]}]}
EOF
run ctl policy publish --key "$T/accessor.key" --holder bank --accessor chat --file "$T/bad-policy.json" --log "$URL"
expect_err "a policy disclosing a prohibited purpose is rejected before signing" 1 'cannot be disclosed'
echo '{"version": 2, "purposes": [], "extra": 1}' >"$T/bad-policy2.json"
run ctl policy publish --key "$T/accessor.key" --holder bank --accessor chat --file "$T/bad-policy2.json"
expect_err "a policy file with an unknown field is rejected" 1 'unknown field'

# --- subject tokens ----------------------------------------------------------

PERIOD=$(date -u +%Y-%m)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
run ctl subject-token --holder bank --vrf-key "$T/holder-vrf.key" --customer alice --period "$PERIOD"
expect "subject-token issues a token" 0 "^ledger-subject-v1:bank:$PERIOD:YWxpY2U:[A-Za-z0-9_-]{43}:[A-Za-z0-9_-]{107}$"
TOKEN=$OUT
run ctl subject-token --holder bank --vrf-key "$T/holder-vrf.key" --customer alice --period "$PERIOD" --tag-only
expect "subject-token --tag-only prints the token's tag" 0 '^[A-Za-z0-9_-]{43}$'
TAG=$OUT
check "the tag is the token's fifth field" test "$(cut -d: -f5 <<<"$TOKEN")" = "$TAG"
run ctl subject-token verify --token "$TOKEN" --holder-vrf-key "$HOLDER_VRF_PUB"
expect "subject-token verify accepts the token" 0 "^valid: holder bank, period $PERIOD, tag $TAG$"
run ctl subject-token verify --token "$TOKEN" --holder-vrf-key "$HOLDER_VRF_PUB" --holder other
expect "subject-token verify checks --holder" 1 '^invalid:'
# Tamper with the proof: flip its first character.
PROOF=$(cut -d: -f6 <<<"$TOKEN")
FIRST=${PROOF:0:1}
if [[ $FIRST == A ]]; then NEWFIRST=B; else NEWFIRST=A; fi
TAMPERED="$(cut -d: -f1-5 <<<"$TOKEN"):${NEWFIRST}${PROOF:1}"
run ctl subject-token verify --token "$TAMPERED" --holder-vrf-key "$HOLDER_VRF_PUB"
expect "a token with a tampered proof is invalid" 1 '^invalid:'
OTHER_TAG=$(ctl subject-token --holder bank --vrf-key "$T/holder-vrf.key" --customer bob --period "$PERIOD" --tag-only)
run ctl subject-token verify --token "$(cut -d: -f1-4 <<<"$TOKEN"):$OTHER_TAG:$PROOF" --holder-vrf-key "$HOLDER_VRF_PUB"
expect "a token with another customer's tag is invalid" 1 '^invalid:.*tag'
run ctl subject-token verify --token "${TOKEN/:YWxpY2U:/:Ym9i:}" --holder-vrf-key "$HOLDER_VRF_PUB"
expect "a token with a changed customer id is invalid" 1 '^invalid:'
run ctl subject-token verify --token "$TOKEN" --holder-vrf-key "$OTHER_VRF_PUB"
expect "a token checked with another holder's VRF key is invalid" 1 '^invalid:'
run ctl subject-token verify --token "${TOKEN}x" --holder-vrf-key "$HOLDER_VRF_PUB"
expect "a malformed token is invalid" 1 '^invalid: subject token'
run ctl subject-token --holder bank --vrf-key "$T/holder-vrf.key" --customer alice --period 2026-13
expect_err "subject-token rejects a bad period" 2 'period'

# --- one access, receipts and the gate --------------------------------------

sign_access() {  # sign_access KEY REQUEST_ID PURPOSE CATEGORIES [SUBJECT] [TIME]
  ctl access sign --key "$1" --accessor chat --holder bank --subject "${5:-$TAG}" --purpose "$3" \
    --categories "$4" --consent "consent-$2" --request-id "$2" --time "${6:-$NOW}" --actor agent-7 --detail "test $2"
}

run sign_access "$T/accessor.key" req-1 CUSTOMER_SUPPORT BALANCES
expect "access sign prints one entry line" 0 '^\{"payload":"[^"]+","payloadType":"application/vnd.access-ledger.access.v1\+json","signatures":\[\{"keyid":"'
echo "$OUT" >"$T/e1.jsonl"
check "the entry is a single line" test "$(wc -l <"$T/e1.jsonl")" = 1
run ctl submit --log "$URL" --log-key "$VKEY" --receipts "$T/r1.jsonl" "$T/e1.jsonl"
expect "submit logs one access" 0 '^entry 3$'
check "submit --receipts wrote one receipt" test "$(wc -l <"$T/r1.jsonl")" = 1
check "the receipt line has index, leaf_hash and tlog_proof" grep -qE '^\{"index":3,"leaf_hash":"[^"]+","tlog_proof":"c2sp.org/tlog-proof@v1\\nextra ' "$T/r1.jsonl"

run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$VKEY" --accessor chat --holder bank --subject "$TAG" \
  --purpose CUSTOMER_SUPPORT --categories BALANCES
expect "receipt check allows a matching request (JSONL receipt)" 0 '^allowed: entry 3 '
run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$(cat "$VKEY")" --json
expect "receipt check --json (verifier key given as a string)" 0 '^\{"allowed":true,"reason":"allowed","index":3,'
run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$VKEY" --purpose FRAUD_PREVENTION
expect "receipt check refuses another purpose" 1 '^refused: purpose mismatch'
run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$VKEY" --categories BALANCES,TRANSACTIONS
expect "receipt check refuses a category that was not logged" 1 '^refused: category not logged'
run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$VKEY" --subject "$OTHER_TAG"
expect "receipt check refuses another subject" 1 '^refused: subject mismatch'
run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$VKEY" --accessor someone-else
expect "receipt check refuses another accessor" 1 '^refused: accessor mismatch'

curl -sf "$URL/v1/proof/tlog-proof?index=3" >"$T/r3.tlog-proof"
run ctl receipt check --receipt "$T/r3.tlog-proof" --log-key "$VKEY" --holder bank --subject "$TAG"
expect "receipt check accepts a served .tlog-proof text" 0 '^allowed: entry 3 '
run ctl receipt check --receipt "$T/r3.tlog-proof" --log-key "$VKEY" --entry "$T/e1.jsonl"
expect "receipt check with --entry equal to the extra line" 0 '^allowed:'
sed 's/^index 3$/index 2/' "$T/r3.tlog-proof" >"$T/r3-tampered.tlog-proof"
run ctl receipt check --receipt "$T/r3-tampered.tlog-proof" --log-key "$VKEY"
expect "receipt check refuses a receipt with a changed index" 1 '^refused: not included'
run ctl receipt check --receipt - --log-key "$VKEY" < <(curl -sf "$URL/v1/proof/tlog-proof?index=1")
expect "receipt check refuses an entry that is not an access" 1 '^refused: not an access'
# A receipt checked with the wrong log key (a fresh ledgerd key elsewhere).
"$LEDGERD" --data "$T/other" --listen 127.0.0.1:0 --port-file "$T/other-port" >"$T/other.log" 2>&1 &
OTHER_PID=$!
for _ in $(seq 1 100); do [[ -s $T/other-port ]] && break; sleep 0.1; done
kill "$OTHER_PID" 2>/dev/null || true
wait "$OTHER_PID" 2>/dev/null || true
run ctl receipt check --receipt "$T/r1.jsonl" --log-key "$T/other/log.vkey"
expect "receipt check refuses a checkpoint not signed by the given log key" 1 '^refused: bad checkpoint'

# --- a batch of 50 ----------------------------------------------------------

: >"$T/batch.jsonl"
for i in $(seq 1 50); do
  customer_tag=$(ctl subject-token --holder bank --vrf-key "$T/holder-vrf.key" --customer "customer-$i" --period "$PERIOD" --tag-only)
  if ((i % 2)); then purpose=CUSTOMER_SUPPORT cats=ACCOUNT_BASIC,TRANSACTIONS; else purpose=FRAUD_PREVENTION cats=TRANSACTIONS; fi
  sign_access "$T/accessor.key" "batch-$i" "$purpose" "$cats" "$customer_tag" >>"$T/batch.jsonl"
  if ((i % 10 == 0)); then echo >>"$T/batch.jsonl"; fi  # blank lines are ignored
done
run ctl submit --log "$URL" --batch 20 --receipts "$T/batch-receipts.jsonl" "$T/batch.jsonl"
expect "submit logs a batch of 50 (in batches of 20)" 0
check "submit printed 50 entry lines" test "$(grep -cE '^entry [0-9]+$' <<<"$OUT")" = 50
check "the 50 indexes are distinct and in order" test "$(awk '{print $2}' <<<"$OUT" | tr '\n' ' ')" = "$(seq -s ' ' 4 53) "
check "submit wrote 50 receipts" test "$(wc -l <"$T/batch-receipts.jsonl")" = 50
allowed=0
while IFS= read -r line; do
  printf '%s\n' "$line" >"$T/one-receipt.json"
  if ctl receipt check --receipt "$T/one-receipt.json" --log-key "$VKEY" --accessor chat --holder bank \
    --categories TRANSACTIONS >/dev/null; then
    allowed=$((allowed + 1))
  fi
done <"$T/batch-receipts.jsonl"
check "all 50 batch receipts pass the gate's check" test "$allowed" = 50

# --- refusals ---------------------------------------------------------------

advertise() { sign_access "$T/accessor.key" ad-1 TARGETED_ADVERTISING TRANSACTIONS | ctl submit --log "$URL" -; }
run advertise
expect "an undisclosed purpose is refused" 1 '^refused: undisclosed use'
check "the refusal is summarised on stderr" grep -q '1 of 1 entries refused' <<<"$ERR"
sign_access "$T/accessor.key" fraud-1 FRAUD_PREVENTION BALANCES >"$T/undisclosed-cat.jsonl"
run ctl submit --log "$URL" "$T/undisclosed-cat.jsonl"
expect "an undisclosed category is refused" 1 '^refused: undisclosed use: category BALANCES'

{
  sign_access "$T/accessor.key" mixed-1 CUSTOMER_SUPPORT BALANCES
  sign_access "$T/accessor.key" mixed-2 SALE_OF_DATA BALANCES
  echo 'not an entry'
  sign_access "$T/accessor.key" mixed-3 FRAUD_PREVENTION TRANSACTIONS
} >"$T/mixed.jsonl"
run ctl submit --log "$URL" --receipts "$T/mixed-receipts.jsonl" "$T/mixed.jsonl"
expect "a mixed batch is answered entry by entry" 1
line() { sed -n "${1}p" <<<"$OUT"; }
check "mixed batch: output lines follow the input" \
  test "$(line 1)|$(line 2 | cut -c1-24)|$(line 3 | grep -o 'not sent')|$(line 4)|$(line 5)" = \
  "entry 54|refused: undisclosed use|not sent|entry 55|"
check "mixed batch: receipts only for logged entries" test "$(wc -l <"$T/mixed-receipts.jsonl")" = 2

sign_access "$T/accessor.key" req-1 CUSTOMER_SUPPORT TRANSACTIONS >"$T/reuse.jsonl"
run ctl submit --log "$URL" "$T/reuse.jsonl"
expect "a reused request id with a different payload is refused" 1 '^refused: request id reused'
HTTP=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"entries\": [\"$(tr -d '\n' <"$T/reuse.jsonl" | base64 -w0)\"]}" "$URL/v1/entries")
check "the log answers a reused request id with 409" test "$HTTP" = 409

run ctl submit --log "$URL" --receipts "$T/again.jsonl" "$T/e1.jsonl"
expect "the same entry again gets the same index" 0 '^entry 3$'
check "the resubmission's receipt verifies at the gate" \
  ctl receipt check --receipt "$T/again.jsonl" --log-key "$VKEY" --subject "$TAG"

# The same access signed with the accessor's second key is a retry of req-1.
sign_access "$T/accessor2.key" req-1 CUSTOMER_SUPPORT BALANCES >"$T/e1-key2.jsonl"
check "the second key's entry differs from the first's" bash -c "! cmp -s '$T/e1.jsonl' '$T/e1-key2.jsonl'"
run ctl submit --log "$URL" --log-key "$VKEY" --receipts "$T/retry.jsonl" "$T/e1-key2.jsonl"
expect "a retry with the same request id and payload gets the original index" 0 '^entry 3$'
check "the retry's receipt carries the logged entry and verifies" \
  ctl receipt check --receipt "$T/retry.jsonl" --log-key "$VKEY" --entry "$T/e1.jsonl"

run ctl revoke --holder bank --holder-key "$T/holder.key" --accessor chat --key-file "$T/accessor.key" --log "$URL"
expect "revoke submits the revocation" 0 '^entry [0-9]+$'
sign_access "$T/accessor.key" after-revoke CUSTOMER_SUPPORT BALANCES >"$T/after-revoke.jsonl"
run ctl submit --log "$URL" "$T/after-revoke.jsonl"
expect "an access signed by a revoked key is refused" 1 '^refused: revoked key'
run ctl authorize --holder bank --holder-key "$T/holder.key" --accessor chat --key "$ACCESSOR_PUB" --log "$URL"
expect "a revoked key cannot be authorised again" 1 '^refused: revoked key'
sign_access "$T/accessor2.key" key2-1 CUSTOMER_SUPPORT BALANCES >"$T/key2.jsonl"
run ctl submit --log "$URL" "$T/key2.jsonl"
expect "the accessor's other key still works" 0 '^entry [0-9]+$'

run ctl submit --log "http://127.0.0.1:1" "$T/key2.jsonl"
expect_err "submit to an unreachable log fails clearly" 1 'cannot reach the log'

# --- help and usage errors ---------------------------------------------------

run ctl --help
expect "ledgerctl --help" 0 'Usage: ledgerctl'
for c in keygen holder-config authorize revoke "policy publish" "access sign" submit subject-token \
  "subject-token verify" "receipt check"; do
  if ! grep -qF "  $c " <<<"$OUT"; then
    failed "ledgerctl --help lists $c"
  else
    pass "ledgerctl --help lists $c"
  fi
done
for c in keygen holder-config authorize revoke "policy publish" "access sign" submit subject-token \
  "subject-token verify" "receipt check" policy access receipt; do
  # shellcheck disable=SC2086
  run ctl $c --help
  expect "ledgerctl $c --help" 0 '^Usage: ledgerctl'
done

for c in keygen holder-config authorize revoke "policy publish" "access sign" submit subject-token \
  "subject-token verify" "receipt check"; do
  # shellcheck disable=SC2086
  run ctl $c --no-such-flag x
  expect_err "ledgerctl $c rejects an unknown flag" 2 'unknown flag --no-such-flag'
  # shellcheck disable=SC2086
  run ctl $c
  expect_err "ledgerctl $c without its required flags" 2 'missing'
done
run ctl
expect_err "ledgerctl without a command" 2 'Usage'
run ctl frobnicate
expect_err "an unknown command" 2 'unknown command'
run ctl policy
expect_err "a command group without its subcommand" 2 'missing subcommand'
run ctl keygen --type rsa --out "$T/rsa.key"
expect_err "keygen --type rsa" 2 'ed25519 or vrf'
run ctl submit --log "$URL" --batch 0 "$T/e1.jsonl"
expect_err "submit --batch 0" 2 '--batch'
run ctl submit --log "$URL" --batch 1001 "$T/e1.jsonl"
expect_err "submit --batch 1001" 2 '--batch'
run ctl submit --log "$URL" "$T/e1.jsonl" "$T/e1.jsonl"
expect_err "submit with two inputs" 2 'unexpected argument'
run ctl submit --log "not a url" "$T/e1.jsonl"
expect_err "submit with a malformed --log" 2 '--log'
run ctl access sign --key "$T/accessor2.key" --accessor chat --holder bank --subject "$TAG" --purpose NOPE \
  --categories BALANCES --consent c
expect_err "access sign with an unknown purpose" 2 'unknown purpose'
run ctl access sign --key "$T/accessor2.key" --accessor chat --holder bank --subject "$TAG" --purpose CUSTOMER_SUPPORT \
  --categories BALANCES,NOPE --consent c
expect_err "access sign with an unknown category" 2 'unknown data category'
run ctl access sign --key "$T/accessor2.key" --accessor chat --holder bank --subject short --purpose CUSTOMER_SUPPORT \
  --categories BALANCES --consent c
expect_err "access sign with a malformed subject" 2 '--subject'
run ctl access sign --key "$T/accessor2.key" --accessor chat --holder bank --subject "$TAG" --purpose CUSTOMER_SUPPORT \
  --categories BALANCES --consent c --time yesterday
expect_err "access sign with a malformed time" 2 '--time'
run ctl access sign --key "$T/accessor2.key" --accessor chat --accessor chat --holder bank --subject "$TAG" \
  --purpose CUSTOMER_SUPPORT --categories BALANCES --consent c
expect_err "a flag given twice" 2 'given twice'
run ctl authorize --holder bank --holder-key "$T/holder.key" --accessor chat
expect_err "authorize without keys" 2 '--key'
run ctl authorize --holder bank --holder-key "$T/holder.key" --accessor chat --key not-a-key
expect_err "authorize with a malformed key" 2 '--key'
run ctl receipt check --receipt "$T/r1.jsonl" --log-key not-a-key
expect_err "receipt check with a malformed --log-key" 2 '--log-key'
chmod 644 "$T/accessor2.key"
run ctl access sign --key "$T/accessor2.key" --accessor chat --holder bank --subject "$TAG" --purpose CUSTOMER_SUPPORT \
  --categories BALANCES --consent c
expect_err "a key file readable by others is refused" 1 'chmod 600'

lib_finish ledgerctl_test
