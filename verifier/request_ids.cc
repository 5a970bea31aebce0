#include "request_ids.h"

#include <sodium.h>

#include <cstring>

#include "ledger/record.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::ByteView;
using ledger::Status;

constexpr uint64_t kMaxIndex = (uint64_t{1} << 40) - 1;
constexpr size_t kCachedResolutions = 1024;

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

bool IsRequestKey(ByteView key) { return key.size() >= 2 && key[0] == 'r' && key[1] == '/'; }

}  // namespace

RequestIdSet::RequestIdSet(unsigned fingerprint_bits, const Bytes& key)
    : bits_(fingerprint_bits == 0 || fingerprint_bits > 64 ? 64 : fingerprint_bits), key_(key), shards_(256) {
  if (key_.size() != crypto_shorthash_KEYBYTES) {
    key_.assign(crypto_shorthash_KEYBYTES, '\0');
    if (sodium_init() < 0) std::memset(key_.data(), 0x5a, key_.size());  // never: sodium_init only fails without entropy
    else randombytes_buf(key_.data(), key_.size());
  }
}

uint64_t RequestIdSet::Fingerprint(ByteView state_key) const {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, reinterpret_cast<const unsigned char*>(state_key.data()), state_key.size(),
                   reinterpret_cast<const unsigned char*>(key_.data()));
  uint64_t fp;
  std::memcpy(&fp, out, sizeof fp);
  return bits_ == 64 ? fp : (fp & ((uint64_t{1} << bits_) - 1));
}

void RequestIdSet::Find(uint64_t fp, std::vector<uint64_t>* out) const {
  const Shard& s = ShardOf(fp);
  if (s.fps.empty()) return;
  uint64_t stored = Stored(fp);
  size_t mask = s.fps.size() - 1;
  for (size_t i = Mix(stored) & mask; s.fps[i] != 0; i = (i + 1) & mask)
    if (s.fps[i] == stored) out->push_back(uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32));
}

void RequestIdSet::Put(Shard& s, uint64_t stored, uint64_t index) {
  size_t mask = s.fps.size() - 1;
  size_t i = Mix(stored) & mask;
  while (s.fps[i] != 0) i = (i + 1) & mask;
  s.fps[i] = stored;
  s.lo[i] = static_cast<uint32_t>(index);
  s.hi[i] = static_cast<uint8_t>(index >> 32);
  s.used++;
}

void RequestIdSet::Grow(Shard& s) {
  Shard old = std::move(s);
  size_t cap = old.fps.empty() ? 64 : old.fps.size() * 2;
  s = Shard();
  s.fps.assign(cap, 0);
  s.lo.assign(cap, 0);
  s.hi.assign(cap, 0);
  for (size_t i = 0; i < old.fps.size(); i++)
    if (old.fps[i] != 0) Put(s, old.fps[i], uint64_t{old.lo[i]} | (uint64_t{old.hi[i]} << 32));
}

Status RequestIdSet::Insert(uint64_t fp, uint64_t index) {
  if (index > kMaxIndex) return Status::InvalidArgument("the audit records request ids of entries below 2^40 only");
  Shard& s = ShardOf(fp);
  // At most 3/4 full: an absent fingerprint (the usual question) is found
  // absent after a few probes.
  if (4 * (s.used + 1) > 3 * s.fps.size()) Grow(s);
  Put(s, Stored(fp), index);
  size_++;
  return Status::OK();
}

void RequestIdSet::Replace(uint64_t fp, uint64_t from, uint64_t to) {
  Shard& s = ShardOf(fp);
  if (s.fps.empty()) return;
  uint64_t stored = Stored(fp);
  size_t mask = s.fps.size() - 1;
  for (size_t i = Mix(stored) & mask; s.fps[i] != 0; i = (i + 1) & mask) {
    if (s.fps[i] == stored && (uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32)) == from) {
      s.lo[i] = static_cast<uint32_t>(to);
      s.hi[i] = static_cast<uint8_t>(to >> 32);
      return;
    }
  }
}

uint64_t RequestIdSet::memory_bytes() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) n += s.fps.capacity() * 8 + s.lo.capacity() * 4 + s.hi.capacity();
  return n;
}

void RequestIdSet::ForEach(const std::function<void(uint64_t, uint64_t)>& fn) const {
  for (const Shard& s : shards_)
    for (size_t i = 0; i < s.fps.size(); i++)
      if (s.fps[i] != 0) fn(s.fps[i], uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32));
}

// --- AuditStateStore ----------------------------------------------------------

ledger::StatusOr<std::optional<AuditStateStore::ResolvedRequest>> AuditStateStore::Resolve(uint64_t index) {
  auto it = cache_.find(index);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  if (!resolve_) return Status::Internal("the audit cannot read entry " + std::to_string(index) + " again: no entry source");
  resolutions_++;
  LEDGER_ASSIGN_OR_RETURN(std::optional<ResolvedRequest> r, resolve_(index));
  if (cache_.size() >= kCachedResolutions) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(index);
  cache_.emplace(index, std::make_pair(r, lru_.begin()));
  return r;
}

ledger::StatusOr<std::optional<Bytes>> AuditStateStore::Get(ByteView key) {
  if (!IsRequestKey(key)) return others_.Get(key);
  std::vector<uint64_t> candidates;
  ids_.Find(ids_.Fingerprint(key), &candidates);
  for (uint64_t index : candidates) {
    LEDGER_ASSIGN_OR_RETURN(auto r, Resolve(index));
    if (r && r->key == key) return std::optional<Bytes>(Bytes(r->value));
  }
  return std::optional<Bytes>();
}

Status AuditStateStore::Put(ByteView key, ByteView value) {
  if (!IsRequestKey(key)) return others_.Put(key, value);
  // The rules' value is "<index> <payload hash>", the entry's own: only the
  // index is kept, the rest is what that entry says.
  auto sp = value.find(' ');
  auto index = ledger::ParseUint64(value.substr(0, sp));
  if (sp == ByteView::npos || !index.ok()) return Status::Corruption("request id state value is malformed");
  uint64_t fp = ids_.Fingerprint(key);
  std::vector<uint64_t> candidates;
  ids_.Find(fp, &candidates);
  for (uint64_t old : candidates) {
    LEDGER_ASSIGN_OR_RETURN(auto r, Resolve(old));
    if (r && r->key == key) {
      ids_.Replace(fp, old, *index);
      return Status::OK();
    }
  }
  return ids_.Insert(fp, *index);
}

Status AuditStateStore::Delete(ByteView key) {
  if (!IsRequestKey(key)) return others_.Delete(key);
  return Status::Internal("the audit never deletes request ids");
}

bool AuditStateStore::MaybeSeen(ByteView request_key) const {
  std::vector<uint64_t> candidates;
  ids_.Find(ids_.Fingerprint(request_key), &candidates);
  return !candidates.empty();
}

Status AuditStateStore::RecordNew(ByteView request_key, uint64_t index) {
  return ids_.Insert(ids_.Fingerprint(request_key), index);
}

std::string RequestKeyOf(const std::string& accessor, const std::string& request_id) {
  return "r/" + accessor + "/" + request_id;
}

std::optional<AuditStateStore::ResolvedRequest> ResolvedRequestOf(ByteView entry, uint64_t index) {
  auto e = ledger::ParseEntry(entry);
  if (!e.ok() || e->kind != ledger::EntryKind::kAccess) return std::nullopt;
  AuditStateStore::ResolvedRequest r;
  r.key = RequestKeyOf(e->access().accessor, e->access().request_id);
  r.value = std::to_string(index) + " " + ledger::HexEncode(ledger::HashView(ledger::Sha256(e->envelope.payload)));
  return r;
}

}  // namespace verifier
