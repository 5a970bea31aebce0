// RateLimiter: per-accessor token buckets for POST /v1/entries (SPEC.md §6,
// "Rate limits"). An accessor's bucket holds up to `burst` entries and
// refills at `rate` entries per second; a request takes one token per access
// or policy entry of each accessor it names, for all of them or none, before
// anything is queued. A request finding a full bucket may take more than the
// burst, leaving a debt that later requests wait out, so batches larger than
// the burst still go through and the long-run rate stays at `rate`.
//
// Buckets are keyed by (holder, accessor) when the entry's signing key is
// authorised for them in the log, so nobody can spend another accessor's
// tokens by naming it; entries signed by any other key (refused later by
// the rules) share the buckets of their key.
//
// Thread-safety: all methods may be called concurrently.
#ifndef LEDGER_SERVER_RATE_LIMIT_H_
#define LEDGER_SERVER_RATE_LIMIT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ledger/store.h"

namespace ledgerd {

struct RateLimitOptions {
  double rate = 0;   // tokens per second per accessor; 0: no limit
  double burst = 0;  // bucket size; 0: max(1, rate)
  // Most buckets kept; full buckets are dropped first (they equal new ones).
  size_t max_buckets = 100000;
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimitOptions options);

  struct Refusal {
    std::string reason;        // for the 429 body
    uint64_t retry_after = 1;  // whole seconds, for Retry-After
  };

  // AdmitEntries charges the buckets of the accessors named by |parsed|
  // (ledger::ParsedEntry objects, as POST /v1/entries builds them), reading
  // key authorisations from |store|. nullopt: admitted (tokens taken);
  // otherwise nothing was taken.
  std::optional<Refusal> AdmitEntries(const std::vector<std::shared_ptr<const void>>& parsed,
                                      const ledger::Store& store);

  // Take charges |counts| (bucket key, tokens) all or none at |now|.
  std::optional<Refusal> Take(const std::vector<std::pair<std::string, uint64_t>>& counts,
                              std::chrono::steady_clock::time_point now);

  // RenderMetrics returns Prometheus lines: ledger_rate_limited_requests_total,
  // ledger_rate_limited_entries_total and ledger_rate_limit_buckets.
  std::string RenderMetrics() const;

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point updated;
  };
  void Refill(Bucket& b, std::chrono::steady_clock::time_point now) const;

  const RateLimitOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::atomic<uint64_t> refused_requests_{0};
  std::atomic<uint64_t> refused_entries_{0};
};

}  // namespace ledgerd

#endif  // LEDGER_SERVER_RATE_LIMIT_H_
