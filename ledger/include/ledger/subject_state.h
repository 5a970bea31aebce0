// Subject index state in ledgerd (SPEC.md §10, §14): each tag's list of
// access indices and each (holder, accessor)'s policy history in LMDB's
// state database, the tree's node encoding (its nodes live in a
// SubjectTreeStore, subject_tree.h), and SubjectIndexer, which keeps them
// in the sequencer's transactions and appends the log-signed index
// commitments.
//
// State keys (binary; the names' characters exclude '/' and the tag and
// integers have fixed widths, so every prefix scan is exact):
//   c/ u64be(index)                           "" or u64be(previous): access
//                                             entry |index| is covered by a
//                                             commitment; the previous
//                                             covered access of its tag, ""
//                                             for the tag's first
//   y/ u64be(index)                           tag: access entry |index| is not
//                                             yet covered by a commitment
//   q/<holder>/<accessor>/ u64be(index)       "<version>": policy entry |index|
//   i/last                                    "<index> <subjects> <accesses>" of
//                                             the latest index commitment
// Tree nodes (in the SubjectTreeStore; in the state as t/ keys until
// storage format 5, and in the replay's state):
//   t/ u8(b) prefix[0 .. b) u8(prefix[b] masked) u8(depth - 8b), b = depth/8:
//                                             0x00 || hash (inner) or 0x01 ||
//                                             tag || value || u64be(last
//                                             index) (leaf; its hash is
//                                             recomputed on read)
// A tag's covered accesses are found from its leaf's last index, walking
// the c/ values back. q/ and y/ keys are written with their entries; a
// commitment turns the y/ keys it covers into c/ keys. Why: y/ and c/ keys
// land at the end of their ranges (indices increase), so a batch of
// accesses, and a commitment's lists, dirty a few LMDB pages instead of
// one random page per access; a leaf written anyway carries its list's
// head. t/ keys group a path's nodes by tiles of 8 levels, so that a
// persist of the tree dirties a few pages per access rather than one per
// tree level. (Until 2026-12-02 the lists were x/ tag u64be(index) keys,
// one random page per access, and leaves had no last index;
// SubjectIndexer::Recover migrates them.)
//
// Thread-safety: the node stores are used by one thread at a time, like the
// batch or reader under them. SubjectIndexer is called on the sequencer
// thread only (through RulesHook), except Recover, called before the
// sequencer starts.
#ifndef LEDGER_SUBJECT_STATE_H_
#define LEDGER_SUBJECT_STATE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/rules.h"
#include "ledger/store.h"
#include "ledger/subject_index.h"
#include "ledger/subject_tree.h"

namespace ledger {

// Key and value encodings of the state above.
Bytes SubjectNodeKey(unsigned depth, const SubjectTag& prefix);
Bytes EncodeSubjectNode(const SubjectNode& node);
// DecodeSubjectNode recomputes a leaf's hash; Corruption if malformed.
StatusOr<SubjectNode> DecodeSubjectNode(ByteView value);
Bytes SubjectChainKey(uint64_t index);
extern const char kSubjectChainPrefix[];  // "c/"
Bytes PendingAccessKey(uint64_t index);
extern const char kPendingAccessPrefix[];  // "y/"
Bytes PolicyHistoryPrefix(const std::string& holder, const std::string& accessor);
Bytes PolicyHistoryKey(const std::string& holder, const std::string& accessor, uint64_t index);
extern const char kLastCommitmentKey[];  // "i/last"

// The layout before 2026-12-02, which SubjectIndexer::Recover migrates: a
// covered access was the key x/ tag u64be(index), and a leaf was stored
// without its last index (DecodeSubjectNode then gives kUnknownLastIndex).
extern const char kLegacySubjectAccessPrefix[];  // "x/"
Bytes LegacySubjectAccessKey(const SubjectTag& tag, uint64_t index);
constexpr uint64_t kUnknownLastIndex = ~uint64_t{0};

// LastCommitment is the decoded i/last value.
struct LastCommitment {
  uint64_t index = 0;  // leaf index of the commitment (= its size)
  uint64_t subjects = 0;
  uint64_t accesses = 0;
};
StatusOr<std::optional<LastCommitment>> ReadLastCommitment(StateStore& state);

// BatchSubjectNodeStore keeps the tree in a write batch's state as t/ keys:
// storage format 4's layout, which SubjectIndexer::Recover migrates.
class BatchSubjectNodeStore : public SubjectNodeStore {
 public:
  explicit BatchSubjectNodeStore(WriteBatch& batch) : batch_(batch) {}
  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override;
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override;
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override;

 private:
  WriteBatch& batch_;
};

// StateSubjectNodeStore keeps the tree in any StateStore (the replay into
// a MemoryStateStore).
class StateSubjectNodeStore : public SubjectNodeStore {
 public:
  explicit StateSubjectNodeStore(StateStore& state) : state_(state) {}
  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override;
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override;
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override;

 private:
  StateStore& state_;
};

// SubjectTreeChange is what a commitment did to the tree.
struct SubjectTreeChange {
  Hash root{};
  uint64_t new_subjects = 0, new_accesses = 0;
  // Per tag of |pending| (in its order): the tag's last covered access
  // index before, nullopt for a tag new to the index.
  std::vector<std::optional<uint64_t>> last_before;
};

// UpdateSubjectTree adds |pending| (tag -> its new access indices,
// ascending, all above those already in the index) to the tree in |tree|,
// writing each changed leaf with its new last index. InvalidArgument if an
// index is not above the tag's last.
StatusOr<SubjectTreeChange> UpdateSubjectTree(SubjectNodeStore& tree,
                                              const std::map<SubjectTag, std::vector<uint64_t>>& pending);

// CommitSubjectAccesses adds |pending| (tag -> its new access indices,
// ascending, all above those already in the index) to the tree in |nodes|,
// moves their y/ keys to c/ keys in |state| and records a commitment at
// |position| in |state| (i/last). |nodes| must keep leaves' last_index
// (the t/ stores above do; MemorySubjectNodeStore does not). Returns the
// commitment's fields (time left empty). Shared by ledgerd and the replay,
// so both write the same state.
StatusOr<IndexRecord> CommitSubjectAccesses(SubjectNodeStore& nodes, StateStore& state,
                                            const std::map<SubjectTag, std::vector<uint64_t>>& pending,
                                            uint64_t position);

// SubjectIndexReplay derives the subject index state (c/, y/, q/, t/ and
// i/last keys) from the log's entries, fed in order, into |state|, exactly as
// ledgerd writes it: rebuilding the state from the log alone. Not
// thread-safe.
class SubjectIndexReplay {
 public:
  explicit SubjectIndexReplay(StateStore& state) : state_(state) {}
  // Add feeds the (valid, parsed) entry at |index|. For an index
  // commitment it returns Corruption if the commitment's fields differ
  // from the rebuilt ones.
  Status Add(const ParsedEntry& entry, uint64_t index);

 private:
  StateStore& state_;
  std::map<SubjectTag, std::vector<uint64_t>> pending_;
};

// CoveredSubjectAccesses returns the indices of |tag|'s access entries
// covered by the latest commitment in |reader|'s snapshot, ascending (empty
// for a tag not in the index): from its leaf's last index in |tree| (that
// commitment's tree) back along the c/ values. Corruption if the list is not exactly the leaf's value (count
// and chain), a c/ key is missing or malformed, or the leaf has no last
// index (not migrated).
StatusOr<std::vector<uint64_t>> CoveredSubjectAccesses(const LogReader& reader, SubjectNodeStore& tree,
                                                       const SubjectTag& tag);

// SetSubjectTreeVersion sets |view| to the tree of the latest commitment in
// |reader|'s snapshot (0 without one). The reader must have been opened
// after the view was made (FailedPrecondition otherwise).
Status SetSubjectTreeVersion(SubjectTreeView& view, const LogReader& reader);

// PendingSubjectAccesses returns the indices of |tag|'s access entries not
// yet covered by a commitment in |reader|'s snapshot (its y/ keys),
// ascending, at most |max| of them. Scans every pending access (at most
// about one commitment interval's worth). Corruption for a malformed key or
// value.
StatusOr<std::vector<uint64_t>> PendingSubjectAccesses(const LogReader& reader, const SubjectTag& tag, size_t max);

// PolicyAt returns the leaf index of the policy entry of (holder, accessor)
// in force just before entry |index| (the greatest policy index below it),
// or nullopt if there was none.
StatusOr<std::optional<uint64_t>> PolicyAt(const LogReader& reader, const std::string& holder,
                                           const std::string& accessor, uint64_t index);

struct SubjectIndexerOptions {
  // A commitment is appended at the end of the first batch at least this
  // long after the first access not yet committed.
  std::chrono::milliseconds interval{1000};
  // ... or at the end of the first batch that leaves at least this many
  // accesses not yet committed. Why: this bounds a commitment's work in the
  // sequencer's batch and the node versions it adds to the
  // SubjectTreeStore's memory. (Until 2026-12-02 the tree was updated in
  // the batch's LMDB transaction, and larger values shared more of its
  // pages; the tree is now persisted apart, RELIABILITY.md.) 128, not
  // 256: a commitment's node writes then stay below the persister's
  // SubjectTreeOptions::max_persist_writes as the tree grows, so its
  // largest transaction, and LMDB's buffers for it, stop growing with the
  // log (256 reached 4,661 writes at 1.9M entries; RELIABILITY.md).
  // ledgerd: --index-max-accesses.
  size_t max_accesses = 128;
  // The committed tree's inner-node hashes and empty subtrees at depths
  // 0..node_cache_depth (at most 20) are kept in memory between
  // commitments, in a fixed table of 33 bytes per possible node (4.3 MB
  // for 16, allocated at the first commitment); negative: none. Why: a
  // commitment reads both children of every node on its tags' paths, so
  // without it the LMDB reads per access grow with the tree's depth
  // (about 20 at a million subjects); with it only those below the cached
  // depths are read. Leaves are not cached (they are read from the tree).
  int node_cache_depth = 16;
};

// SubjectIndexer keeps the subject index. Accesses appended since the last
// commitment are kept in memory (and rebuilt by Recover from the entries
// after it); the tree is updated, all pending tags at once, only in the
// batch that appends the next commitment.
class SubjectIndexer {
 public:
  // |log_key| signs the commitments and |tree| keeps the tree; both must
  // outlive the indexer.
  SubjectIndexer(const NoteSigner* log_key, SubjectTreeStore* tree, SubjectIndexerOptions options);
  ~SubjectIndexer();

  // Recover first moves tree nodes stored under the layout before tiles
  // (s/ keys) to their t/ keys and the lists of the layout before
  // 2026-12-02 (x/ keys) to c/ keys and leaves' last indices (SPEC.md
  // §10), and the t/ keys of storage format 4 into the SubjectTreeStore.
  // It then recomputes the tree's versions after the persisted one up to
  // the latest commitment from the log (Corruption if a root differs, or
  // if the persisted tree is ahead of the log), rebuilds the pending
  // accesses from the entries after the last commitment and writes their
  // y/ keys where missing (a data directory from before y/ keys existed). For a log without any commitment (also
  // one written before the subject index existed) it also writes the q/
  // keys of all entries, in the same transaction. Call before the sequencer
  // starts.
  Status Recover(Store& store);

  // Applied records entry |index| of the batch (y/ or q/ key; pending).
  Status Applied(WriteBatch& batch, const ParsedEntry& entry, uint64_t index);
  // BatchEnd appends a commitment if one is due (see options); |rules| and
  // |now| (Unix seconds) check it like any entry.
  Status BatchEnd(WriteBatch& batch, const LedgerRules& rules, int64_t now, uint64_t* appended);
  std::optional<std::chrono::steady_clock::time_point> NextWake() const;
  void BatchDone(bool committed);

  // set_interval changes the commitment interval; thread-safe, taking
  // effect at the next batch (tests use it to force a commitment).
  void set_interval(std::chrono::milliseconds interval) { interval_ms_ = interval.count(); }

  // migrated_lists returns the number of subjects whose lists the last
  // Recover moved from the layout before 2026-12-02 (0: none were left).
  uint64_t migrated_lists() const { return migrated_lists_; }
  // moved_nodes returns the number of tree nodes the last Recover moved
  // from the log's state (storage format 4) to the SubjectTreeStore.
  uint64_t moved_nodes() const { return moved_nodes_; }

  // pending_accesses returns the number of accesses not yet committed.
  // Not synchronised: call it on the sequencing thread, or after an append
  // whose answer came after the batch of interest (the store shows a batch
  // before the indexer has settled it).
  size_t pending_accesses() const { return pending_count_ + batch_pending_.size(); }

 private:
  std::chrono::milliseconds interval() const { return std::chrono::milliseconds(interval_ms_.load()); }

  // NodeCache: see SubjectIndexerOptions::node_cache_depth (subject_state.cc).
  struct NodeCache;
  class CachedNodeStore;

  const NoteSigner* log_key_;
  SubjectTreeStore* tree_;
  std::atomic<int64_t> interval_ms_;
  size_t max_accesses_;
  // Committed to the log, not yet to the index: tag -> indices ascending.
  std::map<SubjectTag, std::vector<uint64_t>> pending_;
  size_t pending_count_ = 0;
  std::optional<std::chrono::steady_clock::time_point> first_pending_;
  // Of the batch in progress.
  std::vector<std::pair<SubjectTag, uint64_t>> batch_pending_;
  std::optional<std::chrono::steady_clock::time_point> batch_first_;
  bool batch_commits_ = false;  // this batch's BatchEnd tried (or made) a commitment
  std::optional<uint64_t> published_;  // the tree version this batch published
  // After a failed commitment, wait an interval before trying again.
  std::optional<std::chrono::steady_clock::time_point> retry_at_;
  int node_cache_depth_;
  uint64_t migrated_lists_ = 0;
  uint64_t moved_nodes_ = 0;
  std::unique_ptr<NodeCache> node_cache_;  // made at the first commitment
};

}  // namespace ledger

#endif  // LEDGER_SUBJECT_STATE_H_
