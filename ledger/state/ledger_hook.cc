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
  BatchStateStore state(batch);
  return rules_.Check(state, *parsed, clock_());
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
  Status s = rules_.Apply(state, *parsed, leaf.index);
  last_parsed_.reset();
  return s;
}

}  // namespace ledger
