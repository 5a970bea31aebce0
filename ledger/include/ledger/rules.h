// LedgerRules: the state machine of the access ledger. Given the state
// derived from the log so far, it decides whether an entry may be appended
// next (Check) and how it changes the state (Apply). Pure: the state lives
// behind StateStore, which the server backs with LMDB (same transaction as
// the entries) and the verifier with memory, so both derive the same state
// from the same log by the same code.
//
// State keys (values are short text; SPEC.md §10):
//   h/<holder>                      "<signing key b64url> <vrf key b64url> <index>"
//   k/<holder>/<accessor>/<key>     "A <index>" authorised | "R <index>" revoked
//   p/<holder>/<accessor>           policy in force: "<version> <index>\n<PURPOSE> <CAT>,<CAT>\n..."
//   r/<accessor>/<request id>       "<index> <hex SHA-256 of the payload>"
// (The subject index's keys, t/, c/, y/, q/ and i/, are ledger/subject_state.h's.)
//
// Refusals name the rule at the start of the message ("undisclosed use: …",
// "unauthorised key: …", …) and carry the status code the HTTP API maps:
// PermissionDenied (403) for authorisation and disclosed-use rules,
// AlreadyExists (409) for a reused request id, FailedPrecondition (409) for a
// policy version that does not increase or a revoked key re-authorised,
// InvalidArgument (400) for a time outside the allowed skew.
//
// Thread-safety: LedgerRules is immutable; a StateStore is used by one
// thread at a time.
#ifndef LEDGER_RULES_H_
#define LEDGER_RULES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "ledger/bytes.h"
#include "ledger/record.h"
#include "ledger/status.h"

namespace ledger {

class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual StatusOr<std::optional<Bytes>> Get(ByteView key) = 0;
  virtual Status Put(ByteView key, ByteView value) = 0;
  // Delete removes |key| (OK if it was unset). The rules never delete; the
  // subject index does (SPEC.md §10, `y/` keys).
  virtual Status Delete(ByteView key) = 0;
};

// RequestIdStateKey returns the state key of an access's request id:
// "r/<accessor>/<request id>".
std::string RequestIdStateKey(const std::string& accessor, const std::string& request_id);

// MemoryStateStore keeps the state in a sorted map (verifier, tests).
class MemoryStateStore : public StateStore {
 public:
  StatusOr<std::optional<Bytes>> Get(ByteView key) override;
  Status Put(ByteView key, ByteView value) override;
  Status Delete(ByteView key) override;
  const std::map<Bytes, Bytes, std::less<>>& data() const { return data_; }

 private:
  std::map<Bytes, Bytes, std::less<>> data_;
};

struct RulesOptions {
  Bytes log_public_key;            // signs holder entries
  int64_t max_clock_skew = 300;    // seconds between an access's time and the log's clock
  bool check_clock = true;         // false when replaying history
};

// PolicyInForce is a decoded p/ value.
struct PolicyInForce {
  uint64_t version = 0;
  uint64_t index = 0;  // leaf index of the policy entry
  std::map<std::string, std::set<std::string>> purposes;
};

// HolderInState is a decoded h/ value.
struct HolderInState {
  Bytes signing_key;
  Bytes vrf_key;
  uint64_t index = 0;
};

class LedgerRules;

// RulesCache keeps the decoded h/, k/ and p/ values (present or unset) the
// rules read, between Checks and across write transactions, for a writer
// that is the only one to change the state (ledgerd's sequencer through
// RulesHook). Why: every access reads its holder, key and policy, which
// rarely change, and decoding them cost more than the rest of its Check.
// A key that the transaction in progress writes (Apply) is dropped and read
// from the state until BatchDone, so the cache never holds a value that the
// transaction may yet abort. Values found stay valid until BatchDone; there
// the cache starts again empty once it holds kMaxEntries or more.
// Thread-safety: one thread at a time.
class RulesCache {
 public:
  static constexpr size_t kMaxEntries = 4096;

  // BatchDone ends a write transaction, committed or not: the keys it wrote
  // are read from the state again next time.
  void BatchDone();
  // Clear forgets every value (e.g. after the state changed elsewhere).
  void Clear();

 private:
  friend class LedgerRules;
  StatusOr<const std::optional<HolderInState>*> Holder(StateStore& state, const std::string& holder);
  StatusOr<const std::optional<PolicyInForce>*> Policy(StateStore& state, const std::string& holder,
                                                       const std::string& accessor);
  StatusOr<char> Key(StateStore& state, const std::string& holder, const std::string& accessor, ByteView key);
  // Wrote drops |state_key| until BatchDone.
  void Wrote(const std::string& state_key);

  std::map<std::string, std::optional<HolderInState>, std::less<>> holders_;  // by h/ key
  std::map<std::string, std::optional<PolicyInForce>, std::less<>> policies_;  // by p/ key
  std::map<std::string, char, std::less<>> keys_;                             // by k/ key
  std::set<std::string, std::less<>> written_;
  // A value read around the cache (a key written in this transaction).
  std::optional<HolderInState> holder_scratch_;
  std::optional<PolicyInForce> policy_scratch_;
};

class LedgerRules {
 public:
  explicit LedgerRules(RulesOptions options) : options_(std::move(options)) {}

  // Check decides whether |entry| may be appended now. Returns nullopt to
  // append it, or the index of an earlier access with the same accessor,
  // request id and payload (an idempotent retry). |now| is the log's clock
  // (Unix seconds). |position| is the leaf index the entry would get, when
  // the caller knows it: an index commitment must be signed by the log key
  // and (when |position| is given) have size == position. Errors as in the
  // file comment.
  // With |cache| (not owned; null: none), holders, keys and policies are
  // read through it; the decision is the same.
  StatusOr<std::optional<uint64_t>> Check(StateStore& state, const ParsedEntry& entry, int64_t now,
                                          std::optional<uint64_t> position = std::nullopt,
                                          RulesCache* cache = nullptr) const;

  // Apply records the effect of |entry|, appended at |index|. An index
  // commitment changes no rules state (the subject index is kept by
  // ledgerd's SubjectIndexer); one whose size is not |index| is refused
  // (InvalidArgument). |cache| (null: none) is told which of its keys
  // this writes; pass the one given to Check.
  Status Apply(StateStore& state, const ParsedEntry& entry, uint64_t index, RulesCache* cache = nullptr) const;

  // Lookups for callers (server, verifier, gate).
  static StatusOr<std::optional<HolderInState>> GetHolder(StateStore& state, const std::string& holder);
  static StatusOr<std::optional<PolicyInForce>> GetPolicy(StateStore& state, const std::string& holder,
                                                          const std::string& accessor);
  // KeyStatus returns 'A' (authorised), 'R' (revoked) or 0 (never seen).
  static StatusOr<char> KeyStatus(StateStore& state, const std::string& holder, const std::string& accessor,
                                  ByteView key);

  // CheckDisclosed returns OK if |policy| covers |purpose| and every
  // category; PermissionDenied "undisclosed use: …" otherwise.
  static Status CheckDisclosed(const PolicyInForce& policy, const AccessRecord& access);

  const RulesOptions& options() const { return options_; }

 private:
  RulesOptions options_;
};

}  // namespace ledger

#endif  // LEDGER_RULES_H_
