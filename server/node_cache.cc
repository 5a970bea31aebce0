#include "node_cache.h"

#include <cstring>

namespace ledgerd {

NodeCache::NodeCache(int slots_log2, int min_level)
    : slots_log2_(slots_log2), min_level_(min_level), slots_(new Slot[size_t{1} << slots_log2]) {}

NodeCache::Slot& NodeCache::SlotFor(const ledger::NodeId& id) const {
  // A 64-bit multiplicative mix of (index, level): the nodes of one level
  // are consecutive integers and must spread over the whole table.
  uint64_t k = (id.index * 0x9E3779B97F4A7C15ull) ^ (uint64_t{id.level} * 0xC2B2AE3D27D4EB4Full);
  k ^= k >> 29;
  k *= 0xBF58476D1CE4E5B9ull;
  return slots_[(k >> 32) & ((uint64_t{1} << slots_log2_) - 1)];
}

bool NodeCache::Get(const ledger::NodeId& id, ledger::Hash* out) const {
  if (id.level < min_level_) return false;
  const Slot& s = SlotFor(id);
  uint32_t before = s.seq.load(std::memory_order_acquire);
  if (before & 1) return false;
  uint32_t level = s.level.load(std::memory_order_relaxed);
  uint64_t index = s.index.load(std::memory_order_relaxed);
  uint64_t w[4];
  for (int i = 0; i < 4; i++) w[i] = s.words[i].load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (s.seq.load(std::memory_order_relaxed) != before) return false;
  if (level != uint32_t{id.level} + 1 || index != id.index) return false;
  std::memcpy(out->data(), w, sizeof w);
  return true;
}

void NodeCache::Put(const ledger::NodeId& id, const ledger::Hash& hash) {
  if (id.level < min_level_) return;
  Slot& s = SlotFor(id);
  uint32_t seq = s.seq.load(std::memory_order_relaxed);
  if ((seq & 1) || !s.seq.compare_exchange_strong(seq, seq + 1, std::memory_order_acq_rel)) return;
  std::atomic_thread_fence(std::memory_order_release);
  uint64_t w[4];
  std::memcpy(w, hash.data(), sizeof w);
  s.level.store(uint32_t{id.level} + 1, std::memory_order_relaxed);
  s.index.store(id.index, std::memory_order_relaxed);
  for (int i = 0; i < 4; i++) s.words[i].store(w[i], std::memory_order_relaxed);
  s.seq.store(seq + 2, std::memory_order_release);
}

ledger::Status CachedHashReader::ReadHashes(const std::vector<ledger::NodeId>& ids,
                                            std::vector<ledger::Hash>* out) const {
  bool any = false;
  for (const auto& id : ids) any = any || id.level >= cache_->min_level();
  if (!any) return base_.ReadHashes(ids, out);  // e.g. a level-0 tile: nothing to cache
  out->resize(ids.size());
  std::vector<ledger::NodeId> missing;
  std::vector<size_t> where;
  missing.reserve(ids.size());
  where.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    if (cache_->Get(ids[i], &(*out)[i])) continue;
    missing.push_back(ids[i]);
    where.push_back(i);
  }
  if (missing.empty()) return ledger::Status::OK();
  std::vector<ledger::Hash> got;
  LEDGER_RETURN_IF_ERROR(base_.ReadHashes(missing, &got));
  for (size_t j = 0; j < missing.size(); j++) {
    (*out)[where[j]] = got[j];
    cache_->Put(missing[j], got[j]);
  }
  return ledger::Status::OK();
}

}  // namespace ledgerd
