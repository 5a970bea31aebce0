// Metrics: request counters by route and status, rendered with the
// sequencer's statistics (and the witnesses', with --witnesses) and glibc
// malloc's totals (what ledgerd's private memory is) in the Prometheus
// text format.
//
// Thread-safety: all methods are safe to call concurrently.
#ifndef LEDGER_SERVER_METRICS_H_
#define LEDGER_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ledger/sequencer.h"
#include "ledger/subject_tree.h"

namespace ledgerd {

// Per-witness counters, updated by Witnessing (witnessing.h).
struct WitnessStats {
  std::string name;                           // the configured label
  std::atomic<uint64_t> cosigned_size{0};     // latest size this witness cosigned for us
  std::atomic<uint64_t> cosignatures{0};      // valid cosignatures received
  std::atomic<uint64_t> failures{0};          // failed submissions (errors, refusals, timeouts)
  std::atomic<uint64_t> conflicts{0};         // 409 answers (old size out of date)
  std::atomic<int> up{0};                     // 1 if the latest submission got a cosignature
  ledger::Histogram request_micros;           // each add-checkpoint request, any outcome
};

struct WitnessingStats {
  size_t quorum = 0;
  std::vector<std::unique_ptr<WitnessStats>> witnesses;
  std::atomic<uint64_t> witnessed_size{0};    // size of the newest checkpoint with a quorum
  std::atomic<uint64_t> rounds{0};            // checkpoints offered to the witnesses
  ledger::Histogram receipt_wait_micros;      // receipts' wait for a witnessed checkpoint
  std::atomic<uint64_t> receipt_timeouts{0};  // receipts that gave up waiting (503)
  std::atomic<uint64_t> receipt_waiters_rejected{0};  // refused at once: max_receipt_waiters reached (503)
};

class Metrics {
 public:
  void CountRequest(const std::string& route, int status) {
    std::lock_guard<std::mutex> l(mu_);
    requests_[{route, status}]++;
  }

  // Render returns the Prometheus exposition text. |witnessing| is null
  // when ledgerd runs without --witnesses, |subject_tree| in opaque mode.
  std::string Render(const ledger::SequencerStats& seq, uint64_t tree_size, uint64_t disk_bytes,
                     const WitnessingStats* witnessing = nullptr,
                     const ledger::SubjectTreeStats* subject_tree = nullptr) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace ledgerd

#endif  // LEDGER_SERVER_METRICS_H_
