#include "metrics.h"

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace ledgerd {
namespace {

// HistogramSeries renders one histogram's series; |labels| is "" or
// "name=\"value\"" put before le.
void HistogramSeries(std::ostringstream& out, const char* name, const std::string& labels,
                     const ledger::Histogram& h, double scale) {
  std::string prefix = labels.empty() ? "" : labels + ",";
  std::string only = labels.empty() ? "" : "{" + labels + "}";
  uint64_t cumulative = 0;
  for (int i = 0; i < ledger::Histogram::kBuckets; i++) {
    cumulative += h.counts[i].load();
    out << name << "_bucket{" << prefix << "le=\"" << static_cast<double>(uint64_t{1} << i) * scale << "\"} "
        << cumulative << "\n";
  }
  cumulative += h.counts[ledger::Histogram::kBuckets].load();
  out << name << "_bucket{" << prefix << "le=\"+Inf\"} " << cumulative << "\n";
  out << name << "_sum" << only << " " << static_cast<double>(h.sum.load()) * scale << "\n";
  out << name << "_count" << only << " " << h.total.load() << "\n";
}

void RenderHistogram(std::ostringstream& out, const char* name, const char* help,
                     const ledger::Histogram& h, double scale) {
  out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  HistogramSeries(out, name, "", h, scale);
}

// LabelValue escapes a Prometheus label value.
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void RenderWitnessing(std::ostringstream& out, const WitnessingStats& w) {
  out << "# HELP ledger_witness_quorum Cosignatures a checkpoint needs before it is served (0: not enforced).\n"
      << "# TYPE ledger_witness_quorum gauge\nledger_witness_quorum " << w.quorum << "\n";
  out << "# HELP ledger_witnessed_tree_size Size of the newest checkpoint with a quorum of cosignatures.\n"
      << "# TYPE ledger_witnessed_tree_size gauge\nledger_witnessed_tree_size " << w.witnessed_size.load() << "\n";
  out << "# HELP ledger_witness_rounds_total Checkpoints offered to the witnesses.\n"
      << "# TYPE ledger_witness_rounds_total counter\nledger_witness_rounds_total " << w.rounds.load() << "\n";
  struct Gauge {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*get)(const WitnessStats&);
  };
  const Gauge gauges[] = {
      {"ledger_witness_cosigned_size", "gauge", "Latest tree size the witness cosigned for this log.",
       [](const WitnessStats& s) { return s.cosigned_size.load(); }},
      {"ledger_witness_up", "gauge", "1 if the witness's latest submission got a valid cosignature.",
       [](const WitnessStats& s) { return static_cast<uint64_t>(s.up.load()); }},
      {"ledger_witness_cosignatures_total", "counter", "Valid cosignatures received from the witness.",
       [](const WitnessStats& s) { return s.cosignatures.load(); }},
      {"ledger_witness_failures_total", "counter",
       "Failed submissions to the witness (unreachable, timed out, refused, bad cosignature).",
       [](const WitnessStats& s) { return s.failures.load(); }},
      {"ledger_witness_conflicts_total", "counter", "409 answers (the witness's size differed from the one sent).",
       [](const WitnessStats& s) { return s.conflicts.load(); }},
  };
  for (const Gauge& g : gauges) {
    out << "# HELP " << g.name << " " << g.help << "\n# TYPE " << g.name << " " << g.type << "\n";
    for (const auto& s : w.witnesses)
      out << g.name << "{witness=\"" << LabelValue(s->name) << "\"} " << g.get(*s) << "\n";
  }
  const char* lat = "ledger_witness_request_seconds";
  out << "# HELP " << lat << " Latency of add-checkpoint requests to the witness, any outcome.\n# TYPE " << lat
      << " histogram\n";
  for (const auto& s : w.witnesses)
    HistogramSeries(out, lat, "witness=\"" + LabelValue(s->name) + "\"", s->request_micros, 1e-6);
  RenderHistogram(out, "ledger_receipt_wait_seconds",
                  "Time receipts waited for a witnessed checkpoint covering their entries.", w.receipt_wait_micros,
                  1e-6);
  out << "# HELP ledger_receipt_wait_timeouts_total Receipts not issued (503) because no witnessed checkpoint "
         "covered them in time.\n# TYPE ledger_receipt_wait_timeouts_total counter\n"
      << "ledger_receipt_wait_timeouts_total " << w.receipt_timeouts.load() << "\n";
  out << "# HELP ledger_receipt_waiters_rejected_total Receipts refused at once (503) because max_receipt_waiters "
         "requests were already waiting.\n# TYPE ledger_receipt_waiters_rejected_total counter\n"
      << "ledger_receipt_waiters_rejected_total " << w.receipt_waiters_rejected.load() << "\n";
}

// RenderMallocStats renders glibc malloc's totals over all arenas, so a
// growing RSS can be told apart: live allocations (in use, which includes
// LMDB's cache of dirty-page buffers), free memory malloc keeps, and the
// number of arenas (each worker thread can get its own).
void RenderMallocStats(std::ostringstream& out) {
  struct mallinfo2 mi = mallinfo2();
  uint64_t arenas = 0;
  char* xml = nullptr;
  size_t xml_size = 0;
  if (FILE* f = open_memstream(&xml, &xml_size)) {
    malloc_info(0, f);
    std::fclose(f);
    // One <heap nr="N"> element per arena.
    for (const char* p = xml; p && (p = std::strstr(p, "<heap nr=")) != nullptr; p++) arenas++;
  }
  std::free(xml);
  out << "# HELP ledger_malloc_arenas glibc malloc arenas.\n# TYPE ledger_malloc_arenas gauge\n"
      << "ledger_malloc_arenas " << arenas << "\n";
  out << "# HELP ledger_malloc_bytes glibc malloc totals over all arenas: in_use (live allocations, mmapped "
         "ones included), free (held by malloc, not returned to the system), mmapped (large allocations "
         "served by mmap), system (obtained from the system: arenas plus mmapped).\n"
      << "# TYPE ledger_malloc_bytes gauge\n"
      << "ledger_malloc_bytes{kind=\"in_use\"} " << mi.uordblks + mi.hblkhd << "\n"
      << "ledger_malloc_bytes{kind=\"free\"} " << mi.fordblks << "\n"
      << "ledger_malloc_bytes{kind=\"mmapped\"} " << mi.hblkhd << "\n"
      << "ledger_malloc_bytes{kind=\"system\"} " << mi.arena + mi.hblkhd << "\n";
}

// RenderSubjectTree renders the subject tree persister's figures
// (SPEC.md section 7): node versions waiting in memory, and its writes.
void RenderSubjectTree(std::ostringstream& out, const ledger::SubjectTreeStats& t) {
  out << "# HELP ledger_subject_tree_memory_nodes Subject tree node versions held in memory, not yet persisted "
         "or still read (now, and the most since start).\n# TYPE ledger_subject_tree_memory_nodes gauge\n"
      << "ledger_subject_tree_memory_nodes{at=\"now\"} " << t.memory_nodes << "\n"
      << "ledger_subject_tree_memory_nodes{at=\"max\"} " << t.memory_nodes_max << "\n";
  out << "# HELP ledger_subject_tree_versions Subject tree versions (index commitment leaf indexes): the latest "
         "committed to the log, and the latest persisted.\n# TYPE ledger_subject_tree_versions gauge\n"
      << "ledger_subject_tree_versions{kind=\"committed\"} " << t.committed_version << "\n"
      << "ledger_subject_tree_versions{kind=\"persisted\"} " << t.persisted_version << "\n";
  out << "# HELP ledger_subject_tree_persists_total Subject tree persisting transactions committed.\n"
         "# TYPE ledger_subject_tree_persists_total counter\n"
      << "ledger_subject_tree_persists_total " << t.persists << "\n";
  out << "# HELP ledger_subject_tree_persist_seconds_total Time spent writing and committing them.\n"
         "# TYPE ledger_subject_tree_persist_seconds_total counter\n"
      << "ledger_subject_tree_persist_seconds_total " << t.persist_micros_total / 1e6 << "\n";
  out << "# HELP ledger_subject_tree_persist_max The largest persisting transaction since start: its node writes, "
         "and the longest one's seconds.\n# TYPE ledger_subject_tree_persist_max gauge\n"
      << "ledger_subject_tree_persist_max{of=\"writes\"} " << t.persist_writes_max << "\n"
      << "ledger_subject_tree_persist_max{of=\"seconds\"} " << t.persist_micros_max / 1e6 << "\n";
}

}  // namespace

std::string Metrics::Render(const ledger::SequencerStats& seq, uint64_t tree_size, uint64_t disk_bytes,
                            const WitnessingStats* witnessing, const ledger::SubjectTreeStats* subject_tree) const {
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
  if (witnessing) RenderWitnessing(out, *witnessing);
  if (subject_tree) RenderSubjectTree(out, *subject_tree);
  RenderMallocStats(out);
  out << "# HELP ledger_http_requests_total HTTP requests by route and status.\n# TYPE ledger_http_requests_total counter\n";
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [key, count] : requests_)
    out << "ledger_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << count << "\n";
  return out.str();
}

}  // namespace ledgerd
