// The audit: a full replay of the access ledger that trusts nothing the log
// operator says. AuditReplay folds the log's entries, in order, into
//   - the tree: a CompactRange over HashLeaf(entry), whose root must equal
//     the signed checkpoint's;
//   - the derived state: ledger::LedgerRules over an AuditStateStore, the
//     same code the server runs (holders, authorised and revoked keys,
//     policies in force, request ids), with the clock check off because
//     history is replayed long after it was written; request ids are kept
//     as fingerprints and settled exactly by reading the entry again
//     (request_ids.h), ~25 bytes per access up to a memory budget
//     (SetRequestIdMemory) and spilled to a temporary file beyond it;
//   - the subject index (SPEC.md §14): every access entry's leaf index in
//     its tag's chain, in a MemorySubjectNodeStore tree, updated in one
//     batch per commitment as ledgerd does; every index commitment entry
//     must be signed by the log key and equal the rebuilt index at its
//     position (size, root, subjects, accesses);
//   - the report: entries by kind, accesses by accessor x purpose x
//     category, and every violation.
// Violation policy: a holder, accessor or policy entry that breaks a rule is
// reported and not applied; an access that breaks a rule is reported and its
// request id is still recorded, so a later reuse is caught too. An access
// whose time is more than the allowed skew before the latest access time
// seen is a "time runs backwards" violation.
//
// The replay state can be saved (SaveState) and resumed (LoadState), so an
// incremental audit replays only new entries and ends with the same report
// as a full one. The state file (format 3) holds the subject index as every
// tag's value (LoadState rebuilds the tree and checks its root) and the
// request ids as fingerprints with the fingerprint key (format 2 held the
// request ids' state keys; it is still read).
//
// `ledger-verify audit --json` prints one JSON object (stable; other tools
// and the dishonest-log fixtures parse it). It depends only on the log and
// the checkpoint audited, so an incremental audit's output equals a full
// audit's byte for byte:
//
//   {"checkpoint": {"origin": "<origin>", "size": N, "root": "<base64>"},
//    "witnesses": {"quorum": K, "listed": N, "valid": n,       // with --witness
//                  "cosigned": [{"witness": "<vkey>", "timestamp": T}],
//                  "not_cosigned": ["<vkey>", ...]},
//    "entries": N,
//    "entries_by_kind": {"holder": n, "accessor": n, "policy": n,
//                        "access": n, "index": n, "invalid": n},
//    "accesses": {"<accessor>": {"<PURPOSE>": {"<CATEGORY>": count}}},
//    "subject_index": {"commitments": n, "last_commitment": I | null,
//                      "subjects": n, "accesses": n,      // rebuilt, at the
//                      "root": "<base64>"},               // checkpoint's size
//    "violations": [
//      {"rule": "<rule>", "index": I, "detail": "<why>",
//       "entry": "<base64 entry bytes>",
//       "inclusion": ["<base64 hash>", ...],   // RFC 9162, bottom-up
//       "checkpoint": "<signed checkpoint note, verbatim>",
//       "policy": {"index": P, "entry": "<base64>",
//                  "inclusion": [...]},         // undisclosed use and
//                                               // policy version only
//       "expected": {"size", "root", "subjects", "accesses"},  // index
//       "found": {"size", "root", "subjects", "accesses"}      // commitment
//      }, ...],
//    "verified": true | false}
//
// If the checkpoint itself does not verify (another log's key, a bad
// signature, a bad cosignature by a listed witness, or fewer than --quorum
// listed witnesses cosigned), nothing is replayed and the output is
// {"verified": false, "error": "<why>"} (exit 1), with "witnesses" as above
// when only the quorum was not met.
//
// "invalid" counts entries that do not parse or whose signature fails.
// "accesses" counts every access entry that parsed with a valid signature,
// including the ones that broke a rule. Violations are in log order. The
// inclusion proofs are computed from the log's tiles and checked against the
// checkpoint; if the tiles do not yield a valid proof, "inclusion" is empty
// and "inclusion_error" says why. Rules:
//   "malformed entry"     the entry does not parse (SPEC.md §8-§9)
//   "bad signature"       the envelope signature does not verify
//   "unknown holder", "unauthorised key", "revoked key", "undisclosed use",
//   "request id reused", "policy version"
//                         the rules of SPEC.md §10 (a request id logged
//                         twice with the same payload is "request id reused"
//                         too: the log must answer a retry with the original)
//   "time runs backwards" an access time more than --max-skew seconds before
//                         the latest access time seen
//   "index commitment"    an index commitment whose size is not its own
//                         index, or whose root, subjects or accesses differ
//                         from the index rebuilt from the access entries
//                         before it ("expected": rebuilt, "found": the
//                         entry's; a commitment that omits or reorders an
//                         access has another root). An index entry not
//                         signed by the log key is "unauthorised key".
//                         Every access entry that parses with a valid
//                         signature is indexed, even one that broke a rule.
//   "root mismatch"       the entries do not hash to the signed root; "index"
//                         is the tree size, "entry" is empty and
//                         "computed_root" holds the root of the entries
//   "fork"                (incremental) the checkpoint is not consistent with
//                         the stored one; "index" is the stored size,
//                         "old_checkpoint" the stored checkpoint,
//                         "consistency" the proof computed from the tiles
//
// Thread-safety: an AuditReplay is used by one thread (the caller of
// StreamBundles' consume); the entry parsing and signature checks it is
// fed are done on the stream's worker threads.
#ifndef LEDGER_VERIFIER_AUDIT_H_
#define LEDGER_VERIFIER_AUDIT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cli.h"
#include "fetcher.h"
#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/record.h"
#include "ledger/rules.h"
#include "ledger/status.h"
#include "ledger/subject_index.h"
#include "log_reader.h"
#include "request_ids.h"

namespace verifier {

// IndexFields are the fields of an index commitment (SPEC.md §14): what a
// commitment says, or what the replay rebuilt at its position.
struct IndexFields {
  uint64_t size = 0;
  ledger::Hash root{};
  uint64_t subjects = 0;
  uint64_t accesses = 0;
  bool operator==(const IndexFields& o) const {
    return size == o.size && root == o.root && subjects == o.subjects && accesses == o.accesses;
  }
};

struct Violation {
  std::string rule;
  uint64_t index = 0;
  std::string detail;
  ledger::Bytes entry;                      // empty for "root mismatch" and "fork"
  std::optional<uint64_t> policy_index;     // the policy in force, when it is evidence
  std::string old_checkpoint;               // "fork"
  std::vector<ledger::Hash> consistency;    // "fork"
  std::optional<ledger::Hash> computed_root;  // "root mismatch"
  std::optional<IndexFields> index_expected;  // "index commitment": rebuilt by the replay
  std::optional<IndexFields> index_found;     // "index commitment": what the entry says
};

// SubjectIndexSummary is the rebuilt subject index at the end of the replay.
struct SubjectIndexSummary {
  uint64_t commitments = 0;                  // index entries seen
  std::optional<uint64_t> last_commitment;  // index of the latest one
  uint64_t subjects = 0;
  uint64_t accesses = 0;
  ledger::Hash root{};
};

// AccessCounts: accessor -> purpose -> category -> accesses.
using AccessCounts = std::map<std::string, std::map<std::string, std::map<std::string, uint64_t>>>;

class AuditReplay {
 public:
  // |witness_policy| is the canonical form of the --witness / --quorum
  // settings (WitnessPolicyString), saved in the state and compared on load.
  AuditReplay(ledger::Bytes log_public_key, int64_t max_skew, std::string witness_policy = "none");

  // Feed replays entry |index| (which must be size()). |parsed| is
  // ledger::ParseEntry(entry), computed by the caller (on worker threads).
  // Violations are recorded, not returned; an error means the replay
  // cannot go on (a corrupt saved state).
  ledger::Status Feed(uint64_t index, ledger::ByteView entry, const ledger::Hash& leaf_hash,
                      const ledger::StatusOr<ledger::ParsedEntry>& parsed);

  // SetEntrySource gives the replay a way to read entry |index| of the
  // audited tree again, proven to be in it (the caller checks an inclusion
  // proof against the checkpoint): request ids are kept as fingerprints,
  // and a matching fingerprint is settled exactly by the entry it points
  // to. Without a source, a matching fingerprint is an Internal error.
  void SetEntrySource(std::function<ledger::StatusOr<ledger::Bytes>(uint64_t index)> source);

  // SetRequestIdMemory bounds the memory of the request-id set (beyond it,
  // ids spill to an unlinked temporary file in |spill_dir|, or $TMPDIR, or
  // /tmp; request_ids.h). Call it before Feed and LoadState.
  void SetRequestIdMemory(uint64_t budget, const std::string& spill_dir);
  const RequestIdSet& request_ids() const { return state_.ids(); }

  uint64_t size() const { return range_.size(); }
  ledger::Hash Root() const { return range_.Root(); }
  uint64_t entries() const { return entries_; }
  const std::map<std::string, uint64_t>& entries_by_kind() const { return by_kind_; }
  const AccessCounts& accesses() const { return accesses_; }
  const std::vector<Violation>& violations() const { return violations_; }
  int64_t max_skew() const { return max_skew_; }
  // SubjectIndex applies the pending index updates and summarises the
  // rebuilt subject index (an error only from the index store).
  ledger::StatusOr<SubjectIndexSummary> SubjectIndex();

  // SaveState writes the replay (with the checkpoint it ended at, the log
  // key that signed it and the witness policy it met) to |path| atomically:
  // temp file, fsync, rename.
  // The subject index is saved as its counters, root and every tag's value.
  ledger::Status SaveState(const std::string& path, const std::string& log_vkey, const std::string& checkpoint_note);
  // LoadState reads a state file written by SaveState for the same log key,
  // skew and witness policy (a state without a witness policy line was
  // built without --witness). *checkpoint_note is the checkpoint it ended
  // at. NotFound if there is no file; InvalidArgument if it belongs to
  // another log key, skew or witness policy; Corruption if it does not
  // parse.
  ledger::Status LoadState(const std::string& path, const std::string& log_vkey, std::string* checkpoint_note);

 private:
  void AddViolation(std::string rule, uint64_t index, std::string detail, ledger::ByteView entry,
                    std::optional<uint64_t> policy_index = std::nullopt);
  // IndexAccess records an access entry at |index| in the rebuilt subject
  // index (in the pending updates until the next commitment).
  ledger::Status IndexAccess(const ledger::SubjectTag& tag, uint64_t index);
  // FlushIndex applies the pending updates to the tree.
  ledger::Status FlushIndex();
  // ApplyRules applies |e| at |index| to the rules state; a holder,
  // accessor or policy entry empties the policy cache.
  ledger::Status ApplyRules(const ledger::ParsedEntry& e, uint64_t index);
  // CheckCommitment compares the index commitment at |index| with the
  // rebuilt index.
  ledger::Status CheckCommitment(const ledger::ParsedEntry& e, uint64_t index, ledger::ByteView entry);

  ledger::LedgerRules rules_;
  int64_t max_skew_;
  std::string witness_policy_;
  ledger::CompactRange range_;
  AuditStateStore state_;
  // The policy in force for (holder, accessor, signing key) triples whose
  // last access passed every rule, while no holder, accessor or policy
  // entry has been applied since: an access with a new request id by the
  // same triple then needs only CheckDisclosed. Keyed by
  // holder '\n' accessor '\n' key; a few entries per party.
  std::unordered_map<std::string, ledger::PolicyInForce> policy_cache_;
  std::string key_scratch_;  // Feed's lookup keys, reused
  std::optional<int64_t> max_access_time_;
  uint64_t entries_ = 0;
  std::map<std::string, uint64_t> by_kind_;
  AccessCounts accesses_;
  std::vector<Violation> violations_;
  // The subject index rebuilt by replay: the tree, the (tag, entry index)
  // of every access since the last commitment (applied in one batch, as
  // ledgerd does), and its counters.
  static constexpr size_t kMaxPendingIndexUpdates = 65536;
  ledger::MemorySubjectNodeStore index_;
  std::vector<std::pair<ledger::SubjectTag, uint64_t>> index_pending_;
  SubjectIndexSummary index_summary_;
};

// AuditReport is what the audit prints.
struct AuditReport {
  SignedCheckpoint checkpoint;
  WitnessPolicy witnesses;  // reported when active
  uint64_t entries = 0;
  std::map<std::string, uint64_t> entries_by_kind;
  AccessCounts accesses;
  std::vector<Violation> violations;
  SubjectIndexSummary subject_index;
  // Run facts for the human report (not in the JSON, which depends only on
  // the log): where the replay started, how long it took.
  uint64_t replayed_from = 0;
  double replay_seconds = 0;
  std::string resumed_from;  // "" or "state FILE at size N"
};

// ViolationJson renders one violation with its evidence, computing the
// inclusion proofs from the log's tiles (|reader| at the checkpoint's size)
// and fetching the policy entry in force.
ordered_json ViolationJson(const Violation& v, const SignedCheckpoint& checkpoint, Fetcher& fetcher,
                           const TileHashReader& reader);

// AuditReportJson renders the report as documented in the file comment.
ordered_json AuditReportJson(const AuditReport& report, Fetcher& fetcher);
// AuditReportText renders the human report.
std::string AuditReportText(const AuditReport& report, const ordered_json& report_json);

// WitnessPolicyString is the canonical form of a witness policy for the
// audit state: "none" without --witness, else
// "quorum <K> <vkey> <vkey>..." (the distinct witnesses, sorted).
std::string WitnessPolicyString(const WitnessPolicy& policy);

// kAuditCommand is `ledger-verify audit`.
extern const Command kAuditCommand;

}  // namespace verifier

#endif  // LEDGER_VERIFIER_AUDIT_H_
