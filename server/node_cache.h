// NodeCache: a fixed-size cache, shared by all of ledgerd's request
// threads, of the hashes of complete subtrees of the log. Such a hash never
// changes once the subtree is complete (the log only appends), so a cached
// hash is valid forever and needs no invalidation.
//
// Why: the store keeps one tree level in four, so every proof node at
// another level is recomputed from up to 8 stored hashes (one LMDB lookup
// and up to 7 SHA-256 node hashes); the upper levels of every inclusion
// proof are the same few thousand nodes. Measured with callgrind on a
// 1,000,000-entry log: ~70 % of an inclusion proof request's instructions
// were in the store's ReadNodes, mostly rebuilding those nodes.
//
// The table is direct-mapped (2^slots_log2 slots of ~56 bytes, allocated
// once), so memory does not grow with the log; a colliding node replaces
// the slot's previous one. Only nodes at level >= min_level are cached
// (the lower levels are different for nearly every request).
//
// Thread-safety: Get and Put may be called concurrently from any threads;
// each slot is a seqlock (a reader that races a writer sees a miss).
#ifndef LEDGER_SERVER_NODE_CACHE_H_
#define LEDGER_SERVER_NODE_CACHE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "ledger/merkle.h"

namespace ledgerd {

class NodeCache {
 public:
  explicit NodeCache(int slots_log2 = 16, int min_level = 4);

  int min_level() const { return min_level_; }
  // Get copies the cached hash of |id| into |out|: false if it is not cached.
  bool Get(const ledger::NodeId& id, ledger::Hash* out) const;
  // Put caches |hash| as the hash of the complete subtree |id| (ignored
  // below min_level or while another thread writes the same slot).
  void Put(const ledger::NodeId& id, const ledger::Hash& hash);

 private:
  struct Slot {
    std::atomic<uint32_t> seq{0};  // odd while written
    std::atomic<uint32_t> level{0};  // level + 1; 0: empty
    std::atomic<uint64_t> index{0};
    std::atomic<uint64_t> words[4] = {};
  };
  Slot& SlotFor(const ledger::NodeId& id) const;

  const int slots_log2_;
  const int min_level_;
  std::unique_ptr<Slot[]> slots_;
};

// CachedHashReader reads complete subtree hashes through |cache|, asking
// |base| only for the nodes the cache lacks (and caching them).
// Thread-safety: as |base|; the cache may be shared.
class CachedHashReader : public ledger::HashReader {
 public:
  CachedHashReader(const ledger::HashReader& base, NodeCache* cache) : base_(base), cache_(cache) {}
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<ledger::Hash>* out) const override;

 private:
  const ledger::HashReader& base_;
  NodeCache* cache_;
};

}  // namespace ledgerd

#endif  // LEDGER_SERVER_NODE_CACHE_H_
