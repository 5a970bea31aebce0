// Store: the log's durable state in LMDB — entries by index, the tree's
// stored hashes, a leaf-hash index, the signed checkpoint, and a key/value
// area for state derived from the entries. Everything a proof for any tree
// size needs is stored, so nothing is recomputed from the leaves.
//
// Layout (SPEC.md §7, format 4): named databases
//   bundles   u64be bundle number          -> C2SP entry bundle of 256 entries,
//                                             once all are in the log
//   entries   u64be index                  -> entry bytes, only the last,
//                                             partial bundle's entries
//   tree      u64be creating leaf index    -> 16 hashes of tree level 4*group
//             (c*16^(g+1) + 16^g - 1)         (nodes (4g, 16c + i)), zero-padded;
//                                             keys grow as chunks are created
//   leafruns  u64be run id || 6-byte prefix -> sorted (6-byte leaf-hash prefix,
//             5-byte index) pairs: a leveled LSM index of leaves [0, indexed_size)
//             and of the keys recorded for them (RecordKey); newer ones are
//             indexed in memory
//   keys      u64be index                  -> 32-byte key recorded for an entry
//                                             at or above indexed_size
//   meta      "size" | "root" | "checkpoint" | "origin" | "format" | "indexed_size" | "leafruns"
//   state     caller-defined keys          -> caller-defined values
// A node at level l is read from group l/4 by hashing at most 8 stored
// hashes, so proofs cost O(log n) reads and a bounded amount of hashing.
//
// Thread-safety: a Store may be shared. Any number of Snapshots may be used
// concurrently from any threads (each by one thread at a time). At most one
// WriteBatch exists at a time (BeginWrite fails otherwise).
#ifndef LEDGER_STORE_H_
#define LEDGER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/status.h"

namespace ledger {

struct StoreOptions {
  std::string dir;                       // created if missing
  uint64_t map_size = uint64_t{1} << 36; // 64 GiB of address space, sparse on disk
  unsigned max_readers = 1024;
  bool durable = true;                   // fsync on every commit (tests/bench may turn off)
  // New leaves are indexed by hash in memory and merged into the LMDB leaf
  // index in sorted runs once this many are pending (bounds memory and
  // amortises random B-tree writes; see store.cc).
  uint64_t leaf_index_merge_threshold = uint64_t{1} << 18;
  // A merge is spread over the commits that follow it, each writing its
  // share of the merged pairs but at least this many (small merges finish
  // in one commit).
  uint64_t leaf_index_merge_min_step = 4096;
};

// LogReader is the read-only half of the log: a consistent view at one
// tree size. Implementations are used by one thread at a time.
class LogReader : public HashReader {
 public:
  virtual uint64_t size() const = 0;
  virtual Hash root() const = 0;
  // checkpoint returns the signed checkpoint note for size(), or "" when the
  // log has never been written.
  virtual const std::string& checkpoint() const = 0;
  // GetEntry returns entry |index|. The view stays valid for the reader's
  // lifetime. NotFound if index >= size().
  virtual StatusOr<ByteView> GetEntry(uint64_t index) const = 0;
  // GetEntries returns entries [start, start + count); NotFound if beyond size().
  virtual StatusOr<std::vector<ByteView>> GetEntries(uint64_t start, uint64_t count) const = 0;
  // GetEntryBundle returns full entry bundle |n| (entries 256n ... 256n+255)
  // as stored: byte-identical to /tile/entries/N. The view stays valid for
  // the reader's lifetime. NotFound unless all 256 entries are in this view.
  virtual StatusOr<ByteView> GetEntryBundle(uint64_t n) const = 0;
  // FindLeaf returns the index of the leaf with hash |leaf_hash|, NotFound if
  // absent from this view.
  virtual StatusOr<uint64_t> FindLeaf(const Hash& leaf_hash) const = 0;
  // FindKey returns, ascending, the indexes of this view's entries for
  // which WriteBatch::RecordKey recorded |key|, and possibly others (the
  // index keeps 6-byte prefixes of keys and leaf hashes alike): the caller
  // confirms each against its entry.
  virtual StatusOr<std::vector<uint64_t>> FindKey(const Hash& key) const = 0;
  // GetState returns a derived-state value, or nullopt if the key is unset.
  virtual StatusOr<std::optional<Bytes>> GetState(ByteView key) const = 0;
  // ForEachState calls |fn| for every derived-state key with |prefix|, in
  // key order.
  virtual Status ForEachState(ByteView prefix, const std::function<void(ByteView key, ByteView value)>& fn) const = 0;
  // ScanState is ForEachState until |fn| returns false.
  virtual Status ScanState(ByteView prefix, const std::function<bool(ByteView key, ByteView value)>& fn) const = 0;
};

class WriteBatch;

// StoreDbStats is one LMDB database's page use (Store::Stats).
struct StoreDbStats {
  std::string name;
  uint64_t items = 0;  // LMDB key/value items (leafruns: blocks of pairs)
  uint64_t branch_pages = 0, leaf_pages = 0, overflow_pages = 0;
  uint64_t depth = 0;
};

// StoreStats says where the data file's pages go: for capacity planning
// and the scale benchmark (ledger-bench scale).
struct StoreStats {
  uint64_t page_size = 0;
  uint64_t file_bytes = 0;   // DiskBytes()
  uint64_t used_pages = 0;   // up to the highest page in use; the rest of the file is free
  std::vector<StoreDbStats> dbs;
  uint64_t leaf_index_runs = 0;   // runs in the on-disk leaf index (SPEC.md §7)
  uint64_t pending_leaves = 0;    // leaves indexed only in memory
  uint64_t merging_leaves = 0;    // leaves frozen for the leaf-index merge in progress (0: none)
};

class Store {
 public:
  // Open opens or creates the store in options.dir. Runs the start-up check:
  // the root recomputed from stored hashes must equal the stored root, the
  // entry count must equal the size, and the last entry must hash to the
  // stored leaf hash. Corruption with a clear message otherwise. The
  // checkpoint's signature is the caller's to check (it holds the key).
  static StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Read begins a read-only snapshot of the latest committed state.
  StatusOr<std::unique_ptr<LogReader>> Read() const;

  // BeginWrite starts the single write transaction. FailedPrecondition if
  // another WriteBatch is alive.
  StatusOr<std::unique_ptr<WriteBatch>> BeginWrite();

  // size and root of the latest commit (cheap, no transaction).
  uint64_t size() const;
  Hash root() const;
  // origin stored at first commit ("" for a new store).
  std::string origin() const;

  // DiskBytes returns the size of the LMDB data file.
  uint64_t DiskBytes() const;
  // Stats reports the pages each database uses, from a read snapshot.
  StatusOr<StoreStats> Stats() const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class WriteBatch;
};

struct AppendedLeaf {
  uint64_t index = 0;
  Hash leaf_hash{};
  bool duplicate = false;  // identical bytes were already in the log at index
};

// WriteBatch is the single writer's transaction. Nothing is visible to
// readers until Commit succeeds; destroying it uncommitted aborts it.
// Not thread-safe.
class WriteBatch {
 public:
  ~WriteBatch();
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // Append adds |entry| as the next leaf, or returns the existing index if
  // an identical entry is already in the log (or earlier in this batch).
  // InvalidArgument if the entry is empty or larger than 65535 bytes.
  StatusOr<AppendedLeaf> Append(ByteView entry);
  // AppendNew appends |entry|, whose leaf hash |leaf_hash| the caller has
  // computed and already looked up with FindLeaf (not found): the
  // sequencer's path, which must check entries between the two steps.
  StatusOr<AppendedLeaf> AppendNew(ByteView entry, const Hash& leaf_hash);

  // FindLeaf looks up a leaf hash in the log including this batch.
  StatusOr<uint64_t> FindLeaf(const Hash& leaf_hash);

  // RecordKey records that entry |index|, appended in this batch, answers
  // to |key| (a 32-byte hash the caller derives, e.g. from a request id),
  // for FindKey. At most one key per entry, in index order
  // (InvalidArgument otherwise). Keys go into the leaf index's sorted runs
  // (SPEC.md §7), so recording one costs no random B-tree page.
  Status RecordKey(const Hash& key, uint64_t index);
  // FindKey is LogReader::FindKey including this batch: candidates, which
  // the caller confirms against their entries.
  StatusOr<std::vector<uint64_t>> FindKey(const Hash& key);
  // GetEntry reads an entry, including ones appended in this batch.
  StatusOr<Bytes> GetEntry(uint64_t index);

  uint64_t size() const;   // including this batch
  Hash root() const;       // of size()

  // Derived state, written in the same transaction as the entries.
  StatusOr<std::optional<Bytes>> GetState(ByteView key);
  Status PutState(ByteView key, ByteView value);
  Status DeleteState(ByteView key);

  // SetOrigin records the log origin (first commit).
  Status SetOrigin(const std::string& origin);
  // SetCheckpoint stores the signed checkpoint for size()/root().
  Status SetCheckpoint(const std::string& signed_note);

  // Commit makes the batch durable (fsync unless options.durable is false).
  // ResourceExhausted if the map is full (nothing is written); IOError on
  // other failures. The batch is finished either way.
  Status Commit();

  struct Impl;

 private:
  friend class Store;
  explicit WriteBatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ledger

#endif  // LEDGER_STORE_H_
