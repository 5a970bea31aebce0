// The bank-side gate: checks, offline and in microseconds, that a request
// for a customer's data carries a valid Access Ledger receipt for exactly
// that access, so a data holder can release data only against a logged
// access (fail closed). Pure: no storage, no network, no clock.
//
// A receipt is a C2SP tlog-proof (SPEC.md §5) whose "extra" line carries the
// entry, as GET /v1/proof/tlog-proof serves it. CheckReceipt proves that the
// entry is in a tree whose checkpoint the log signed, that the entry is an
// access signed by the key named in it, and that the access covers what the
// request asks for. Its cost is two Ed25519 verifications (checkpoint note,
// entry envelope), one JSON parse and at most 64 SHA-256 compressions, plus
// one Ed25519 verification per cosignature line of a listed witness when a
// witness policy is given.
//
// What the gate relies on the log for (and does not re-check): the log
// appends an access only if the accessor's key was authorised by the holder
// and not revoked, the request id was unused, the time was within the log's
// clock skew, and the accessor's policy in force disclosed the purpose and
// every category (otherwise it refuses with "undisclosed use"). Those rules
// need the log's state; the gate trusts the log's signature on them, and
// `ledger-verify audit` replays the whole log and re-checks every rule, so a
// log that let a violation through is caught with the evidence.
//
// What the gate does not check at all:
//   - split views, unless a witness policy is given: by default the gate
//     does not check that the checkpoint is consistent with what others
//     saw. GateExpectation::witnesses / quorum make it require C2SP
//     tlog-cosignature cosignatures from a quorum of independent witnesses
//     (ledger::OpenWitnessedCheckpoint), each of which cosigns only
//     checkpoints consistent with every one it cosigned before, so a fork
//     the witnesses have not also seen is refused; a gate that wants more
//     keeps the largest checkpoint it has seen and asks for consistency
//     proofs, outside this function;
//   - freshness of the checkpoint, and replay: a receipt stays valid for
//     ever, so releasing data twice against one receipt is the caller's to
//     prevent (ledger-gate refuses a second release of the same entry);
//     GateExpectation::not_before bounds the access's age;
//   - who is presenting the receipt: a receipt is a bearer proof that the
//     access was logged, not an authentication of the requester;
//   - that the subject tag belongs to the customer the caller has in mind:
//     the holder computes the tag itself with its VRF key and passes it in
//     GateExpectation::subject;
//   - the consent reference, actor and detail fields (carried, not judged).
//
// Thread-safety: CheckReceipt is a pure function; the NoteVerifier and the
// CosignatureVerifiers it reads are immutable, so any number of threads may
// call it at once.
#ifndef LEDGER_GATE_H_
#define LEDGER_GATE_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/cosignature.h"
#include "ledger/note.h"
#include "ledger/record.h"

namespace ledger {

// GateExpectation is what the request asks to be released; every field that
// is set must match the logged access.
struct GateExpectation {
  std::optional<std::string> accessor, holder, purpose;
  std::optional<Bytes> subject;  // 32-byte subject tag
  // Requested categories; each must be among the logged access's
  // categories (the access may name more). Empty: no category check.
  std::set<std::string> categories;
  // Optional: reject accesses whose time is older than this (Unix seconds).
  std::optional<int64_t> not_before;
  // Optional witness policy: the receipt's checkpoint must carry valid
  // cosignature/v1 cosignatures from at least |quorum| DISTINCT witnesses
  // of |witnesses| (the same key listed twice, or several lines from one
  // witness, count once; lines from unlisted keys are ignored; a line from
  // a listed witness that does not verify refuses the receipt). Empty
  // |witnesses| and |quorum| 0 (the default): the log's signature alone,
  // as before. A quorum larger than the number of distinct witnesses, or
  // two listed keys with one name and key ID, is a policy error: every
  // receipt is refused ("witness policy: ").
  std::vector<CosignatureVerifier> witnesses;
  size_t quorum = 0;
};

// GateDecision is the gate's answer. |allowed| is true only if every check
// passed; otherwise |reason| says which check failed and why. Fields are
// filled as far as the checks got: |index| and |tree_size| once the receipt
// and checkpoint are accepted, |access| once the entry verified as an access
// (so a refusal for a mismatch still shows what was logged). Release data
// only when |allowed|.
struct GateDecision {
  bool allowed = false;
  std::string reason;  // "allowed", or "<check>: <detail>"
  uint64_t index = 0;
  uint64_t tree_size = 0;
  std::optional<AccessRecord> access;
  // The distinct listed witnesses whose cosignature on the checkpoint
  // verified (in the order of GateExpectation::witnesses, each with its
  // latest timestamp); filled once the log's signature and every listed
  // witness's line verified, so also on a "witness quorum: " refusal.
  // Empty without a witness policy.
  std::vector<WitnessCosignature> cosignatures;
};

// CheckReceipt decides whether the access proven by |tlog_proof_text| allows
// releasing what |expected| describes. |entry| is the entry bytes if the
// caller has them separately; otherwise the receipt's extra line must carry
// them (if both are present they must be equal). |log_key| is the log's
// verifier key. Checks, in order, each failure a refusal whose reason starts
// with the prefix shown:
//   1. the receipt parses as a C2SP tlog-proof        "malformed receipt: "
//   2. with a witness policy (expected.witnesses or
//      expected.quorum set), the policy is valid     "witness policy: "
//      the checkpoint is signed by |log_key| and its
//      origin is the key's name                      "bad checkpoint: "
//      with a witness policy, every line by a listed
//      witness is a valid cosignature                "bad cosignature: "
//      and at least quorum distinct listed
//      witnesses cosigned                            "witness quorum: "
//   3. an entry is present, and argument and extra
//      agree                                         "missing entry: " /
//                                                    "entry mismatch: "
//   4. HashLeaf(entry) is at the index in the
//      checkpoint's tree (RFC 9162 §2.1.3.2)          "not included: "
//   5. the entry parses and its signature verifies   "bad entry: "
//   6. the entry is an access                        "not an access: "
//   7. accessor, holder, subject, purpose match when
//      expected                                      "accessor mismatch: ",
//                                                    "holder mismatch: ",
//                                                    "subject mismatch: ",
//                                                    "purpose mismatch: "
//   8. every requested category was logged           "category not logged: "
//   9. the access is not older than not_before       "access too old: "
// On success |reason| is "allowed".
GateDecision CheckReceipt(std::string_view tlog_proof_text, std::optional<ByteView> entry, const NoteVerifier& log_key,
                          const GateExpectation& expected);

}  // namespace ledger

#endif  // LEDGER_GATE_H_
