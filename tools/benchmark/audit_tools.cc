// build-audit-log: the data side of the audit benchmark (tools/bench figure
// g, issue #7 "Audit: entries/s vs the bare verification loop"). Builds a
// ledger-mode log of signed access records the way ledgerd builds it
// (Sequencer + RulesHook + SubjectIndexer: rules, derived state, subject
// index and log-signed commitments), through the library rather than HTTP
// so that a log of a few hundred thousand accesses takes seconds. Entries
// are signed ahead on every core and handed to the hook already parsed.
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
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

constexpr char kBuildAuditUsage[] = R"(Usage: ledger-bench build-audit-log --data DIR --accesses N [flags]

Builds a ledger-mode log for `ledgerd --data DIR` to be audited: a holder
(signed by DIR/log.key), its accessor and policy v1, then N accesses by that
accessor to --subjects S random subject tags (round robin), with unique
request ids and a mix of purposes and categories the policy discloses,
appended through ledgerd's own Sequencer, RulesHook and SubjectIndexer (a
commitment after every batch of --batch entries). Writes DIR/log.vkey and,
with --checkpoint-at M, DIR/checkpoint.small: the signed checkpoint of the
log once at least M accesses were appended (for an audit of a prefix with
`ledger-verify audit --checkpoint`). Prints JSON: accesses, subjects,
tree_size, small_size, sign_seconds, append_seconds.

Flags:
  --data DIR          data directory (must not hold a log yet)    (required)
  --accesses N        access entries                              (required)
  --subjects S        distinct subject tags                       [N / 4]
  --checkpoint-at M   also save the checkpoint at >= M accesses   [none]
  --batch B           entries per Append (and per commitment)     [4096]
  --map-size GIB      LMDB map size in GiB                        [64]
)";


}  // namespace

int BuildAuditLogMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"data", "accesses", "subjects", "checkpoint-at", "batch", "map-size"}, kBuildAuditUsage);
  std::string dir = flags.required("data");
  if (!flags.has("accesses")) Die("--accesses is required (see --help)", 2);
  uint64_t total = flags.num("accesses", 0, 1, 100000000);
  uint64_t subjects = flags.num("subjects", std::max<uint64_t>(1, total / 4), 1, 100000000);
  uint64_t small_at = flags.num("checkpoint-at", 0, 0, total);
  uint64_t batch = flags.num("batch", 4096, 1, 1 << 20);
  uint64_t map_gib = flags.num("map-size", 64, 1, 1 << 20);
  LedgerModeLog log(dir, batch, map_gib,
                    {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}, 90},
                     {"FRAUD_PREVENTION", {"ACCOUNT_BASIC", "TRANSACTIONS"}, 365}});
  // What the accesses ask for, in rotation: all disclosed by policy v1.
  struct Use {
    const char* purpose;
    std::set<std::string> categories;
  };
  const std::vector<Use> uses = {{"CUSTOMER_SUPPORT", {"BALANCES"}},
                                 {"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "TRANSACTIONS"}},
                                 {"FRAUD_PREVENTION", {"TRANSACTIONS"}},
                                 {"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC"}}};

  std::mt19937_64 rng(std::random_device{}());
  std::vector<ledger::Hash> tags(subjects);
  for (auto& t : tags) FillRandom(rng, reinterpret_cast<char*>(t.data()), t.size());
  constexpr uint64_t kChunk = 1 << 16;
  double sign_secs = 0;
  uint64_t small_size = 0;
  std::string small_checkpoint;
  auto start = Clock::now();
  uint64_t n = 0;
  for (uint64_t base = 0; base < total; base += n) {
    n = std::min(kChunk, total - base);
    // A chunk ends at the prefix's size, so the prefix is exactly M accesses
    // (plus the set-up entries and the commitments before it).
    if (small_at > base && small_at < base + n) n = small_at - base;
    sign_secs += log.AppendAccesses(base, n, [&](uint64_t i, ledger::AccessRecord* r) {
      const Use& use = uses[i % uses.size()];
      r->purpose = use.purpose;
      r->categories = use.categories;
      r->request_id = "req-" + std::to_string(i);
      r->subject = ledger::Bytes(ledger::HashView(tags[i % subjects]));
    });
    if (small_at > 0 && small_checkpoint.empty() && base + n >= small_at) {
      // Every append above has completed, so the latest checkpoint covers
      // them all (and possibly a commitment after them).
      small_checkpoint = log.sequencer().latest_checkpoint();
      auto cp = ledger::ParseCheckpoint(small_checkpoint.substr(0, small_checkpoint.find("\n\n") + 1));
      if (!cp.ok()) Die("internal: the latest checkpoint does not parse: " + cp.status().ToString());
      small_size = cp->size;
    }
  }
  log.Finish();
  double secs = std::chrono::duration<double>(Clock::now() - start).count() - sign_secs;

  if (!small_checkpoint.empty())
    if (auto s = ledger::WriteFileAtomic(dir + "/checkpoint.small", small_checkpoint, 0644); !s.ok()) Die(s.ToString());
  nlohmann::json j{{"accesses", total},
                   {"subjects", subjects},
                   {"tree_size", log.store().size()},
                   {"small_size", small_size},
                   {"sign_seconds", std::round(sign_secs * 1000) / 1000},
                   {"append_seconds", std::round(secs * 1000) / 1000}};
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace bench
