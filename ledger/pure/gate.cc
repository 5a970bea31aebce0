#include "ledger/gate.h"

#include <utility>

#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/tlog_proof.h"

namespace ledger {
namespace {

// Refuse marks |d| refused and moves it out. |d| is taken by reference, not
// by value: reasons are built from fields of |d|, and a by-value parameter
// may be moved-into before the reason argument is evaluated (unspecified
// order; clang does, gcc does not).
GateDecision Refuse(GateDecision& d, std::string reason) {
  d.allowed = false;
  d.reason = std::move(reason);
  return std::move(d);
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string JoinSet(const std::set<std::string>& set) {
  std::string out;
  for (const auto& s : set) {
    if (!out.empty()) out += ",";
    out += s;
  }
  return out;
}

// WitnessPolicyError returns why a witness policy cannot be met by any
// checkpoint (OpenWitnessedCheckpoint's policy checks, made before any
// signature is), or "" if it is valid.
std::string WitnessPolicyError(const std::vector<CosignatureVerifier>& witnesses, size_t quorum) {
  std::vector<const CosignatureVerifier*> distinct;
  for (const auto& w : witnesses) {
    bool dup = false;
    for (const auto* d : distinct) {
      if (d->name() != w.name() || d->key_id() != w.key_id()) continue;
      if (d->public_key() != w.public_key()) return "two listed witness keys share the name and key ID of " + w.name();
      dup = true;
      break;
    }
    if (!dup) distinct.push_back(&w);
  }
  if (quorum > distinct.size())
    return "quorum " + std::to_string(quorum) + " exceeds the " + std::to_string(distinct.size()) +
           " distinct witnesses listed";
  return "";
}

// WitnessName is the name part of a verifier key string "<name>+<hash>+<key>".
std::string WitnessName(const std::string& vkey) { return vkey.substr(0, vkey.find('+')); }

}  // namespace

GateDecision CheckReceipt(std::string_view tlog_proof_text, std::optional<ByteView> entry, const NoteVerifier& log_key,
                          const GateExpectation& expected) {
  GateDecision d;

  // 1. The receipt parses.
  auto proof = ParseTlogProof(tlog_proof_text);
  if (!proof.ok()) return Refuse(d, "malformed receipt: " + proof.status().message());

  // 2. The checkpoint is signed by the log key, with the log's origin, and
  // cosigned by a quorum of the listed witnesses if a policy is given.
  StatusOr<Checkpoint> cp = Status::Internal("unset");
  if (expected.witnesses.empty() && expected.quorum == 0) {
    cp = OpenCheckpoint(proof->checkpoint, log_key);
    if (!cp.ok()) return Refuse(d, "bad checkpoint: " + cp.status().message());
  } else {
    std::string policy_error = WitnessPolicyError(expected.witnesses, expected.quorum);
    if (!policy_error.empty()) return Refuse(d, "witness policy: " + policy_error);
    cp = OpenWitnessedCheckpoint(proof->checkpoint, log_key, expected.witnesses, expected.quorum, &d.cosignatures);
    if (!cp.ok()) {
      // Say which check failed: the log's signature, a listed witness's
      // cosignature, or the quorum (the common path above pays for one
      // verification of each signature; only a refusal pays for this).
      auto logged = OpenCheckpoint(proof->checkpoint, log_key);
      if (!logged.ok()) return Refuse(d, "bad checkpoint: " + logged.status().message());
      auto any = OpenWitnessedCheckpoint(proof->checkpoint, log_key, expected.witnesses, 0, &d.cosignatures);
      if (!any.ok()) {
        d.cosignatures.clear();
        return Refuse(d, "bad cosignature: " + any.status().message());
      }
      std::string names;
      for (const auto& c : d.cosignatures) names += (names.empty() ? "" : ", ") + WitnessName(c.witness);
      std::string reason = "witness quorum: the checkpoint has valid cosignatures from " +
                           std::to_string(d.cosignatures.size()) + " of the listed witnesses (" +
                           (names.empty() ? std::string("none") : names) + "), " +
                           std::to_string(expected.quorum) + " required";
      return Refuse(d, std::move(reason));
    }
  }
  d.index = proof->index;
  d.tree_size = cp->size;

  // 3. The entry: the argument, the receipt's extra line, or both (equal).
  ByteView bytes;
  if (entry && !proof->extra.empty()) {
    if (*entry != ByteView(proof->extra))
      return Refuse(d, "entry mismatch: the entry given differs from the entry in the receipt");
    bytes = *entry;
  } else if (entry) {
    bytes = *entry;
  } else if (!proof->extra.empty()) {
    bytes = proof->extra;
  } else {
    return Refuse(d, "missing entry: the receipt has no extra line and no entry was given");
  }
  if (bytes.empty()) return Refuse(d, "missing entry: the entry given is empty");

  // 4. Inclusion of the entry at the index in the checkpoint's tree.
  Status inc = VerifyInclusion(HashLeaf(bytes), proof->index, cp->size, proof->inclusion, cp->root);
  if (!inc.ok())
    return Refuse(d, "not included: entry " + std::to_string(proof->index) + " in the tree of size " +
                                    std::to_string(cp->size) + ": " + inc.message());

  // 5. The entry parses and its signature verifies.
  auto parsed = ParseEntry(bytes);
  if (!parsed.ok()) return Refuse(d, "bad entry: " + parsed.status().message());

  // 6. It is an access.
  if (parsed->kind != EntryKind::kAccess)
    return Refuse(d, std::string("not an access: entry ") + std::to_string(proof->index) + " is a " +
                                    EntryKindName(parsed->kind) + " entry");
  d.access = std::move(std::get<AccessRecord>(parsed->record));
  const AccessRecord& a = *d.access;

  // 7. The access is for what is asked.
  if (expected.accessor && a.accessor != *expected.accessor)
    return Refuse(d, "accessor mismatch: the access is by " + Quoted(a.accessor) + ", not " +
                                    Quoted(*expected.accessor));
  if (expected.holder && a.holder != *expected.holder)
    return Refuse(d, "holder mismatch: the access is to " + Quoted(a.holder) + "'s data, not " +
                                    Quoted(*expected.holder) + "'s");
  if (expected.subject && a.subject != *expected.subject)
    return Refuse(d, "subject mismatch: the access is for subject " + Base64UrlEncode(a.subject) +
                                    ", not " + Base64UrlEncode(*expected.subject));
  if (expected.purpose && a.purpose != *expected.purpose)
    return Refuse(d, "purpose mismatch: the access is for " + a.purpose + ", not " + *expected.purpose);

  // 8. Every requested category was logged.
  std::set<std::string> missing;
  for (const auto& c : expected.categories)
    if (!a.categories.count(c)) missing.insert(c);
  if (!missing.empty())
    return Refuse(d, "category not logged: " + JoinSet(missing) + " (the access logged " +
                                    JoinSet(a.categories) + ")");

  // 9. The access is recent enough.
  if (expected.not_before) {
    auto t = ParseTime(a.time);
    if (!t.ok()) return Refuse(d, "bad entry: time: " + t.status().message());
    if (*t < *expected.not_before)
      return Refuse(d, "access too old: logged at " + a.time + ", before " + FormatTime(*expected.not_before));
  }

  d.allowed = true;
  d.reason = "allowed";
  return d;
}

}  // namespace ledger
