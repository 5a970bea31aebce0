#include "metrics.h"

#include <sstream>

namespace ledgerd {
namespace {

void RenderHistogram(std::ostringstream& out, const char* name, const char* help,
                     const ledger::Histogram& h, double scale) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  uint64_t cumulative = 0;
  for (int i = 0; i < ledger::Histogram::kBuckets; i++) {
    cumulative += h.counts[i].load();
    out << name << "_bucket{le=\"" << static_cast<double>(uint64_t{1} << i) * scale << "\"} " << cumulative << "\n";
  }
  cumulative += h.counts[ledger::Histogram::kBuckets].load();
  out << name << "_bucket{le=\"+Inf\"} " << cumulative << "\n";
  out << name << "_sum " << static_cast<double>(h.sum.load()) * scale << "\n";
  out << name << "_count " << h.total.load() << "\n";
}

}  // namespace

std::string Metrics::Render(const ledger::SequencerStats& seq, uint64_t tree_size, uint64_t disk_bytes) const {
  std::ostringstream out;
  out << "# HELP ledger_tree_size Number of entries in the log.\n# TYPE ledger_tree_size gauge\n"
      << "ledger_tree_size " << tree_size << "\n";
  out << "# HELP ledger_entries_appended_total Entries appended since start.\n# TYPE ledger_entries_appended_total counter\n"
      << "ledger_entries_appended_total " << seq.appended.load() << "\n";
  out << "# HELP ledger_entries_duplicate_total Submitted entries already in the log.\n# TYPE ledger_entries_duplicate_total counter\n"
      << "ledger_entries_duplicate_total " << seq.duplicates.load() << "\n";
  out << "# HELP ledger_entries_refused_total Submitted entries refused by validation.\n# TYPE ledger_entries_refused_total counter\n"
      << "ledger_entries_refused_total " << seq.refused.load() << "\n";
  out << "# HELP ledger_batches_total Write batches committed.\n# TYPE ledger_batches_total counter\n"
      << "ledger_batches_total " << seq.batches.load() << "\n";
  out << "# HELP ledger_batches_failed_total Write batches that failed to commit.\n# TYPE ledger_batches_failed_total counter\n"
      << "ledger_batches_failed_total " << seq.failed_batches.load() << "\n";
  out << "# HELP ledger_store_bytes Size of the LMDB data file on disk.\n# TYPE ledger_store_bytes gauge\n"
      << "ledger_store_bytes " << disk_bytes << "\n";
  RenderHistogram(out, "ledger_batch_entries", "Entries per write batch.", seq.batch_entries, 1.0);
  RenderHistogram(out, "ledger_commit_seconds", "Time to write, sign and durably commit a batch.", seq.commit_micros, 1e-6);
  out << "# HELP ledger_http_requests_total HTTP requests by route and status.\n# TYPE ledger_http_requests_total counter\n";
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [key, count] : requests_)
    out << "ledger_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << count << "\n";
  return out.str();
}

}  // namespace ledgerd
