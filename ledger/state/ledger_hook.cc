#include "ledger/ledger_hook.h"

namespace ledger {

StatusOr<std::optional<uint64_t>> RulesHook::Check(WriteBatch& batch, ByteView entry, const void* context) {
  const ParsedEntry* parsed = static_cast<const ParsedEntry*>(context);
  last_parsed_.reset();
  if (!parsed) {
    auto p = ParseEntry(entry);
    if (!p.ok()) return p.status();
    last_parsed_ = std::move(*p);
    parsed = &*last_parsed_;
  }
  if (parsed->kind == EntryKind::kIndex)
    return Status::PermissionDenied("unauthorised key: index commitments are appended by the log itself, not submitted");
  BatchStateStore state(batch);
  return rules_.Check(state, *parsed, clock_(), batch.size(), &cache_);
}

Status RulesHook::Applied(WriteBatch& batch, ByteView entry, const void* context, const AppendedLeaf& leaf) {
  const ParsedEntry* parsed = static_cast<const ParsedEntry*>(context);
  if (!parsed) {
    if (!last_parsed_) {
      // Applied always follows its own Check; parse again defensively.
      auto p = ParseEntry(entry);
      if (!p.ok()) return p.status();
      last_parsed_ = std::move(*p);
    }
    parsed = &*last_parsed_;
  }
  BatchStateStore state(batch);
  Status s = rules_.Apply(state, *parsed, leaf.index, &cache_);
  if (s.ok() && indexer_) s = indexer_->Applied(batch, *parsed, leaf.index);
  last_parsed_.reset();
  return s;
}

Status RulesHook::BatchEnd(WriteBatch& batch, uint64_t* appended) {
  *appended = 0;
  if (!indexer_) return Status::OK();
  return indexer_->BatchEnd(batch, rules_, clock_(), appended);
}

std::optional<std::chrono::steady_clock::time_point> RulesHook::NextWake() {
  if (!indexer_) return std::nullopt;
  return indexer_->NextWake();
}

void RulesHook::BatchDone(bool committed) {
  cache_.BatchDone();
  if (indexer_) indexer_->BatchDone(committed);
}

}  // namespace ledger
