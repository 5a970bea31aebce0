// build-subject-log and subject-proof-bytes: the subject index benchmark's
// data side (issue #5 "Cost"). The log is built the way ledgerd builds it
// (Sequencer + RulesHook + SubjectIndexer: rules, derived state, subject
// index and log-signed commitments in the same LMDB transactions), with
// entries signed ahead on every core and handed to the hook already parsed.
#include <httplib.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "ledger_log.h"
#include "ledger/bytes.h"
#include "ledger/files.h"
#include "ledger/ledger_hook.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/rules.h"
#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "ledger/subject_state.h"
#include "ledger/vrf.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kBuildSubjectUsage[] = R"(Usage: ledger-bench build-subject-log --data DIR --subjects N [flags]

Builds a ledger-mode log for `ledgerd --data DIR` (ledger mode) with N
distinct subjects: a holder (signed by DIR/log.key), its accessor and policy
v1, then N accesses by that accessor, each to a new random subject tag
(--accesses-per-subject K: K accesses each, round robin), appended through
ledgerd's own Sequencer, RulesHook and SubjectIndexer (a commitment after
every batch of --batch entries), so the rules state, the subject index and
its commitments are exactly ledgerd's. Writes DIR/subjects.txt (the tags,
base64url, one per line) and DIR/log.vkey. Prints JSON: subjects, accesses,
tree_size, sign_seconds, append_seconds, accesses_per_s.

Flags:
  --data DIR                 data directory (must not hold a log yet)    (required)
  --subjects N               distinct subjects                           (required)
  --accesses-per-subject K   accesses per subject                        [1]
  --batch B                  entries per Append (and per commitment)     [4096]
  --map-size GIB             LMDB map size in GiB                        [64]
)";

constexpr char kProofBytesUsage[] = R"(Usage: ledger-bench subject-proof-bytes --url http://HOST:PORT --paths FILE [--count M]

Fetches the first M (default 200) paths of FILE (GET /v1/subjects/<tag>) and
prints JSON averages per lookup: body_bytes (the whole answer), proof_bytes
(the hashes a client needs: index proof siblings, the commitment's and
every listed entry's inclusion proofs, as raw 32-byte hashes),
index_proof_bytes, index_siblings, entries.
)";


}  // namespace

int BuildSubjectLogMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"data", "subjects", "accesses-per-subject", "batch", "map-size"}, kBuildSubjectUsage);
  std::string dir = flags.required("data");
  uint64_t subjects = flags.num("subjects", 0, 1, 100000000);
  if (!flags.has("subjects")) Die("--subjects is required", 2);
  uint64_t per = flags.num("accesses-per-subject", 1, 1, 1000);
  uint64_t batch = flags.num("batch", 4096, 1, 1 << 20);
  uint64_t map_gib = flags.num("map-size", 64, 1, 1 << 20);
  LedgerModeLog log(dir, batch, map_gib, {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}, 90}});

  // The tags; then the accesses, a chunk at a time (without holding the
  // whole log in memory).
  std::mt19937_64 rng(std::random_device{}());
  std::vector<ledger::Bytes> tags(subjects, ledger::Bytes(32, '\0'));
  for (auto& t : tags) FillRandom(rng, t.data(), 32);
  uint64_t total = subjects * per;
  constexpr uint64_t kChunk = 1 << 16;
  double sign_secs = 0;
  auto start = Clock::now();
  for (uint64_t base = 0; base < total; base += kChunk) {
    sign_secs += log.AppendAccesses(base, std::min(kChunk, total - base), [&](uint64_t i, ledger::AccessRecord* r) {
      r->purpose = "CUSTOMER_SUPPORT";
      r->categories = {"BALANCES"};
      r->request_id = "bench-" + std::to_string(i);
      r->subject = tags[i % subjects];
    });
  }
  log.Finish();
  double secs = std::chrono::duration<double>(Clock::now() - start).count() - sign_secs;

  std::ofstream out(dir + "/subjects.txt", std::ios::trunc);
  for (const auto& t : tags) out << ledger::Base64UrlEncode(t) << "\n";
  out.close();
  if (!out) Die("cannot write " + dir + "/subjects.txt");
  nlohmann::json j{{"subjects", subjects},
                   {"accesses", total},
                   {"tree_size", log.store().size()},
                   {"sign_seconds", std::round(sign_secs * 1000) / 1000},
                   {"append_seconds", std::round(secs * 1000) / 1000},
                   {"accesses_per_s", std::round(static_cast<double>(total) / secs)}};
  std::cout << j.dump() << std::endl;
  return 0;
}

int SubjectProofBytesMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"url", "paths", "count"}, kProofBytesUsage);
  std::string url = flags.required("url");
  uint64_t count = flags.num("count", 200, 1, 1000000);
  std::ifstream in(flags.required("paths"));
  if (!in) Die("cannot read --paths");
  httplib::Client client(url);
  client.set_keep_alive(true);
  uint64_t n = 0, body = 0, proof = 0, index_proof = 0, siblings = 0, entries = 0;
  std::string path;
  while (n < count && std::getline(in, path)) {
    if (path.empty()) continue;
    auto res = client.Get(path.c_str());
    if (!res || res->status != 200) Die("GET " + path + " failed");
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (!j.is_object()) Die("GET " + path + ": not JSON");
    body += res->body.size();
    uint64_t s = j["proof"]["siblings"].size();
    siblings += s;
    index_proof += 32 * s + (j["proof"].contains("other_value") ? 72 : 0);
    uint64_t hashes = 0;
    if (j["commitment"].is_object()) hashes += j["commitment"]["inclusion"].size();
    for (const auto& e : j["entries"]) hashes += e["inclusion"].size();
    for (const auto& e : j["pending"]) hashes += e["inclusion"].size();
    for (const auto& e : j["policies"]) hashes += e["inclusion"].size();
    entries += j["entries"].size();
    proof += 32 * hashes + 32 * s + (j["proof"].contains("other_value") ? 72 : 0);
    n++;
  }
  if (n == 0) Die("no paths");
  auto avg = [&](uint64_t x) { return std::round(static_cast<double>(x) / n * 10) / 10; };
  nlohmann::json j{{"lookups", n},
                   {"body_bytes", avg(body)},
                   {"proof_bytes", avg(proof)},
                   {"index_proof_bytes", avg(index_proof)},
                   {"index_siblings", avg(siblings)},
                   {"entries", avg(entries)}};
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace bench
