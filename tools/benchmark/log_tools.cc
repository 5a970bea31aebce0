// build-log, gen-bodies, gen-paths and lmdb-baseline: the data side of the
// benchmarks, built directly on the ledger library.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench.h"
#include "ledger/bytes.h"
#include "ledger/files.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/store.h"
#include "ledger/tiles.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kBuildLogUsage[] = R"(Usage: ledger-bench build-log --data DIR --entries N [flags]

Appends N random entries to the log in DIR through the library (Store +
WriteBatch, durable commits of --batch entries, each with a checkpoint
signed by DIR/log.key), so that `ledgerd --data DIR` serves it. Creates
DIR, the key and the store if missing. Prints JSON: entries, tree_size,
seconds, entries_per_s.

Flags:
  --data DIR          data directory, as ledgerd's --data          (required)
  --entries N         entries to append                            (required)
  --entry-size B      bytes per entry (1..65535)                   [256]
  --batch K           entries per durable commit                   [4096]
  --origin NAME       log origin for a new key                     [localhost/access-ledger]
  --map-size GIB      LMDB map size in GiB (as ledgerd's)          [64]
)";

constexpr char kGenBodiesUsage[] = R"(Usage: ledger-bench gen-bodies --entries-per-request K --entry-size B --count M --out FILE

Writes M POST /v1/entries bodies {"entries":["<base64>",...]} of K random
entries of B bytes each, one body per line.
)";

constexpr char kGenPathsUsage[] = R"(Usage: ledger-bench gen-paths --kind KIND --size N --count M --out FILE [--seed S]

Writes M random request paths for a tree of N entries, one per line:
  inclusion    /v1/proof/inclusion?index=<random < N>&size=N
  consistency  /v1/proof/consistency?from=<random 1..N>&to=N
  checkpoint   /checkpoint   (the same path M times)
  tile         /tile/0/<random full level-0 tile>   (needs N >= 256)
  entries      /tile/entries/<random full bundle>   (needs N >= 256)
  entry        /v1/entries/<random < N>
)";

constexpr char kLmdbUsage[] = R"(Usage: ledger-bench lmdb-baseline --data DIR --batch K --seconds S [flags]

Durable append rate of the storage layer alone: appends random entries
through Store/WriteBatch, K per commit, each commit fsynced, for S seconds
(no HTTP, no JSON, no signing). This is the bound the server's batched
append figure is compared with. Use a fresh DIR. Prints JSON: entries,
commits, seconds, entries_per_s, commits_per_s, commit p50/p99 in ms, and
the bytes written to disk per entry (from /proc/self/io).

Flags:
  --data DIR          store directory (created; use a fresh one)   (required)
  --batch K           entries per commit                           (required)
  --seconds S         duration                                     [10]
  --entry-size B      bytes per entry                              [256]
)";

void MakeDirs(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); i++) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty()) mkdir(partial.c_str(), 0700);
    }
    if (i < dir.size()) partial.push_back(dir[i]);
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) Die("cannot create directory " + dir);
}

std::mt19937_64 SeededRng() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  return std::mt19937_64(seq);
}

// WriteBytes returns the bytes this process caused to be written to storage
// (write_bytes of /proc/self/io), or 0 where that is not available.
uint64_t WriteBytes() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t v = 0;
  while (in >> key >> v)
    if (key == "write_bytes:") return v;
  return 0;
}

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int BuildLogMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"data", "entries", "entry-size", "batch", "origin", "map-size"}, kBuildLogUsage);
  std::string dir = flags.required("data");
  uint64_t n = flags.num("entries", 0, 1);
  if (!flags.has("entries")) Die("--entries is required", 2);
  size_t entry_size = flags.num("entry-size", 256, 1, ledger::kMaxEntrySize);
  uint64_t batch = flags.num("batch", 4096, 1, 1 << 24);
  std::string origin = flags.str("origin", "");
  uint64_t map_gib = flags.num("map-size", 64, 1, 1 << 20);

  MakeDirs(dir);
  std::string key_path = dir + "/log.key";
  bool created = false;
  // As ledgerd: an existing key keeps its name, a new one gets the default.
  std::string name = origin;
  if (name.empty() && access(key_path.c_str(), F_OK) != 0) name = "localhost/access-ledger";
  auto signer = ledger::LoadOrCreateNoteKey(key_path, name, &created);
  if (!signer.ok()) Die(signer.status().ToString());
  ledger::StoreOptions opts;
  opts.dir = dir + "/lmdb";
  opts.map_size = map_gib << 30;
  auto store = ledger::Store::Open(opts);
  if (!store.ok()) Die("cannot open the store: " + store.status().ToString());
  if (!(*store)->origin().empty() && (*store)->origin() != (*signer)->name())
    Die("the store belongs to \"" + (*store)->origin() + "\", the key to \"" + (*signer)->name() + "\"");

  auto rng = SeededRng();
  std::string entry(entry_size, '\0');
  auto start = Clock::now();
  uint64_t done = 0;
  while (done < n) {
    auto wb = (*store)->BeginWrite();
    if (!wb.ok()) Die(wb.status().ToString());
    ledger::WriteBatch& w = **wb;
    if ((*store)->origin().empty()) {
      if (auto s = w.SetOrigin((*signer)->name()); !s.ok()) Die(s.ToString());
    }
    uint64_t k = std::min(batch, n - done);
    for (uint64_t i = 0; i < k; i++) {
      FillRandom(rng, entry.data(), entry.size());
      auto leaf = w.Append(entry);
      if (!leaf.ok()) Die(leaf.status().ToString());
    }
    ledger::Checkpoint cp{(*signer)->name(), w.size(), w.root(), {}};
    auto note = (*signer)->SignNote(cp.Format());
    if (!note.ok()) Die(note.status().ToString());
    if (auto s = w.SetCheckpoint(*note); !s.ok()) Die(s.ToString());
    if (auto s = w.Commit(); !s.ok()) Die(s.ToString());
    done += k;
  }
  double secs = Since(start);
  // ledgerd writes log.vkey itself on start; write it here too for clients.
  std::string vkey = (*signer)->verifier().VerifierKeyString();
  if (auto s = ledger::WriteFileAtomic(dir + "/log.vkey", vkey + "\n", 0644); !s.ok()) Die(s.ToString());
  nlohmann::json out{{"entries", n},
                     {"tree_size", (*store)->size()},
                     {"seconds", std::round(secs * 1000) / 1000},
                     {"entries_per_s", std::round(static_cast<double>(n) / secs)},
                     {"origin", (*signer)->name()}};
  std::cout << out.dump() << std::endl;
  return 0;
}

int GenBodiesMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"entries-per-request", "entry-size", "count", "out"}, kGenBodiesUsage);
  uint64_t k = flags.num("entries-per-request", 1, 1, 100000);
  size_t b = flags.num("entry-size", 256, 1, ledger::kMaxEntrySize);
  uint64_t m = flags.num("count", 1000, 1, 100000000);
  std::string out_path = flags.required("out");
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) Die("cannot write " + out_path);
  auto rng = SeededRng();
  std::string entry(b, '\0');
  std::string line;
  for (uint64_t i = 0; i < m; i++) {
    line = "{\"entries\":[";
    for (uint64_t j = 0; j < k; j++) {
      FillRandom(rng, entry.data(), entry.size());
      if (j) line += ',';
      line += '"';
      line += ledger::Base64Encode(entry);
      line += '"';
    }
    line += "]}\n";
    out << line;
  }
  out.close();
  if (!out) Die("error writing " + out_path);
  return 0;
}

int GenPathsMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"kind", "size", "count", "out", "seed"}, kGenPathsUsage);
  std::string kind = flags.required("kind");
  uint64_t size = flags.num("size", 0, 1);
  if (!flags.has("size")) Die("--size is required", 2);
  uint64_t m = flags.num("count", 100000, 1, 100000000);
  std::string out_path = flags.required("out");
  std::mt19937_64 rng = flags.has("seed") ? std::mt19937_64(flags.num("seed", 1)) : SeededRng();
  std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
  if (!out) Die("cannot write " + out_path);
  uint64_t full_tiles = size / ledger::kTileWidth;
  if ((kind == "tile" || kind == "entries") && full_tiles == 0) Die("--size must be at least 256 for tiles", 2);
  for (uint64_t i = 0; i < m; i++) {
    if (kind == "inclusion") {
      out << "/v1/proof/inclusion?index=" << rng() % size << "&size=" << size << "\n";
    } else if (kind == "consistency") {
      out << "/v1/proof/consistency?from=" << 1 + rng() % size << "&to=" << size << "\n";
    } else if (kind == "checkpoint") {
      out << "/checkpoint\n";
    } else if (kind == "tile" || kind == "entries") {
      ledger::TileId id;
      id.entries = kind == "entries";
      id.level = 0;
      id.index = rng() % full_tiles;
      id.width = ledger::kTileWidth;
      out << "/" << ledger::FormatTilePath(id) << "\n";
    } else if (kind == "entry") {
      out << "/v1/entries/" << rng() % size << "\n";
    } else {
      Die("--kind must be inclusion, consistency, checkpoint, tile, entries or entry", 2);
    }
  }
  out.close();
  if (!out) Die("error writing " + out_path);
  return 0;
}

int LmdbBaselineMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"data", "batch", "seconds", "entry-size"}, kLmdbUsage);
  std::string dir = flags.required("data");
  uint64_t batch = flags.num("batch", 0, 1, 1 << 24);
  if (!flags.has("batch")) Die("--batch is required", 2);
  double seconds = flags.real("seconds", 10);
  size_t entry_size = flags.num("entry-size", 256, 12, ledger::kMaxEntrySize);
  MakeDirs(dir);
  ledger::StoreOptions opts;
  opts.dir = dir;
  opts.durable = true;
  auto store = ledger::Store::Open(opts);
  if (!store.ok()) Die("cannot open the store: " + store.status().ToString());

  auto rng = SeededRng();
  std::string entry(entry_size, '\0');
  std::vector<uint32_t> commit_us;
  uint64_t entries = 0;
  uint64_t written0 = WriteBytes();
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    auto wb = (*store)->BeginWrite();
    if (!wb.ok()) Die(wb.status().ToString());
    for (uint64_t i = 0; i < batch; i++) {
      FillRandom(rng, entry.data(), entry.size());
      auto leaf = (*wb)->Append(entry);
      if (!leaf.ok()) Die(leaf.status().ToString());
    }
    auto c0 = Clock::now();
    if (auto s = (*wb)->Commit(); !s.ok()) Die(s.ToString());
    commit_us.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c0).count()));
    entries += batch;
  }
  double secs = Since(start);
  uint64_t written = WriteBytes() - written0;
  std::sort(commit_us.begin(), commit_us.end());
  auto pct = [&](double q) {
    size_t i = std::min(commit_us.size() - 1, static_cast<size_t>(q * static_cast<double>(commit_us.size())));
    return std::round(commit_us[i] / 1000.0 * 1000) / 1000;
  };
  nlohmann::json out{{"batch", batch},
                     {"entries", entries},
                     {"commits", commit_us.size()},
                     {"seconds", std::round(secs * 1000) / 1000},
                     {"entries_per_s", std::round(static_cast<double>(entries) / secs)},
                     {"commits_per_s", std::round(static_cast<double>(commit_us.size()) / secs)},
                     {"commit_p50_ms", pct(0.5)},
                     {"commit_p99_ms", pct(0.99)},
                     {"disk_bytes_written_per_entry", entries ? written / entries : 0}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace bench
