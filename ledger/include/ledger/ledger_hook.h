// RulesHook: plugs LedgerRules into the Sequencer, so every entry is checked
// against the state derived from the log at its exact position and the
// state is updated in the same LMDB transaction as the entry. It keeps a
// RulesCache, so its sequencer must be the only writer of the store's
// state while it runs.
// BatchStateStore adapts a WriteBatch, and ReaderStateStore a LogReader
// (read-only), to the StateStore interface. Request ids (the rules' r/
// keys) are not kept as state keys: BatchStateStore records each as a key
// of its access entry in the store's leaf index (WriteBatch::RecordKey,
// under RequestIdIndexKey), where it costs no random B-tree page, and both
// answer a Get for one from the access entry FindKey leads to, rebuilding
// the value the rules wrote. An r/ state key written before 2026-12-02 is
// read first (SPEC.md §10).
//
// Thread-safety: RulesHook is called on the sequencer thread only.
#ifndef LEDGER_LEDGER_HOOK_H_
#define LEDGER_LEDGER_HOOK_H_

#include <functional>

#include "ledger/rules.h"
#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "ledger/subject_state.h"

namespace ledger {

// RequestIdIndexKey returns the key under which the request id with state
// key |state_key| ("r/<accessor>/<request id>") is recorded: its SHA-256.
Hash RequestIdIndexKey(ByteView state_key);

class BatchStateStore : public StateStore {
 public:
  explicit BatchStateStore(WriteBatch& batch) : batch_(batch) {}
  StatusOr<std::optional<Bytes>> Get(ByteView key) override;
  // Put of an r/ key records the request id for the entry its value names
  // ("<index> …"; InvalidArgument if malformed).
  Status Put(ByteView key, ByteView value) override;
  Status Delete(ByteView key) override { return batch_.DeleteState(key); }

 private:
  WriteBatch& batch_;
};

// ReaderStateStore reads the committed state of a snapshot; Put fails.
class ReaderStateStore : public StateStore {
 public:
  explicit ReaderStateStore(const LogReader& reader) : reader_(reader) {}
  StatusOr<std::optional<Bytes>> Get(ByteView key) override;
  Status Put(ByteView, ByteView) override { return Status::FailedPrecondition("read-only state"); }
  Status Delete(ByteView) override { return Status::FailedPrecondition("read-only state"); }

 private:
  const LogReader& reader_;
};

class RulesHook : public EntryHook {
 public:
  // |clock| returns the log's time in Unix seconds.
  RulesHook(LedgerRules rules, std::function<int64_t()> clock) : rules_(std::move(rules)), clock_(std::move(clock)) {}

  // SetSubjectIndexer makes the hook keep the subject index (SPEC.md §14)
  // through |indexer| (not owned; null: none). Call before the sequencer
  // starts.
  void SetSubjectIndexer(SubjectIndexer* indexer) { indexer_ = indexer; }

  // Check parses the entry unless |context| is its ParsedEntry already.
  // Submitted index commitments are refused (PermissionDenied): only the
  // log appends them, in BatchEnd.
  StatusOr<std::optional<uint64_t>> Check(WriteBatch& batch, ByteView entry, const void* context) override;
  Status Applied(WriteBatch& batch, ByteView entry, const void* context, const AppendedLeaf& leaf) override;
  // With a subject indexer: its commitment when due, its wake-up time and
  // its end of batch.
  Status BatchEnd(WriteBatch& batch, uint64_t* appended) override;
  std::optional<std::chrono::steady_clock::time_point> NextWake() override;
  void BatchDone(bool committed) override;

  const LedgerRules& rules() const { return rules_; }

 private:
  LedgerRules rules_;
  std::function<int64_t()> clock_;
  SubjectIndexer* indexer_ = nullptr;
  // Holders, keys and policies between batches: the sequencer is the
  // store's only writer, and BatchDone ends each of its transactions.
  RulesCache cache_;
  // The entry parsed by the last Check, when no context was given.
  std::optional<ParsedEntry> last_parsed_;
};

}  // namespace ledger

#endif  // LEDGER_LEDGER_HOOK_H_
