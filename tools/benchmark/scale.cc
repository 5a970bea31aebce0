// scale: builds a large log through the library and measures, at marks
// along the way, what issue #7 asks of the storage layer: disk bytes per
// entry beyond the entry bytes (and where they go, per LMDB database), the
// append rate in a window before each mark, inclusion/consistency proof
// latency, and, at the end, the time Store::Open takes (the start-up check
// and the rebuild of the pending leaf index).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "bench.h"
#include "ledger/bytes.h"
#include "ledger/files.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/tiles.h"
#include "ledger/store.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// ThreadCpu is this thread's CPU time (user + system) in seconds: on a
// shared machine it moves far less than wall time with other processes' load.
double ThreadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double R3(double x) { return std::round(x * 1000) / 1000; }

constexpr char kScaleUsage[] = R"(Usage: ledger-bench scale --data DIR --entries N [flags]

Builds an N-entry log of random entries in DIR through the library (Store +
WriteBatch, durable commits of --batch entries, each with a checkpoint
signed by DIR/log.key: ledgerd --data DIR serves it afterwards) and prints
one JSON line per mark (every --marks size <= N, and N), then a summary:

  append_rate   entries/s over the window of the last min(mark, --window)
                entries before the mark (leaf-index merges included)
  cpu_us_per_entry  CPU time (this thread, user + system) per entry in that
                window: the figure to compare on a shared machine
  merge_s       seconds spent in commits that did leaf-index merge work, in that window
  disk          data file bytes per entry beyond the entry bytes (file
                size, and pages actually in use), and per LMDB database
  proofs        microseconds per inclusion proof (random index, tree size =
                mark) and per consistency proof (random older size), read
                from a fresh snapshot, --proofs of each
  open_s        (summary) seconds for Store::Open of the finished log

Flags:
  --data DIR          data directory (use a fresh one)             (required)
  --entries N         entries to append                            (required)
  --entry-size B      bytes per entry                              [256]
  --batch K           entries per durable commit                   [4096]
  --marks LIST        comma-separated sizes to report at           [10000,100000,1000000,10000000]
  --window W          entries in each rate window                  [1048576]
  --proofs P          proofs timed at each mark                    [2000]
  --map-size GIB      LMDB map size in GiB                         [64]
)";

std::vector<uint64_t> ParseMarks(const std::string& s) {
  std::vector<uint64_t> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v == 0) Die("--marks must be comma-separated positive sizes", 2);
    out.push_back(v);
  }
  return out;
}

nlohmann::json DiskJson(const ledger::Store& store, uint64_t entries, uint64_t entry_bytes) {
  auto st = store.Stats();
  if (!st.ok()) Die(st.status().ToString());
  uint64_t used = st->used_pages * st->page_size;
  nlohmann::json dbs = nlohmann::json::object();
  for (const auto& d : st->dbs) {
    uint64_t pages = d.branch_pages + d.leaf_pages + d.overflow_pages;
    dbs[d.name] = {{"items", d.items},
                   {"pages", pages},
                   {"overflow_pages", d.overflow_pages},
                   {"depth", d.depth},
                   {"bytes_per_entry", entries ? R3(static_cast<double>(pages * st->page_size) / entries) : 0}};
  }
  auto per = [&](uint64_t bytes) {
    return entries ? R3((static_cast<double>(bytes) - static_cast<double>(entry_bytes)) / entries) : 0;
  };
  return {{"file_bytes", st->file_bytes},
          {"used_bytes", used},
          {"entry_bytes", entry_bytes},
          {"overhead_per_entry_file", per(st->file_bytes)},
          {"overhead_per_entry_used", per(used)},
          {"leaf_index_runs", st->leaf_index_runs},
          {"pending_leaves", st->pending_leaves},
          {"dbs", dbs}};
}

nlohmann::json ProofJson(const ledger::Store& store, uint64_t proofs, std::mt19937_64& rng) {
  auto r = store.Read();
  if (!r.ok()) Die(r.status().ToString());
  uint64_t n = (*r)->size();
  std::vector<uint64_t> idx(proofs), from(proofs);
  for (uint64_t i = 0; i < proofs; i++) {
    idx[i] = rng() % n;
    from[i] = 1 + rng() % n;
  }
  // Two passes over the same indexes: the first touches the pages for the
  // first time in this process (page faults into the page cache), the
  // second is the steady state of a server that has been running.
  double incl[2], cons[2], incl_cpu = 0, cons_cpu = 0;
  size_t hashes = 0;
  for (int pass = 0; pass < 2; pass++) {
    auto t0 = Clock::now();
    double c0 = ThreadCpu();
    for (uint64_t i = 0; i < proofs; i++) {
      auto p = ledger::InclusionProof(idx[i], n, **r);
      if (!p.ok()) Die(p.status().ToString());
      hashes += p->size();
    }
    incl[pass] = Since(t0);
    incl_cpu = ThreadCpu() - c0;
    t0 = Clock::now();
    c0 = ThreadCpu();
    for (uint64_t i = 0; i < proofs; i++) {
      auto p = ledger::ConsistencyProof(from[i], n, **r);
      if (!p.ok()) Die(p.status().ToString());
    }
    cons[pass] = Since(t0);
    cons_cpu = ThreadCpu() - c0;
  }
  return {{"inclusion_us", R3(incl[1] * 1e6 / proofs)},
          {"inclusion_cpu_us", R3(incl_cpu * 1e6 / proofs)},
          {"consistency_cpu_us", R3(cons_cpu * 1e6 / proofs)},
          {"consistency_us", R3(cons[1] * 1e6 / proofs)},
          {"inclusion_us_first_touch", R3(incl[0] * 1e6 / proofs)},
          {"consistency_us_first_touch", R3(cons[0] * 1e6 / proofs)},
          {"inclusion_hashes", R3(static_cast<double>(hashes) / 2 / proofs)}};
}

}  // namespace

int ScaleMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"data", "entries", "entry-size", "batch", "marks", "window", "proofs", "map-size"},
              kScaleUsage);
  std::string dir = flags.required("data");
  if (!flags.has("entries")) Die("--entries is required", 2);
  uint64_t n = flags.num("entries", 0, 1);
  size_t entry_size = flags.num("entry-size", 256, 8, ledger::kMaxEntrySize);
  uint64_t batch = flags.num("batch", 4096, 1, 1 << 24);
  std::vector<uint64_t> marks = ParseMarks(flags.str("marks", "10000,100000,1000000,10000000"));
  uint64_t window = flags.num("window", 1 << 20, 1);
  uint64_t proofs = flags.num("proofs", 2000, 1, 10000000);
  uint64_t map_gib = flags.num("map-size", 64, 1, 1 << 20);
  marks.erase(std::remove_if(marks.begin(), marks.end(), [&](uint64_t m) { return m > n; }), marks.end());
  if (marks.empty() || marks.back() != n) marks.push_back(n);
  std::sort(marks.begin(), marks.end());
  marks.erase(std::unique(marks.begin(), marks.end()), marks.end());

  std::string cmd = "mkdir -p '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) Die("cannot create " + dir);
  bool created = false;
  auto signer = ledger::LoadOrCreateNoteKey(dir + "/log.key", "localhost/access-ledger", &created);
  if (!signer.ok()) Die(signer.status().ToString());
  ledger::StoreOptions opts;
  opts.dir = dir + "/lmdb";
  opts.map_size = map_gib << 30;
  auto store = ledger::Store::Open(opts);
  if (!store.ok()) Die("cannot open the store: " + store.status().ToString());
  if ((*store)->size() != 0) Die("--data must be a fresh directory (the store holds entries)");

  std::mt19937_64 rng(1);
  std::string entry(entry_size, '\0');
  // Per commit: size after it, its wall time, and whether it merged.
  struct CommitRec {
    uint64_t size;
    double t;    // seconds since start, at the end of the commit
    double cpu;  // thread CPU seconds since start, likewise
    double merge_s;
  };
  std::vector<CommitRec> commits;
  commits.push_back({0, 0, 0, 0});
  auto start = Clock::now();
  double cpu_start = ThreadCpu();
  double cpu_paused = 0;
  size_t next_mark = 0;
  uint64_t done = 0;
  double paused = 0;  // time spent measuring at marks, excluded from rates
  nlohmann::json out_marks = nlohmann::json::array();
  bool was_merging = false;
  while (done < n) {
    uint64_t k = std::min(batch, n - done);
    if (next_mark < marks.size()) k = std::min(k, marks[next_mark] - done);
    auto wb = (*store)->BeginWrite();
    if (!wb.ok()) Die(wb.status().ToString());
    ledger::WriteBatch& w = **wb;
    if (done == 0) {
      if (auto s = w.SetOrigin((*signer)->name()); !s.ok()) Die(s.ToString());
    }
    for (uint64_t i = 0; i < k; i++) {
      FillRandom(rng, entry.data(), entry.size());
      auto leaf = w.Append(entry);
      if (!leaf.ok()) Die(leaf.status().ToString());
    }
    ledger::Checkpoint cp{(*signer)->name(), w.size(), w.root(), {}};
    auto note = (*signer)->SignNote(cp.Format());
    if (!note.ok()) Die(note.status().ToString());
    if (auto s = w.SetCheckpoint(*note); !s.ok()) Die(s.ToString());
    // A commit did leaf-index merge work if a merge was in progress before
    // or after it (merges are spread over commits; the small ones start
    // and end in one, leaving the pending leaves empty).
    auto c0 = Clock::now();
    if (auto s = w.Commit(); !s.ok()) Die(s.ToString());
    double commit_s = Since(c0);
    wb->reset();
    done += k;
    auto st = (*store)->Stats();
    if (!st.ok()) Die(st.status().ToString());
    bool merged = k > 0 && (was_merging || st->merging_leaves > 0 || (st->pending_leaves == 0 && st->leaf_index_runs > 0));
    was_merging = st->merging_leaves > 0;
    commits.push_back({done, Since(start) - paused, ThreadCpu() - cpu_start - cpu_paused, merged ? commit_s : 0});
    if (next_mark < marks.size() && done == marks[next_mark]) {
      auto m0 = Clock::now();
      double mc0 = ThreadCpu();
      uint64_t m = marks[next_mark++];
      uint64_t w_from = m - std::min(m, window);
      size_t a = 0;
      while (commits[a].size < w_from) a++;
      // commits[a] is the first commit ending at or after w_from; the
      // window starts at the commit before it ends (sizes align with
      // batches: w_from is rounded up to a commit boundary).
      size_t a0 = a;
      if (commits[a].size > w_from && a > 0) a0 = a - 1;
      double secs = commits.back().t - commits[a0].t;
      double cpu = commits.back().cpu - commits[a0].cpu;
      uint64_t ents = commits.back().size - commits[a0].size;
      double merge_s = 0;
      for (size_t i = a0 + 1; i < commits.size(); i++) merge_s += commits[i].merge_s;
      nlohmann::json j{{"mark", m},
                       {"window_entries", ents},
                       {"window_s", R3(secs)},
                       {"append_rate", secs > 0 ? std::round(ents / secs) : 0},
                       {"cpu_us_per_entry", ents ? R3(cpu * 1e6 / ents) : 0},
                       {"merge_s", R3(merge_s)},
                       {"disk", DiskJson(**store, m, m * entry_size)},
                       {"proofs", ProofJson(**store, proofs, rng)}};
      std::cout << j.dump() << std::endl;
      out_marks.push_back(j);
      paused += Since(m0);
      cpu_paused += ThreadCpu() - mc0;
    }
  }
  double total_s = Since(start) - paused;
  std::string vkey = (*signer)->verifier().VerifierKeyString();
  if (auto s = ledger::WriteFileAtomic(dir + "/log.vkey", vkey + "\n", 0644); !s.ok()) Die(s.ToString());
  store->reset();
  auto o0 = Clock::now();
  auto reopened = ledger::Store::Open(opts);
  double open_s = Since(o0);
  if (!reopened.ok()) Die("reopening: " + reopened.status().ToString());
  auto st = (*reopened)->Stats();
  nlohmann::json summary{{"summary", true},
                         {"entries", n},
                         {"entry_size", entry_size},
                         {"batch", batch},
                         {"build_s", R3(total_s)},
                         {"entries_per_s", std::round(n / total_s)},
                         {"open_s", R3(open_s)},
                         {"pending_leaves_after_open", st.ok() ? st->pending_leaves : 0}};
  const auto& first = out_marks.front();
  const auto& last = out_marks.back();
  summary["rate_ratio"] = R3(last["append_rate"].get<double>() / std::max(1.0, first["append_rate"].get<double>()));
  summary["cpu_per_entry_ratio"] =
      R3(last["cpu_us_per_entry"].get<double>() / std::max(1e-9, first["cpu_us_per_entry"].get<double>()));
  summary["inclusion_cpu_ratio"] = R3(last["proofs"]["inclusion_cpu_us"].get<double>() /
                                      std::max(1e-9, first["proofs"]["inclusion_cpu_us"].get<double>()));
  summary["inclusion_ratio"] =
      R3(last["proofs"]["inclusion_us"].get<double>() / std::max(1e-9, first["proofs"]["inclusion_us"].get<double>()));
  summary["first_mark"] = first["mark"];
  summary["last_mark"] = last["mark"];
  summary["overhead_per_entry_used"] = last["disk"]["overhead_per_entry_used"];
  summary["overhead_per_entry_file"] = last["disk"]["overhead_per_entry_file"];
  std::cout << summary.dump() << std::endl;
  return 0;
}

}  // namespace bench
