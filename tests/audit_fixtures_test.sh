#!/usr/bin/env bash
# Adversarial audit test: ledger-fixture writes logs a dishonest operator
# could produce by writing the store directly (undisclosed uses, revoked or
# unauthorised keys, reused request ids, tampered entries, backdated
# accesses, lying checkpoints and mirrors, forks); ledgerd serves each one
# (--entries opaque: it re-validates nothing), and `ledger-verify audit
# --json` must find exactly what the fixture planted, at the right index,
# with evidence anyone can re-check. This script re-checks the evidence
# itself, independently of the verifier: the checkpoint's Ed25519 signature,
# the RFC 9162 inclusion proof of every entry named, the entry bytes against
# ledgerd's, the envelope signature (bad for "bad signature", good
# otherwise), the policy in force for "undisclosed use", and for "fork" the
# two signed checkpoints that cannot both be honest. Each log is also
# audited offline from its tiles mirror; incremental audits (--state) must
# equal full ones and catch forks.
#
#   LEDGERD=build/server/ledgerd VERIFY=build/verifier/ledger-verify \
#   FIXTURE=build/tests/fixture/ledger-fixture bash tests/audit_fixtures_test.sh
set -euo pipefail

: "${LEDGERD:?set LEDGERD to the ledgerd binary}"
: "${VERIFY:?set VERIFY to the ledger-verify binary}"
: "${FIXTURE:?set FIXTURE to the ledger-fixture binary}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v python3 >/dev/null || { echo "audit_fixtures_test: python3 is required" >&2; exit 1; }
# The interpreter itself, not a version manager's shim (which can cost a
# second per start).
PY=$(python3 -c 'import sys; print(sys.executable)')
command -v curl >/dev/null || { echo "audit_fixtures_test: curl is required" >&2; exit 1; }

lib_setup audit_fixtures

# serve DIR: starts ledgerd on DIR (opaque: it checks only the store and the
# checkpoint signature); sets URL and SERVER_PID.
serve() {
  local dir=$1 pf="$1.port"
  rm -f "$pf"
  "$LEDGERD" --data "$dir" --entries opaque --listen 127.0.0.1:0 --port-file "$pf" --threads 8 \
    >"$dir.ledgerd.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 100); do
    [[ -s $pf ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -s $pf ]]; then
    echo "ledgerd did not start on $dir:" >&2
    cat "$dir.ledgerd.log" >&2
    exit 1
  fi
  URL="http://127.0.0.1:$(cat "$pf")"
}

# --- The independent evidence checker ------------------------------------------

cat >"$T/check.py" <<'PY'
"""Re-checks an audit report against what the fixture planted, and every
piece of evidence in it, without trusting the verifier.

  check.py report REPORT MANIFEST WHICH [URL]
      WHICH is "expected" (the log as ledgerd serves it) or
      "mirror_expected" (the fixture's tiles mirror, which may lie).
  check.py fork REPORT OLD_MANIFEST NEW_MANIFEST
  check.py same A B        the two reports are identical JSON documents
"""
import base64
import hashlib
import json
import sys
import urllib.request

try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.exceptions import InvalidSignature
except ImportError:  # signatures are then checked by ledger-verify only
    Ed25519PublicKey = None

failures = []


def fail(msg):
    failures.append(msg)


def b64(s):
    return base64.b64decode(s, validate=True)


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def root_from_inclusion(leaf, index, size, proof):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        raise ValueError("index %d >= size %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def verify_consistency(size1, size2, proof, root1, root2):
    """RFC 9162 §2.1.4.2; True if the proof shows tree 1 is a prefix of tree 2."""
    if size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1] + proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


def parse_vkey(vkey):
    name, keyhash, key = vkey.strip().split("+", 2)
    raw = b64(key)
    assert raw[0] == 1 and len(raw) == 33, "bad verifier key"
    kid = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert kid.hex() == keyhash, "verifier key hash mismatch"
    return name, kid, raw[1:]


def open_checkpoint(note, vkey, what):
    """Verifies a signed checkpoint note (C2SP signed-note) with the log key;
    returns (origin, size, root bytes)."""
    name, kid, pub = parse_vkey(vkey)
    if "\n\n" not in note:
        fail("%s: not a signed note: %r" % (what, note[:200]))
        return None
    text, sigs = note.split("\n\n", 1)
    text += "\n"
    lines = text.split("\n")
    origin, size, root = lines[0], int(lines[1]), b64(lines[2])
    if origin != name:
        fail("%s: origin %r is not the log key's name %r" % (what, origin, name))
    good = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail("%s: bad signature line %r" % (what, line))
            continue
        sname, sig = line[2:].split(" ")
        raw = b64(sig)
        if sname == name and raw[:4] == kid:
            if Ed25519PublicKey is None:
                good = True
                continue
            try:
                Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())
                good = True
            except InvalidSignature:
                fail("%s: the log key's signature does not verify" % what)
    if not good:
        fail("%s: no valid signature by the log key" % what)
    return origin, size, root


def pae(ptype, payload):
    t = ptype.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def envelope(entry):
    """The parsed envelope, or None if the entry is not the canonical JSON."""
    try:
        env = json.loads(entry)
        assert list(env) == ["payload", "payloadType", "signatures"]
        payload = b64(env["payload"])
        sig = env["signatures"][0]
        return env["payloadType"], payload, b64url(sig["keyid"]), b64(sig["sig"])
    except Exception:
        return None


def canonical(env):
    ptype, payload, key, sig = env
    return ('{"payload":"%s","payloadType":"%s","signatures":[{"keyid":"%s","sig":"%s"}]}' % (
        base64.b64encode(payload).decode(), ptype, base64.urlsafe_b64encode(key).decode().rstrip("="),
        base64.b64encode(sig).decode())).encode()


def signature_ok(env):
    if Ed25519PublicKey is None:
        return None
    ptype, payload, key, sig = env
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(sig, pae(ptype, payload))
        return True
    except (InvalidSignature, ValueError):
        return False


def fetch_entry(url, index):
    with urllib.request.urlopen("%s/v1/entries/%d" % (url, index), timeout=30) as r:
        return b64(json.load(r)["entry"])


def check_included(entry, index, size, proof, root, what):
    try:
        got = root_from_inclusion(leaf_hash(entry), index, size, [b64(h) for h in proof])
    except ValueError as e:
        fail("%s: inclusion proof malformed: %s" % (what, e))
        return
    if got != root:
        fail("%s: inclusion proof does not lead to the checkpoint's root" % what)


RULES_OF_THE_LOG = {"unknown holder", "unauthorised key", "revoked key", "undisclosed use",
                    "request id reused", "policy version", "index commitment"}

ACCESS_TYPE = "application/vnd.access-ledger.access.v1+json"
INDEX_TYPE = "application/vnd.access-ledger.index.v1+json"


def subject_root(values):
    """SPEC.md §14's index root by its recursive definition, over
    {tag bytes: (count, chain bytes)}."""
    items = sorted(values.items())

    def bit(tag, d):
        return (tag[d // 8] >> (7 - d % 8)) & 1

    def rec(depth, lo, hi):
        if lo == hi:
            return bytes(32)
        if hi - lo == 1:
            tag, (n, chain) = items[lo]
            return hashlib.sha256(b"\x02" + tag + n.to_bytes(8, "big") + chain).digest()
        mid = lo
        while mid < hi and bit(items[mid][0], depth) == 0:
            mid += 1
        return hashlib.sha256(b"\x03" + rec(depth + 1, lo, mid) + rec(depth + 1, mid, hi)).digest()

    return rec(0, 0, len(items))


def index_expectations(entries, log_pub):
    """Replays the entries' access tags into the subject index (chains per
    SPEC.md §14) and returns, for every index commitment entry, (index,
    rule or None, expected fields, found fields)."""
    values = {}
    accesses = 0
    out = []
    for i, entry in enumerate(entries):
        env = envelope(entry)
        if env is None:
            continue
        ptype, payload, key, _ = env
        if ptype == ACCESS_TYPE and signature_ok(env) is not False:
            tag = b64url(json.loads(payload)["subject"])
            n, chain = values.get(tag, (0, bytes(32)))
            values[tag] = (n + 1, hashlib.sha256(b"\x04" + chain + i.to_bytes(8, "big")).digest())
            accesses += 1
        elif ptype == INDEX_TYPE:
            p = json.loads(payload)
            found = {"size": p["size"], "root": base64.b64encode(b64url(p["root"])).decode(),
                     "subjects": p["subjects"], "accesses": p["accesses"]}
            expected = {"size": i, "root": base64.b64encode(subject_root(values)).decode(),
                        "subjects": len(values), "accesses": accesses}
            rule = None
            if key != log_pub:
                rule = "unauthorised key"
            elif found != expected:
                rule = "index commitment"
            out.append((i, rule, expected, found))
    return out


def check_index(report, m, url):
    """Every index commitment of the log, recomputed here from the log's
    entries: the report flags exactly the wrong ones, with the expected
    (rebuilt) and found fields as computed here."""
    size = report["checkpoint"]["size"]
    entries = [fetch_entry(url, i) for i in range(size)]
    log_pub = parse_vkey(m["vkey"])[2]
    exp = index_expectations(entries, log_pub)
    by_index = {v["index"]: v for v in report["violations"]}
    commitments = 0
    for i, rule, expected, found in exp:
        v = by_index.get(i)
        if rule is None:
            commitments += 1
            if v is not None:
                fail("honest commitment at %d reported as %s" % (i, v["rule"]))
            continue
        if rule == "index commitment":
            commitments += 1
        if v is None or v["rule"] != rule:
            fail("commitment at %d: want %s, got %s" % (i, rule, v and v["rule"]))
            continue
        if rule == "index commitment":
            if v.get("expected") != expected:
                fail("commitment at %d: expected %s, recomputed here %s" % (i, v.get("expected"), expected))
            if v.get("found") != found:
                fail("commitment at %d: found %s, the entry says %s" % (i, v.get("found"), found))
    si = report.get("subject_index", {})
    if si.get("commitments") != commitments:
        fail("subject_index.commitments %s, want %d" % (si.get("commitments"), commitments))
    print("index: %d commitments checked" % len(exp))


def check_violation(v, m, cp, url, vkey, exp):
    what = "violation %s at %s" % (v.get("rule"), v.get("index"))
    for field in ("rule", "index", "detail", "entry", "inclusion", "checkpoint"):
        if field not in v:
            fail("%s: no %r field" % (what, field))
            return
    if not isinstance(v["detail"], str) or not v["detail"]:
        fail("%s: empty detail" % what)
    if v["rule"] in RULES_OF_THE_LOG and not v["detail"].startswith(v["rule"]):
        fail("%s: detail %r does not start with the rule" % (what, v["detail"]))
    if "inclusion_error" in v:
        fail("%s: inclusion_error: %s" % (what, v["inclusion_error"]))
    # The evidence checkpoint is the audited one, signed by the log key.
    c = open_checkpoint(v["checkpoint"], vkey, what + ": checkpoint")
    if c is None:
        return
    origin, size, root = c
    if (origin, size, base64.b64encode(root).decode()) != (cp["origin"], cp["size"], cp["root"]):
        fail("%s: evidence checkpoint differs from the report's" % what)
    if v["rule"] == "root mismatch":
        if v["index"] != size or v["entry"] != "" or v["inclusion"]:
            fail("%s: want index = size %d, no entry, no inclusion" % (what, size))
        if "computed_root" in v and b64(v["computed_root"]) == root:
            fail("%s: computed_root equals the signed root" % what)
        if "computed_root" in v and m.get("mirror_root") and v["computed_root"] != m["root"]:
            fail("%s: computed_root %s is not the real root %s" % (what, v["computed_root"], m["root"]))
        return
    # The entry may be empty (a malformed one); its inclusion must still be
    # proven, or nobody can check that the log holds it.
    entry = b64(v["entry"])
    if not v["inclusion"] and size > 1:
        fail("%s: no inclusion proof for the entry" % what)
    else:
        check_included(entry, v["index"], size, v["inclusion"], root, what)
    if url:
        served = fetch_entry(url, v["index"])
        if served != entry:
            fail("%s: entry differs from ledgerd's entry %d" % (what, v["index"]))
    env = envelope(entry)
    if v["rule"] == "malformed entry":
        # The fixture planted an envelope that is not JSON, or not in the one
        # canonical byte form (SPEC.md §8).
        if env is not None and canonical(env) == entry:
            fail("%s: the entry is a canonical envelope" % what)
    elif env is None:
        fail("%s: the entry is not a canonical envelope" % what)
    else:
        ok = signature_ok(env)
        if v["rule"] == "bad signature" and ok is True:
            fail("%s: the envelope signature verifies" % what)
        if v["rule"] != "bad signature" and ok is False:
            fail("%s: the envelope signature does not verify" % what)
    if "policy_index" in exp:
        p = v.get("policy")
        if not isinstance(p, dict):
            fail("%s: no policy evidence" % what)
            return
        if p.get("index") != exp["policy_index"]:
            fail("%s: policy index %s, want %d" % (what, p.get("index"), exp["policy_index"]))
        pentry = b64(p.get("entry", ""))
        if "inclusion" not in p:
            fail("%s: no inclusion proof for the policy" % what)
        else:
            check_included(pentry, p["index"], size, p["inclusion"], root, what + ": policy")
        if url and fetch_entry(url, p["index"]) != pentry:
            fail("%s: policy entry differs from ledgerd's" % what)
        penv = envelope(pentry)
        if penv is None or penv[0] != "application/vnd.access-ledger.policy.v1+json" or signature_ok(penv) is False:
            fail("%s: the policy evidence is not a signed policy entry" % what)
        elif v["rule"] == "undisclosed use" and env is not None:
            policy = json.loads(penv[1])
            access = json.loads(env[1])
            cats = {pp["purpose"]: set(pp["categories"]) for pp in policy["purposes"]}
            if access["purpose"] in cats and set(access["categories"]) <= cats[access["purpose"]]:
                fail("%s: the policy evidence does cover the access" % what)
    elif "policy" in v:
        fail("%s: unexpected policy evidence" % what)


def check_report(report, m, which, url):
    vkey = m["vkey"]
    want = m[which]
    lying = which == "mirror_expected" and want != m["expected"]
    keys = list(report)
    if keys[:7] != ["checkpoint", "entries", "entries_by_kind", "accesses", "subject_index", "violations", "verified"]:
        fail("report fields %s" % keys)
    cp = report["checkpoint"]
    want_root = m.get("mirror_root", m["root"]) if which == "mirror_expected" else m["root"]
    want_size = m.get("mirror_size", m["size"]) if which == "mirror_expected" else m["size"]
    if cp != {"origin": m["origin"], "size": want_size, "root": want_root}:
        fail("checkpoint %s, want size %d root %s" % (cp, want_size, want_root))
    if not lying:
        if report["entries"] != m["size"]:
            fail("entries %s, want %d" % (report["entries"], m["size"]))
        if report["entries_by_kind"] != m["entries_by_kind"]:
            fail("entries_by_kind %s, want %s" % (report["entries_by_kind"], m["entries_by_kind"]))
        if report["accesses"] != m["accesses"]:
            fail("accesses %s, want %s" % (report["accesses"], m["accesses"]))
    got = [(v.get("rule"), v.get("index")) for v in report["violations"]]
    exp = [(e["rule"], e["index"]) for e in want]
    if got != exp:
        fail("violations %s, want %s" % (got, exp))
    if report["verified"] != (not want):
        fail("verified is %s" % report["verified"])
    for v, e in zip(report["violations"], want):
        check_violation(v, m, cp, url if not lying else None, vkey, e)


def check_fork(report, old, new):
    vkey = new["vkey"]
    forks = [v for v in report["violations"] if v.get("rule") == "fork"]
    if report["verified"] is not False or len(forks) != 1:
        fail("want one fork violation, got %s" % [v.get("rule") for v in report["violations"]])
        return
    v = forks[0]
    if v.get("index") != old["size"]:
        fail("fork index %s, want the stored size %d" % (v.get("index"), old["size"]))
    if v.get("old_checkpoint") != old["checkpoint"]:
        fail("old_checkpoint is not the checkpoint audited before")
    if v.get("checkpoint") != new["checkpoint"]:
        fail("checkpoint is not the log's new checkpoint")
    a = open_checkpoint(v.get("old_checkpoint", ""), vkey, "fork: old checkpoint")
    b = open_checkpoint(v.get("checkpoint", ""), vkey, "fork: new checkpoint")
    if a is None or b is None:
        return
    # Two signed checkpoints that no consistency proof can join.
    proof = [b64(h) for h in v.get("consistency", [])]
    if a[1] <= b[1] and verify_consistency(a[1], b[1], proof, a[2], b[2]):
        fail("fork: the reported consistency proof verifies: not a fork")
    if a[1] == b[1] and a[2] == b[2]:
        fail("fork: the two checkpoints are the same tree")
    if not v.get("detail"):
        fail("fork: empty detail")


def main():
    cmd = sys.argv[1]
    if cmd == "report":
        report = json.load(open(sys.argv[2]))
        m = json.load(open(sys.argv[3]))
        check_report(report, m, sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    elif cmd == "fork":
        check_fork(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), json.load(open(sys.argv[4])))
    elif cmd == "index":  # index REPORT MANIFEST URL
        check_index(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), sys.argv[4])
    elif cmd == "same":
        a, b = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
        if a != b:
            fail("reports differ:\n%s\n%s" % (json.dumps(a)[:1500], json.dumps(b)[:1500]))
    elif cmd == "get":  # get FILE PATH...: print a field (violation evidence)
        j = json.load(open(sys.argv[2]))
        for k in sys.argv[3:]:
            j = j[int(k)] if isinstance(j, list) else j[k]
        sys.stdout.write(j if isinstance(j, str) else json.dumps(j))
    elif cmd == "b64file":  # b64file B64 OUT: write decoded bytes
        open(sys.argv[3], "wb").write(b64(sys.argv[2]))
    else:
        sys.exit("unknown command " + cmd)
    for f in failures:
        print(f)
    sys.exit(1 if failures else 0)


main()
PY
chk() { "$PY" "$T/check.py" "$@"; }

"$PY" -c 'import cryptography' 2>/dev/null ||
  echo "note: python3 has no 'cryptography' module; Ed25519 signatures are re-checked with ledger-verify only"

# --- Every scenario: online through ledgerd, offline from its tiles mirror -----

# scenario[:accesses]; 600 accesses span three entry bundles and a level-1
# tile, so proofs cross tile boundaries and violations sit beyond index 256.
SCENARIOS=(honest undisclosed undisclosed-category undisclosed-v2 revoked duplicate-request tampered tampered-sig
  tampered-json unauthorised unknown-holder policy-version time-backwards retry-relogged before-policy
  shared-request-id cross-accessor reauthorised rogue-holder holder-rotated noncanonical time-jitter
  forked-checkpoint mirror-swapped-entry mirror-extra-entry mirror-duplicate-entry mirror-empty-entry
  honest:600 undisclosed:600 tampered:600
  index-honest index-omit index-reorder index-size index-counts index-signer index-honest:600)

for item in "${SCENARIOS[@]}"; do
  s=${item%%:*}
  n=20
  [[ $item == *:* ]] && n=${item#*:}
  name="$s-$n"
  D="$T/$name"
  run "$FIXTURE" --data "$D" --scenario "$s" --accesses "$n" --mirror
  expect_rc "[$name] fixture writes the log and its self-audit finds what was planted" 0
  [[ $RC -eq 0 ]] || continue
  M="$D/fixture.json"
  want_online=$("$PY" -c 'import json,sys; print(1 if json.load(open(sys.argv[1]))["expected"] else 0)' "$M")
  want_mirror=$("$PY" -c 'import json,sys; print(1 if json.load(open(sys.argv[1]))["mirror_expected"] else 0)' "$M")
  rules=$("$PY" -c 'import json,sys; print(",".join(e["rule"] for e in json.load(open(sys.argv[1]))["expected"]) or "none")' "$M")

  serve "$D"
  run "$VERIFY" audit --log "$URL" --log-key "@$D/log.vkey" --json
  expect_rc "[$name] audit through ledgerd exits $want_online ($rules)" "$want_online"
  cp "$T/out" "$D.online.json"
  check "[$name] report: rule, index, counts and re-checked evidence as planted" chk report "$D.online.json" "$M" expected "$URL"
  if [[ $s == index-* ]]; then
    check "[$name] every index commitment recomputed here from the log's entries: exactly the wrong ones flagged, expected vs found as computed" \
      chk index "$D.online.json" "$M" "$URL"
  fi

  run "$VERIFY" audit --log "$URL" --log-key "$(cat "$D/log.vkey")"
  if [[ $want_online -eq 0 ]]; then
    [[ $RC -eq 0 ]] && grep -q '^VERIFIED' <<<"$OUT" && pass "[$name] human report says VERIFIED" ||
      failed "[$name] human report says VERIFIED"
  else
    first_rule=${rules%%,*}
    [[ $RC -eq 1 ]] && grep -q "$first_rule at entry" <<<"$OUT" && grep -q '^FAILED' <<<"$OUT" &&
      pass "[$name] human report names the violation" || failed "[$name] human report names the violation"
  fi

  # Re-prove the first violation's entry with ledger-verify inclusion,
  # against the evidence checkpoint.
  if [[ $want_online -eq 1 ]]; then
    chk get "$D.online.json" violations 0 checkpoint >"$D.evidence.checkpoint"
    chk b64file "$(chk get "$D.online.json" violations 0 entry)" "$D.evidence.entry"
    idx=$(chk get "$D.online.json" violations 0 index)
    run "$VERIFY" checkpoint --log-key "@$D/log.vkey" --checkpoint "$D.evidence.checkpoint"
    expect_rc "[$name] the evidence checkpoint verifies (ledger-verify checkpoint)" 0
    run "$VERIFY" inclusion --log "$URL" --log-key "@$D/log.vkey" --entry "$D.evidence.entry" --index "$idx" \
      --checkpoint "$D.evidence.checkpoint"
    expect_rc "[$name] the violating entry is proven in the evidence checkpoint (ledger-verify inclusion)" 0
  fi

  # Offline, from the fixture's mirror (which lies in the mirror-* and
  # forked-checkpoint scenarios).
  run "$VERIFY" audit --log "$D/mirror" --log-key "@$D/log.vkey" --json
  expect_rc "[$name] audit of the tiles mirror exits $want_mirror" "$want_mirror"
  cp "$T/out" "$D.mirror.json"
  check "[$name] mirror report as planted" chk report "$D.mirror.json" "$M" mirror_expected
  if "$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); sys.exit(m["expected"] != m["mirror_expected"])' "$M"; then
    check "[$name] offline report (mirror) equals the online one (ledgerd)" chk same "$D.online.json" "$D.mirror.json"
  fi
  stop "$SERVER_PID"
done

# --- ledger-verify mirror copies a log that then audits identically ------------

D="$T/undisclosed-600"
if [[ -f $D.online.json ]]; then
  serve "$D"
  run "$VERIFY" mirror --log "$URL" --log-key "@$D/log.vkey" --out "$T/copy"
  expect_rc "mirror copies the log from ledgerd" 0
  check "the copy holds exactly the fixture's tiles, bundles and checkpoint" diff -r "$D/mirror" "$T/copy"
  run "$VERIFY" audit --log "$T/copy" --log-key "@$D/log.vkey" --json
  cp "$T/out" "$T/copy.json"
  check "audit of the copy equals the online audit" chk same "$D.online.json" "$T/copy.json"
  for bad in forked-checkpoint-20 mirror-swapped-entry-20 mirror-extra-entry-20; do
    [[ -d $T/$bad/mirror ]] || continue
    run "$VERIFY" mirror --log "$T/$bad/mirror" --log-key "@$T/$bad/log.vkey" --out "$T/copy-$bad"
    expect_rc "mirror refuses to copy a lying mirror ($bad)" 1
    check "nothing is written for a lying mirror ($bad)" test ! -e "$T/copy-$bad/checkpoint"
  done
  stop "$SERVER_PID"
fi

# --- Checkpoint signatures and damaged mirrors ---------------------------------------

D="$T/honest-20"
if [[ -d $D/mirror ]]; then
  HONEST_REPORT="$D.online.json"
  # A cosignature by a key the auditor does not know is ignored (C2SP
  # signed-note): the log still verifies.
  cp -r "$D/mirror" "$T/cosigned"
  "$PY" - "$T/cosigned/checkpoint" <<'PY'
import base64, os, sys
p = sys.argv[1]
note = open(p, encoding="utf-8").read()
note += "\u2014 witness.example/w1 " + base64.b64encode(os.urandom(68)).decode() + "\n"
open(p, "w", encoding="utf-8").write(note)
PY
  run "$VERIFY" audit --log "$T/cosigned" --log-key "@$D/log.vkey" --json
  expect_rc "a checkpoint with an unknown witness's cosignature still verifies" 0
  cp "$T/out" "$T/cosigned.json"
  check "... and reports the same as the plain one" chk same "$HONEST_REPORT" "$T/cosigned.json"

  # A signature line that claims the log's key but does not verify.
  cp -r "$D/mirror" "$T/badsig"
  "$PY" - "$T/badsig/checkpoint" <<'PY'
import base64, sys
p = sys.argv[1]
text, sigs = open(p, encoding="utf-8").read().split("\n\n", 1)
name, sig = sigs.rstrip("\n")[2:].split(" ")
raw = bytearray(base64.b64decode(sig))
raw[10] ^= 1  # inside the Ed25519 signature, after the key ID
open(p, "w", encoding="utf-8").write(text + "\n\n\u2014 " + name + " " + base64.b64encode(bytes(raw)).decode() + "\n")
PY
  run "$VERIFY" audit --log "$T/badsig" --log-key "@$D/log.vkey" --json
  expect_rc "a checkpoint whose log signature fails is rejected" 1
  check "... with verified false" "$PY" -c \
    'import json,sys; sys.exit(json.load(open(sys.argv[1])).get("verified") is not False)' "$T/out"

  # The last entry bundle is missing: the log cannot show what it signed.
  cp -r "$D/mirror" "$T/nobundle"
  rm -f "$T"/nobundle/tile/entries/000.p/*
  run "$VERIFY" audit --log "$T/nobundle" --log-key "@$D/log.vkey" --json
  [[ $RC -ne 0 ]] && pass "a mirror missing an entry bundle does not verify (exit $RC)" ||
    failed "a mirror missing an entry bundle does not verify"

  # A bundle cut short inside its last entry.
  cp -r "$D/mirror" "$T/truncated"
  B=$(ls "$T"/truncated/tile/entries/000.p/*)
  head -c $(($(stat -c %s "$B") - 1)) "$B" >"$B.new" && mv "$B.new" "$B"
  run "$VERIFY" audit --log "$T/truncated" --log-key "@$D/log.vkey" --json
  expect_rc "a mirror with a truncated entry bundle fails" 1
  check "... as root mismatch" "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verified"] is False and [v["rule"] for v in r["violations"]] == ["root mismatch"], r["violations"]' "$T/out"
fi

# --- A log that grows after an incremental audit: the state carries the rules -----
#
# ledgerd in opaque mode appends whatever it is sent, so the dishonest
# operator keeps going with entries signed by the fixture's real keys
# (ledgerctl): an honest access, a reuse of a request id logged before the
# saved state, an undisclosed use under the policy logged before it, and a
# backdated access. The incremental audit only sees the new entries, so it
# must carry request ids, policies and the latest access time in its state,
# and its report must equal a full audit's.

D="$T/undisclosed-20"
if [[ -z ${LEDGERCTL:-} ]]; then
  echo "note: LEDGERCTL not set; skipping the growing-log incremental audit"
elif [[ -d $D ]]; then
  serve "$D"
  run "$VERIFY" audit --log "$URL" --log-key "@$D/log.vkey" --state "$T/grow.state" --json
  expect_rc "growing log: the first incremental audit finds the planted violation" 1
  check "growing log: the state is saved although the log has violations" test -s "$T/grow.state"
  PERIOD=$(date -u +%Y-%m)
  TAG=$("$LEDGERCTL" subject-token --holder fixture-bank --vrf-key "$D/keys/holder-vrf.key" --customer alice \
    --period "$PERIOD" --tag-only)
  sign() {  # sign REQUEST_ID PURPOSE CATEGORIES [TIME]
    "$LEDGERCTL" access sign --key "$D/keys/accessor.key" --accessor chat-banking --holder fixture-bank \
      --subject "$TAG" --purpose "$2" --categories "$3" --consent consent-grow --request-id "$1" \
      --time "${4:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}" --detail "grown after the audit" --out "$T/grow.jsonl"
  }
  : >"$T/grow.jsonl"
  sign grow-1 CUSTOMER_SUPPORT BALANCES
  sign req-5 CUSTOMER_SUPPORT BALANCES
  sign grow-2 CROSS_SELLING CUSTOMER_CONTACT
  sign grow-3 CUSTOMER_SUPPORT BALANCES "$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)"
  run "$LEDGERCTL" submit --log "$URL" --log-key "$D/log.vkey" "$T/grow.jsonl"
  expect_rc "growing log: the operator appends four more entries" 0
  run "$VERIFY" audit --log "$URL" --log-key "@$D/log.vkey" --state "$T/grow.state" --json
  expect_rc "growing log: the incremental audit fails" 1
  cp "$T/out" "$T/grow.incremental.json"
  run "$VERIFY" audit --log "$URL" --log-key "@$D/log.vkey" --json
  cp "$T/out" "$T/grow.full.json"
  check "growing log: the incremental report equals the full one" chk same "$T/grow.full.json" "$T/grow.incremental.json"
  check "growing log: old and new violations, each at its index, with evidence" "$PY" - "$T/grow.incremental.json" \
    "$D/fixture.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = json.load(open(sys.argv[2]))
n = m["size"]
got = [(v["rule"], v["index"], v.get("policy", {}).get("index")) for v in r["violations"]]
want = [("undisclosed use", n - 1, 2), ("request id reused", n + 1, None), ("undisclosed use", n + 2, 2),
        ("time runs backwards", n + 3, None)]
assert got == want, got
assert r["checkpoint"]["size"] == r["entries"] == n + 4, r["checkpoint"]
for v in r["violations"]:
    assert v["inclusion"] and v["checkpoint"] and v["entry"] and "inclusion_error" not in v, v
PY
  stop "$SERVER_PID"
fi

# --- Wrong key, unreachable log --------------------------------------------------

D="$T/honest-20"
OTHER="$T/undisclosed-20"
if [[ -d $D && -d $OTHER ]]; then
  serve "$D"
  run "$VERIFY" audit --log "$URL" --log-key "@$OTHER/log.vkey" --json
  expect_rc "audit with another log's key fails" 1
  check "... and says the checkpoint is not verified" "$PY" -c \
    'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(j.get("verified") is not False)' "$T/out"
  stop "$SERVER_PID"
  run "$VERIFY" audit --log "$URL" --log-key "@$D/log.vkey" --json
  expect_rc "audit of a log that cannot be reached is an I/O error" 2
fi

# --- Forks and incremental audits ------------------------------------------------

F="$T/fork"
run "$FIXTURE" --data "$F" --scenario fork --mirror
expect_rc "fixture writes two forks of one log (a, b) and their common prefix (p)" 0
if [[ $RC -eq 0 ]]; then
  "$PY" - "$F/fixture.json" "$F" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for k in "pabc":
    json.dump(m[k], open("%s/%s.json" % (sys.argv[2], k), "w"))
PY
  serve "$F/p"; URL_P=$URL; PID_P=$SERVER_PID
  serve "$F/a"; URL_A=$URL; PID_A=$SERVER_PID
  serve "$F/b"; URL_B=$URL; PID_B=$SERVER_PID
  KEY="@$F/a/log.vkey"
  check "the forks share one log key" cmp "$F/a/log.vkey" "$F/b/log.vkey"

  run "$VERIFY" audit --log "$URL_P" --log-key "$KEY" --state "$T/s1" --json
  expect_rc "incremental audit: the prefix verifies and the state is saved" 0
  check "the state file exists" test -s "$T/s1"
  run "$VERIFY" audit --log "$URL_A" --log-key "$KEY" --state "$T/s1" --json
  expect_rc "incremental audit: fork a extends the prefix" 0
  cp "$T/out" "$T/a.incremental.json"
  run "$VERIFY" audit --log "$URL_A" --log-key "$KEY" --json
  cp "$T/out" "$T/a.full.json"
  check "the incremental report equals the full one" chk same "$T/a.incremental.json" "$T/a.full.json"
  check "a verifies" chk report "$T/a.full.json" "$F/a.json" expected "$URL_A"
  run "$VERIFY" audit --log "$URL_A" --log-key "$KEY" --state "$T/s1" --json
  expect_rc "incremental audit with nothing new verifies" 0
  cp "$T/s1" "$T/s1.before"

  run "$VERIFY" audit --log "$URL_B" --log-key "$KEY" --state "$T/s1" --json
  expect_rc "incremental audit: fork b after a is a fork" 1
  cp "$T/out" "$T/fork-ab.json"
  check "fork b after a: evidence is both signed checkpoints, not consistent" chk fork "$T/fork-ab.json" "$F/a.json" "$F/b.json"
  check "the state is not replaced after a fork" cmp "$T/s1" "$T/s1.before"
  run "$VERIFY" audit --log "$URL_B" --log-key "$KEY" --state "$T/s1" --json
  expect_rc "the fork is reported again on the next run" 1

  chk get "$T/fork-ab.json" violations 0 old_checkpoint >"$T/old.cp" || true
  chk get "$T/fork-ab.json" violations 0 checkpoint >"$T/new.cp" || true
  run "$VERIFY" consistency --log "$URL_B" --log-key "$KEY" --old "$T/old.cp" --new "$T/new.cp"
  expect_rc "ledger-verify consistency confirms the fork evidence" 1
  run "$VERIFY" consistency --log "$URL_A" --log-key "$KEY" --old "$F/p/mirror/checkpoint"
  expect_rc "ledger-verify consistency: a extends the prefix" 0

  run "$VERIFY" audit --log "$URL_B" --log-key "$KEY" --state "$T/s2" --json
  expect_rc "b alone verifies" 0
  run "$VERIFY" audit --log "$URL_A" --log-key "$KEY" --state "$T/s2" --json
  expect_rc "incremental audit: a (smaller, diverging) after b is a fork" 1
  cp "$T/out" "$T/fork-ba.json"
  check "fork a after b: evidence is both signed checkpoints" chk fork "$T/fork-ba.json" "$F/b.json" "$F/a.json"

  run "$VERIFY" audit --log "$F/a/mirror" --log-key "$KEY" --state "$T/s5" --json
  run "$VERIFY" audit --log "$F/c/mirror" --log-key "$KEY" --state "$T/s5" --json
  expect_rc "incremental audit: c (same size as a, another root) after a is a fork" 1
  cp "$T/out" "$T/fork-ac.json"
  check "fork c after a: evidence is both signed checkpoints" chk fork "$T/fork-ac.json" "$F/a.json" "$F/c.json"

  # Auditing b only up to the prefix's checkpoint is auditing the prefix.
  run "$VERIFY" audit --log "$URL_B" --log-key "$KEY" --checkpoint "$F/p/mirror/checkpoint" --json
  expect_rc "audit of b up to the prefix's checkpoint verifies" 0
  cp "$T/out" "$T/b-at-p.json"
  run "$VERIFY" audit --log "$URL_P" --log-key "$KEY" --json
  cp "$T/out" "$T/p.json"
  check "... and reports exactly what the prefix's audit reports" chk same "$T/p.json" "$T/b-at-p.json"

  # A mirror follows one log; pointed at a fork of it, it refuses to
  # update and keeps the checkpoint it had.
  run "$VERIFY" mirror --log "$URL_A" --log-key "$KEY" --out "$T/follow"
  expect_rc "mirror copies a" 0
  cp "$T/follow/checkpoint" "$T/follow.cp"
  run "$VERIFY" mirror --log "$URL_B" --log-key "$KEY" --out "$T/follow"
  expect_rc "mirror refuses to update a's copy from b (a fork)" 1
  check "... and the copy keeps a's checkpoint" cmp "$T/follow/checkpoint" "$T/follow.cp"

  run "$VERIFY" audit --log "$F/a/mirror" --log-key "$KEY" --state "$T/s3" --json
  expect_rc "offline: mirror a verifies" 0
  run "$VERIFY" audit --log "$F/b/mirror" --log-key "$KEY" --state "$T/s3" --json
  expect_rc "offline: mirror b after mirror a is a fork" 1
  cp "$T/out" "$T/fork-ab-offline.json"
  check "offline fork evidence" chk fork "$T/fork-ab-offline.json" "$F/a.json" "$F/b.json"

  # A mirror of a whose hash tiles are corrupt but whose entries and
  # checkpoint are honest: the full audit rebuilds the tree from the
  # entries and verifies. An incremental audit from the prefix must not
  # accuse the log of a fork on the strength of a proof computed from bad
  # tiles: a really extends p, which the entries prove.
  cp -r "$F/a/mirror" "$T/badtile"
  for tile in "$T"/badtile/tile/0/*.p/* "$T"/badtile/tile/0/[0-9x]*; do
    [[ -f $tile ]] || continue
    "$PY" -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read())
for i in range(0, len(b), 32):
    b[i] ^= 1
open(sys.argv[1], "wb").write(b)' "$tile"
  done
  run "$VERIFY" audit --log "$T/badtile" --log-key "$KEY" --json
  expect_rc "a mirror with corrupt hash tiles but honest entries: the full audit verifies" 0
  run "$VERIFY" audit --log "$F/p/mirror" --log-key "$KEY" --state "$T/s4" --json
  run "$VERIFY" audit --log "$T/badtile" --log-key "$KEY" --state "$T/s4" --json
  cp "$T/out" "$T/badtile.json"
  check "... and an incremental audit from the prefix reports no fork (a extends p; only its tiles are bad)" \
    "$PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
rules = [v["rule"] for v in r.get("violations", [])]
assert "fork" not in rules, [(v["rule"], v["detail"]) for v in r["violations"]]' "$T/badtile.json"

  stop "$PID_P"
  stop "$PID_A"
  stop "$PID_B"
fi

lib_finish audit_fixtures
