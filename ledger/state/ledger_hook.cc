#include "ledger/ledger_hook.h"

namespace ledger {

namespace {

bool IsRequestIdKey(ByteView key) { return key.size() > 2 && key[0] == 'r' && key[1] == '/'; }

// RequestIdValue returns the rules' value for request-id state key |key|,
// "<index> <hex SHA-256 of the payload>", from the access entry among
// |candidates| (FindKey's) that has the accessor and request id it names;
// nullopt if none has. Other candidates (prefix collisions, whatever their
// kind) are skipped.
template <typename EntryAt>
StatusOr<std::optional<Bytes>> RequestIdValue(ByteView key, const std::vector<uint64_t>& candidates, EntryAt entry_at) {
  for (uint64_t index : candidates) {
    LEDGER_ASSIGN_OR_RETURN(Bytes entry, entry_at(index));
    auto env = ParseEnvelope(entry);
    if (!env.ok() || env->payload_type != kAccessPayloadType) continue;
    auto access = ParseAccess(env->payload);
    if (!access.ok() || RequestIdStateKey(access->accessor, access->request_id) != key) continue;
    return std::optional<Bytes>(std::to_string(index) + " " + HexEncode(HashView(Sha256(env->payload))));
  }
  return std::optional<Bytes>();
}

}  // namespace

Hash RequestIdIndexKey(ByteView state_key) { return Sha256(state_key); }

StatusOr<std::optional<Bytes>> BatchStateStore::Get(ByteView key) {
  LEDGER_ASSIGN_OR_RETURN(std::optional<Bytes> value, batch_.GetState(key));
  if (value || !IsRequestIdKey(key)) return value;
  LEDGER_ASSIGN_OR_RETURN(std::vector<uint64_t> candidates, batch_.FindKey(RequestIdIndexKey(key)));
  return RequestIdValue(key, candidates, [this](uint64_t i) { return batch_.GetEntry(i); });
}

Status BatchStateStore::Put(ByteView key, ByteView value) {
  if (!IsRequestIdKey(key)) return batch_.PutState(key, value);
  auto index = ParseUint64(value.substr(0, value.find(' ')));
  if (!index.ok()) return Status::InvalidArgument("a request id's state value must start with its entry's index");
  return batch_.RecordKey(RequestIdIndexKey(key), *index);
}

StatusOr<std::optional<Bytes>> ReaderStateStore::Get(ByteView key) {
  LEDGER_ASSIGN_OR_RETURN(std::optional<Bytes> value, reader_.GetState(key));
  if (value || !IsRequestIdKey(key)) return value;
  LEDGER_ASSIGN_OR_RETURN(std::vector<uint64_t> candidates, reader_.FindKey(RequestIdIndexKey(key)));
  return RequestIdValue(key, candidates, [this](uint64_t i) -> StatusOr<Bytes> {
    LEDGER_ASSIGN_OR_RETURN(ByteView entry, reader_.GetEntry(i));
    return Bytes(entry);
  });
}

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
