#include "rate_limit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>
#include <map>

#include "ledger/bytes.h"
#include "ledger/ledger_hook.h"
#include "ledger/record.h"
#include "ledger/rules.h"

namespace ledgerd {

namespace {
RateLimitOptions WithBurst(RateLimitOptions o) {
  if (o.burst <= 0) o.burst = std::max(1.0, o.rate);
  return o;
}
}  // namespace

RateLimiter::RateLimiter(RateLimitOptions options) : options_(WithBurst(options)) {}

void RateLimiter::Refill(Bucket& b, std::chrono::steady_clock::time_point now) const {
  double dt = std::chrono::duration<double>(now - b.updated).count();
  if (dt > 0) b.tokens = std::min(options_.burst, b.tokens + dt * options_.rate);
  b.updated = std::max(b.updated, now);
}

std::optional<RateLimiter::Refusal> RateLimiter::Take(const std::vector<std::pair<std::string, uint64_t>>& counts,
                                                      std::chrono::steady_clock::time_point now) {
  if (options_.rate <= 0 || counts.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Bucket*> buckets;
  for (const auto& [key, n] : counts) {
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
      if (buckets_.size() >= options_.max_buckets) {
        for (auto i = buckets_.begin(); i != buckets_.end();) {
          Refill(i->second, now);
          i = i->second.tokens >= options_.burst ? buckets_.erase(i) : std::next(i);
        }
      }
      if (buckets_.size() >= options_.max_buckets) {
        refused_requests_++;
        return Refusal{"rate limit: too many distinct accessors are over their rate; retry later",
                       static_cast<uint64_t>(std::ceil(options_.burst / options_.rate))};
      }
      it = buckets_.emplace(key, Bucket{options_.burst, now}).first;
    }
    Refill(it->second, now);
    // Up to a full bucket must be there; more than the burst may be taken
    // from a full bucket, as a debt.
    double need = std::min(static_cast<double>(n), options_.burst);
    if (it->second.tokens < need) {
      refused_requests_++;
      uint64_t total = 0;
      for (const auto& c : counts) total += c.second;
      refused_entries_ += total;
      double wait = (need - it->second.tokens) / options_.rate;
      std::string name = key.substr(key.find(':') + 1);
      char rate[64];
      snprintf(rate, sizeof rate, "%g entries/s (burst %g)", options_.rate, options_.burst);
      return Refusal{"rate limit: " + name + " is over " + rate + "; retry after " +
                         std::to_string(static_cast<uint64_t>(std::ceil(wait))) + " s",
                     std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(wait)))};
    }
    buckets.push_back(&it->second);
  }
  for (size_t i = 0; i < counts.size(); i++) buckets[i]->tokens -= static_cast<double>(counts[i].second);
  return std::nullopt;
}

std::optional<RateLimiter::Refusal> RateLimiter::AdmitEntries(const std::vector<std::shared_ptr<const void>>& parsed,
                                                              const ledger::Store& store) {
  if (options_.rate <= 0) return std::nullopt;
  // Distinct (holder, accessor, key) first: one state lookup each.
  std::map<std::tuple<std::string, std::string, ledger::Bytes>, uint64_t> signers;
  for (const auto& p : parsed) {
    const auto& e = *static_cast<const ledger::ParsedEntry*>(p.get());
    if (e.kind == ledger::EntryKind::kAccess)
      signers[{e.access().holder, e.access().accessor, e.envelope.public_key}]++;
    else if (e.kind == ledger::EntryKind::kPolicy)
      signers[{e.policy().holder, e.policy().accessor, e.envelope.public_key}]++;
  }
  if (signers.empty()) return std::nullopt;
  std::map<std::string, uint64_t> counts;
  auto reader = store.Read();
  std::optional<ledger::ReaderStateStore> state;
  if (reader.ok()) state.emplace(**reader);
  for (const auto& [signer, n] : signers) {
    const auto& [holder, accessor, key] = signer;
    char status = 0;
    if (state) {
      auto s = ledger::LedgerRules::KeyStatus(*state, holder, accessor, key);
      if (s.ok()) status = *s;
    }
    if (status == 'A') counts["a:accessor " + holder + "/" + accessor] += n;
    else counts["k:key " + ledger::Base64UrlEncode(key)] += n;
  }
  return Take(std::vector<std::pair<std::string, uint64_t>>(counts.begin(), counts.end()),
              std::chrono::steady_clock::now());
}

std::string RateLimiter::RenderMetrics() const {
  size_t buckets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    buckets = buckets_.size();
  }
  return "# HELP ledger_rate_limited_requests_total POST /v1/entries requests refused with 429 by --rate-limit.\n"
         "# TYPE ledger_rate_limited_requests_total counter\n"
         "ledger_rate_limited_requests_total " + std::to_string(refused_requests_.load()) + "\n"
         "# HELP ledger_rate_limited_entries_total Entries in requests refused with 429 by --rate-limit.\n"
         "# TYPE ledger_rate_limited_entries_total counter\n"
         "ledger_rate_limited_entries_total " + std::to_string(refused_entries_.load()) + "\n"
         "# HELP ledger_rate_limit_buckets Accessor token buckets held.\n"
         "# TYPE ledger_rate_limit_buckets gauge\n"
         "ledger_rate_limit_buckets " + std::to_string(buckets) + "\n";
}

}  // namespace ledgerd
