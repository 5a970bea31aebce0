#include "ledger/rules.h"

#include <sstream>

namespace ledger {

std::string RequestIdStateKey(const std::string& accessor, const std::string& request_id) {
  return "r/" + accessor + "/" + request_id;
}

namespace {

std::string HolderKey(const std::string& h) { return "h/" + h; }
std::string KeyKey(const std::string& h, const std::string& a, ByteView key) {
  return "k/" + h + "/" + a + "/" + Base64UrlEncode(key);
}
std::string PolicyKey(const std::string& h, const std::string& a) { return "p/" + h + "/" + a; }

Status Corrupt(const std::string& key) { return Status::Corruption("derived state value for " + key + " is malformed"); }

std::string EncodePolicyInForce(const PolicyRecord& p, uint64_t index) {
  std::string out = std::to_string(p.version) + " " + std::to_string(index) + "\n";
  for (const auto& purpose : p.purposes) {
    out += purpose.purpose + " ";
    bool first = true;
    for (const auto& c : purpose.categories) {
      if (!first) out += ",";
      out += c;
      first = false;
    }
    out += "\n";
  }
  return out;
}

StatusOr<PolicyInForce> DecodePolicyInForce(const std::string& key, const Bytes& v) {
  PolicyInForce p;
  std::istringstream in(v);
  std::string line;
  if (!std::getline(in, line)) return Corrupt(key);
  auto sp = line.find(' ');
  if (sp == std::string::npos) return Corrupt(key);
  auto version = ParseUint64(line.substr(0, sp));
  auto index = ParseUint64(line.substr(sp + 1));
  if (!version.ok() || !index.ok()) return Corrupt(key);
  p.version = *version;
  p.index = *index;
  while (std::getline(in, line)) {
    sp = line.find(' ');
    if (sp == std::string::npos) return Corrupt(key);
    std::set<std::string> cats;
    std::string rest = line.substr(sp + 1);
    size_t start = 0;
    while (start <= rest.size()) {
      size_t comma = rest.find(',', start);
      if (comma == std::string::npos) comma = rest.size();
      cats.insert(rest.substr(start, comma - start));
      start = comma + 1;
    }
    p.purposes[line.substr(0, sp)] = std::move(cats);
  }
  return p;
}

// SignerIsAuthorised turns the status of the envelope's key for (holder,
// accessor) (LedgerRules::KeyStatus) into the decision.
Status SignerIsAuthorised(const std::string& holder, const std::string& accessor, char status) {
  if (status == 'A') return Status::OK();
  if (status == 'R')
    return Status::PermissionDenied("revoked key: the signing key of accessor " + accessor + " was revoked by holder " + holder);
  return Status::PermissionDenied("unauthorised key: the signing key is not authorised by holder " + holder +
                                  " for accessor " + accessor);
}

}  // namespace

void RulesCache::Clear() {
  holders_.clear();
  policies_.clear();
  keys_.clear();
  written_.clear();
}

void RulesCache::BatchDone() {
  written_.clear();
  // Only here, so that a value returned by a lookup stays put for the
  // rest of the transaction.
  if (holders_.size() + policies_.size() + keys_.size() >= kMaxEntries) Clear();
}

void RulesCache::Wrote(const std::string& state_key) {
  holders_.erase(state_key);
  policies_.erase(state_key);
  keys_.erase(state_key);
  written_.insert(state_key);
}

StatusOr<const std::optional<HolderInState>*> RulesCache::Holder(StateStore& state, const std::string& holder) {
  std::string key = HolderKey(holder);
  if (written_.count(key)) {
    LEDGER_ASSIGN_OR_RETURN(holder_scratch_, LedgerRules::GetHolder(state, holder));
    return &holder_scratch_;
  }
  auto it = holders_.find(key);
  if (it == holders_.end()) {
    LEDGER_ASSIGN_OR_RETURN(auto v, LedgerRules::GetHolder(state, holder));
    it = holders_.emplace(std::move(key), std::move(v)).first;
  }
  return &it->second;
}

StatusOr<const std::optional<PolicyInForce>*> RulesCache::Policy(StateStore& state, const std::string& holder,
                                                                 const std::string& accessor) {
  std::string key = PolicyKey(holder, accessor);
  if (written_.count(key)) {
    LEDGER_ASSIGN_OR_RETURN(policy_scratch_, LedgerRules::GetPolicy(state, holder, accessor));
    return &policy_scratch_;
  }
  auto it = policies_.find(key);
  if (it == policies_.end()) {
    LEDGER_ASSIGN_OR_RETURN(auto v, LedgerRules::GetPolicy(state, holder, accessor));
    it = policies_.emplace(std::move(key), std::move(v)).first;
  }
  return &it->second;
}

StatusOr<char> RulesCache::Key(StateStore& state, const std::string& holder, const std::string& accessor,
                               ByteView signing_key) {
  std::string key = KeyKey(holder, accessor, signing_key);
  if (written_.count(key)) return LedgerRules::KeyStatus(state, holder, accessor, signing_key);
  auto it = keys_.find(key);
  if (it != keys_.end()) return it->second;
  LEDGER_ASSIGN_OR_RETURN(char v, LedgerRules::KeyStatus(state, holder, accessor, signing_key));
  keys_.emplace(std::move(key), v);
  return v;
}

StatusOr<std::optional<Bytes>> MemoryStateStore::Get(ByteView key) {
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<Bytes>();
  return std::optional<Bytes>(it->second);
}

Status MemoryStateStore::Put(ByteView key, ByteView value) {
  data_[Bytes(key)] = Bytes(value);
  return Status::OK();
}

Status MemoryStateStore::Delete(ByteView key) {
  auto it = data_.find(key);
  if (it != data_.end()) data_.erase(it);
  return Status::OK();
}

StatusOr<std::optional<HolderInState>> LedgerRules::GetHolder(StateStore& state, const std::string& holder) {
  std::string key = HolderKey(holder);
  LEDGER_ASSIGN_OR_RETURN(auto v, state.Get(key));
  if (!v) return std::optional<HolderInState>();
  std::istringstream in(*v);
  std::string sk, vk, idx;
  if (!(in >> sk >> vk >> idx)) return Corrupt(key);
  auto s = Base64UrlDecode(sk);
  auto r = Base64UrlDecode(vk);
  auto i = ParseUint64(idx);
  if (!s.ok() || !r.ok() || !i.ok()) return Corrupt(key);
  return std::optional<HolderInState>(HolderInState{*s, *r, *i});
}

StatusOr<std::optional<PolicyInForce>> LedgerRules::GetPolicy(StateStore& state, const std::string& holder,
                                                               const std::string& accessor) {
  std::string key = PolicyKey(holder, accessor);
  LEDGER_ASSIGN_OR_RETURN(auto v, state.Get(key));
  if (!v) return std::optional<PolicyInForce>();
  LEDGER_ASSIGN_OR_RETURN(PolicyInForce p, DecodePolicyInForce(key, *v));
  return std::optional<PolicyInForce>(std::move(p));
}

StatusOr<char> LedgerRules::KeyStatus(StateStore& state, const std::string& holder, const std::string& accessor,
                                      ByteView key) {
  std::string k = KeyKey(holder, accessor, key);
  LEDGER_ASSIGN_OR_RETURN(auto v, state.Get(k));
  if (!v) return char{0};
  if (v->empty() || ((*v)[0] != 'A' && (*v)[0] != 'R')) return Corrupt(k);
  return (*v)[0];
}

Status LedgerRules::CheckDisclosed(const PolicyInForce& policy, const AccessRecord& access) {
  auto it = policy.purposes.find(access.purpose);
  if (it == policy.purposes.end())
    return Status::PermissionDenied("undisclosed use: purpose " + access.purpose + " is not disclosed in policy v" +
                                    std::to_string(policy.version) + " of " + access.accessor + " for " + access.holder);
  for (const auto& c : access.categories)
    if (!it->second.count(c))
      return Status::PermissionDenied("undisclosed use: category " + c + " is not disclosed for purpose " + access.purpose +
                                      " in policy v" + std::to_string(policy.version) + " of " + access.accessor +
                                      " for " + access.holder);
  return Status::OK();
}

StatusOr<std::optional<uint64_t>> LedgerRules::Check(StateStore& state, const ParsedEntry& entry, int64_t now,
                                                      std::optional<uint64_t> position, RulesCache* cache) const {
  const Bytes& signer = entry.envelope.public_key;
  // The lookups, through |cache| when there is one. A holder or policy
  // found is read before the next lookup (which may replace it).
  std::optional<HolderInState> holder_read;
  std::optional<PolicyInForce> policy_read;
  auto holder_of = [&](const std::string& holder) -> StatusOr<const std::optional<HolderInState>*> {
    if (cache) return cache->Holder(state, holder);
    LEDGER_ASSIGN_OR_RETURN(holder_read, GetHolder(state, holder));
    return &holder_read;
  };
  auto policy_of = [&](const std::string& holder,
                       const std::string& accessor) -> StatusOr<const std::optional<PolicyInForce>*> {
    if (cache) return cache->Policy(state, holder, accessor);
    LEDGER_ASSIGN_OR_RETURN(policy_read, GetPolicy(state, holder, accessor));
    return &policy_read;
  };
  auto key_status = [&](const std::string& holder, const std::string& accessor, ByteView key) -> StatusOr<char> {
    if (cache) return cache->Key(state, holder, accessor, key);
    return KeyStatus(state, holder, accessor, key);
  };
  switch (entry.kind) {
    case EntryKind::kHolder: {
      if (signer != options_.log_public_key)
        return Status::PermissionDenied("unauthorised key: holder entries must be signed by the log key");
      return std::optional<uint64_t>();
    }
    case EntryKind::kAccessor: {
      const AccessorRecord& r = entry.accessor();
      LEDGER_ASSIGN_OR_RETURN(const std::optional<HolderInState>* holder, holder_of(r.holder));
      if (!*holder) return Status::PermissionDenied("unknown holder: " + r.holder + " is not registered in the log");
      if (signer != (*holder)->signing_key)
        return Status::PermissionDenied("unauthorised key: accessor entries must be signed by holder " + r.holder + "'s key");
      if (r.action == AccessorRecord::Action::kAuthorize) {
        for (const Bytes& k : r.keys) {
          LEDGER_ASSIGN_OR_RETURN(char st, key_status(r.holder, r.accessor, k));
          if (st == 'R')
            return Status::FailedPrecondition("revoked key: key " + Base64UrlEncode(k) + " was revoked and cannot be authorised again");
        }
      }
      return std::optional<uint64_t>();
    }
    case EntryKind::kPolicy: {
      const PolicyRecord& r = entry.policy();
      LEDGER_ASSIGN_OR_RETURN(const std::optional<HolderInState>* holder, holder_of(r.holder));
      if (!*holder) return Status::PermissionDenied("unknown holder: " + r.holder + " is not registered in the log");
      LEDGER_ASSIGN_OR_RETURN(char key, key_status(r.holder, r.accessor, signer));
      LEDGER_RETURN_IF_ERROR(SignerIsAuthorised(r.holder, r.accessor, key));
      LEDGER_ASSIGN_OR_RETURN(const std::optional<PolicyInForce>* current, policy_of(r.holder, r.accessor));
      if (*current && r.version <= (*current)->version)
        return Status::FailedPrecondition("policy version: version " + std::to_string(r.version) +
                                          " does not increase on the policy in force (v" + std::to_string((*current)->version) + ")");
      return std::optional<uint64_t>();
    }
    case EntryKind::kAccess: {
      const AccessRecord& r = entry.access();
      // An idempotent retry is answered before anything else is rechecked:
      // the original was valid when it was sequenced.
      std::string rk = RequestIdStateKey(r.accessor, r.request_id);
      LEDGER_ASSIGN_OR_RETURN(auto seen, state.Get(rk));
      if (seen) {
        auto sp = seen->find(' ');
        auto index = ParseUint64(seen->substr(0, sp));
        if (sp == std::string::npos || !index.ok()) return Corrupt(rk);
        if (seen->substr(sp + 1) == HexEncode(HashView(Sha256(entry.envelope.payload)))) return std::optional<uint64_t>(*index);
        return Status::AlreadyExists("request id reused: accessor " + r.accessor + " already logged request id " +
                                     r.request_id + " with a different payload (entry " + std::to_string(*index) + ")");
      }
      LEDGER_ASSIGN_OR_RETURN(const std::optional<HolderInState>* holder, holder_of(r.holder));
      if (!*holder) return Status::PermissionDenied("unknown holder: " + r.holder + " is not registered in the log");
      LEDGER_ASSIGN_OR_RETURN(char key, key_status(r.holder, r.accessor, signer));
      LEDGER_RETURN_IF_ERROR(SignerIsAuthorised(r.holder, r.accessor, key));
      LEDGER_ASSIGN_OR_RETURN(const std::optional<PolicyInForce>* policy, policy_of(r.holder, r.accessor));
      if (!*policy)
        return Status::PermissionDenied("undisclosed use: accessor " + r.accessor + " has no policy in force for holder " + r.holder);
      LEDGER_RETURN_IF_ERROR(CheckDisclosed(**policy, r));
      if (options_.check_clock) {
        LEDGER_ASSIGN_OR_RETURN(int64_t t, ParseTime(r.time));
        if (t > now + options_.max_clock_skew || t < now - options_.max_clock_skew)
          return Status::InvalidArgument("clock skew: access time " + r.time + " is more than " +
                                         std::to_string(options_.max_clock_skew) + " s from the log's clock (" +
                                         FormatTime(now) + ")");
      }
      return std::optional<uint64_t>();
    }
    case EntryKind::kIndex: {
      if (signer != options_.log_public_key)
        return Status::PermissionDenied("unauthorised key: index commitments must be signed by the log key");
      if (position && entry.index().size != *position)
        return Status::InvalidArgument("index commitment: size " + std::to_string(entry.index().size) +
                                       " is not its own position " + std::to_string(*position));
      return std::optional<uint64_t>();
    }
  }
  return Status::Internal("unknown entry kind");
}

Status LedgerRules::Apply(StateStore& state, const ParsedEntry& entry, uint64_t index, RulesCache* cache) const {
  std::string idx = std::to_string(index);
  // Put writes a cached kind of key: the cache drops it first, so that
  // it never holds the value of a transaction that may yet abort.
  auto put = [&](const std::string& key, ByteView value) {
    if (cache) cache->Wrote(key);
    return state.Put(key, value);
  };
  switch (entry.kind) {
    case EntryKind::kHolder: {
      const HolderRecord& r = entry.holder();
      return put(HolderKey(r.holder), Base64UrlEncode(r.signing_key) + " " + Base64UrlEncode(r.vrf_key) + " " + idx);
    }
    case EntryKind::kAccessor: {
      const AccessorRecord& r = entry.accessor();
      const char* mark = r.action == AccessorRecord::Action::kAuthorize ? "A " : "R ";
      for (const Bytes& k : r.keys) LEDGER_RETURN_IF_ERROR(put(KeyKey(r.holder, r.accessor, k), mark + idx));
      return Status::OK();
    }
    case EntryKind::kPolicy: {
      const PolicyRecord& r = entry.policy();
      return put(PolicyKey(r.holder, r.accessor), EncodePolicyInForce(r, index));
    }
    case EntryKind::kAccess: {
      const AccessRecord& r = entry.access();
      return state.Put(RequestIdStateKey(r.accessor, r.request_id), idx + " " + HexEncode(HashView(Sha256(entry.envelope.payload))));
    }
    case EntryKind::kIndex: {
      if (entry.index().size != index)
        return Status::InvalidArgument("index commitment: size " + std::to_string(entry.index().size) +
                                       " is not its own index " + idx);
      return Status::OK();
    }
  }
  return Status::Internal("unknown entry kind");
}

}  // namespace ledger
