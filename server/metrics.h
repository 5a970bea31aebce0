// Metrics: request counters by route and status, rendered with the
// sequencer's statistics in the Prometheus text format.
//
// Thread-safety: all methods are safe to call concurrently.
#ifndef LEDGER_SERVER_METRICS_H_
#define LEDGER_SERVER_METRICS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "ledger/sequencer.h"

namespace ledgerd {

class Metrics {
 public:
  void CountRequest(const std::string& route, int status) {
    std::lock_guard<std::mutex> l(mu_);
    requests_[{route, status}]++;
  }

  // Render returns the Prometheus exposition text.
  std::string Render(const ledger::SequencerStats& seq, uint64_t tree_size, uint64_t disk_bytes) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace ledgerd

#endif  // LEDGER_SERVER_METRICS_H_
