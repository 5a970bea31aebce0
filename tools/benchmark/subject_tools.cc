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

std::string Now() { return ledger::FormatTime(static_cast<int64_t>(time(nullptr))); }

}  // namespace

int BuildSubjectLogMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"data", "subjects", "accesses-per-subject", "batch", "map-size"}, kBuildSubjectUsage);
  std::string dir = flags.required("data");
  uint64_t subjects = flags.num("subjects", 0, 1, 100000000);
  if (!flags.has("subjects")) Die("--subjects is required", 2);
  uint64_t per = flags.num("accesses-per-subject", 1, 1, 1000);
  uint64_t batch = flags.num("batch", 4096, 1, 1 << 20);
  uint64_t map_gib = flags.num("map-size", 64, 1, 1 << 20);
  if (sodium_init() < 0) Die("libsodium failed to initialise");
  std::string mk = "mkdir -p '" + dir + "'";
  if (std::system(mk.c_str()) != 0) Die("cannot create " + dir);

  bool created = false;
  auto signer = ledger::LoadOrCreateNoteKey(dir + "/log.key", "localhost/access-ledger", &created);
  if (!signer.ok()) Die(signer.status().ToString());
  ledger::StoreOptions sopts;
  sopts.dir = dir + "/lmdb";
  sopts.map_size = map_gib << 30;
  auto store = ledger::Store::Open(sopts);
  if (!store.ok()) Die("cannot open the store: " + store.status().ToString());
  if ((*store)->size() != 0) Die(sopts.dir + " already holds a log");

  // ledgerd's ledger mode, minus HTTP.
  ledger::RulesOptions ropts;
  ropts.log_public_key = ledger::Bytes((*signer)->verifier().public_key());
  ropts.max_clock_skew = 864000;
  ledger::RulesHook hook(ledger::LedgerRules(ropts), [] { return static_cast<int64_t>(time(nullptr)); });
  ledger::SubjectIndexerOptions iopts;
  iopts.interval = std::chrono::milliseconds(1);
  ledger::SubjectIndexer indexer(signer->get(), iopts);
  if (auto s = indexer.Recover(**store); !s.ok()) Die(s.ToString());
  hook.SetSubjectIndexer(&indexer);
  ledger::SequencerOptions qopts;
  qopts.max_batch_entries = batch;
  qopts.max_queued_entries = std::max<size_t>(batch * 4, 1 << 20);
  ledger::Sequencer seq(store->get(), signer->get(), qopts, &hook);
  if (auto s = seq.Start(); !s.ok()) Die(s.ToString());

  auto holder = ledger::Ed25519Signer::Generate();
  auto accessor = ledger::Ed25519Signer::Generate();
  auto vrf = ledger::VrfSecretKey::Generate();
  if (!holder.ok() || !accessor.ok() || !vrf.ok()) Die("key generation failed");
  std::string now_text = Now();
  auto append = [&](std::vector<ledger::Bytes> entries, std::vector<std::shared_ptr<const void>> contexts = {}) {
    auto r = seq.Append(std::move(entries), std::move(contexts));
    if (!r.ok()) Die("append: " + r.status().ToString());
  };
  {
    ledger::HolderRecord h{"bench-bank", ledger::Bytes((*holder)->public_key()), ledger::Bytes((*vrf)->public_key()), now_text};
    append({ledger::SignEnvelopeWith(ledger::kHolderPayloadType, ledger::EncodeHolder(h), (*signer)->verifier().public_key(),
                                     [&](ledger::ByteView m) { return (*signer)->Sign(m); })});
    ledger::AccessorRecord a{"bench-bank", "chat-banking", ledger::AccessorRecord::Action::kAuthorize,
                             {ledger::Bytes((*accessor)->public_key())}, now_text};
    append({ledger::SignEnvelope(ledger::kAccessorPayloadType, ledger::EncodeAccessor(a), **holder)});
    ledger::PolicyRecord p;
    p.holder = "bench-bank";
    p.accessor = "chat-banking";
    p.version = 1;
    p.purposes = {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}, 90}};
    p.time = now_text;
    append({ledger::SignEnvelope(ledger::kPolicyPayloadType, ledger::EncodePolicy(p), **accessor)});
  }

  // The tags; then the accesses, a chunk at a time: signed ahead on every
  // core, then appended by a few submitters (so the sequencer's batches are
  // full), without holding the whole log in memory.
  std::mt19937_64 rng(std::random_device{}());
  std::vector<ledger::Bytes> tags(subjects, ledger::Bytes(32, '\0'));
  for (auto& t : tags) FillRandom(rng, t.data(), 32);
  uint64_t total = subjects * per;
  constexpr uint64_t kChunk = 1 << 16;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  double sign_secs = 0;
  auto start = Clock::now();
  for (uint64_t base = 0; base < total; base += kChunk) {
    uint64_t n = std::min(kChunk, total - base);
    std::vector<ledger::Bytes> entries(n);
    std::vector<std::shared_ptr<const void>> parsed(n);
    auto sign_start = Clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; t++) {
      pool.emplace_back([&, t] {
        ledger::AccessRecord r;
        r.accessor = "chat-banking";
        r.holder = "bench-bank";
        r.purpose = "CUSTOMER_SUPPORT";
        r.categories = {"BALANCES"};
        r.consent = "bench-consent";
        r.time = now_text;
        for (uint64_t k = t; k < n; k += threads) {
          uint64_t i = base + k;
          r.request_id = "bench-" + std::to_string(i);
          r.subject = tags[i % subjects];
          entries[k] = ledger::SignEnvelope(ledger::kAccessPayloadType, ledger::EncodeAccess(r), **accessor);
          // The hook takes the entry parsed: we signed it, so it need not
          // verify it again.
          auto pe = std::make_shared<ledger::ParsedEntry>();
          pe->kind = ledger::EntryKind::kAccess;
          auto env = ledger::ParseEnvelope(entries[k]);
          if (!env.ok()) Die("internal: " + env.status().ToString());
          pe->envelope = std::move(*env);
          pe->record = r;
          parsed[k] = std::move(pe);
        }
      });
    }
    for (auto& th : pool) th.join();
    sign_secs += std::chrono::duration<double>(Clock::now() - sign_start).count();
    std::atomic<uint64_t> next{0};
    std::vector<std::thread> submitters;
    for (int s = 0; s < 4; s++) {
      submitters.emplace_back([&] {
        for (;;) {
          uint64_t at = next.fetch_add(batch);
          if (at >= n) return;
          uint64_t end = std::min(n, at + batch);
          std::vector<ledger::Bytes> es(std::make_move_iterator(entries.begin() + at),
                                        std::make_move_iterator(entries.begin() + end));
          std::vector<std::shared_ptr<const void>> cs(parsed.begin() + at, parsed.begin() + end);
          append(std::move(es), std::move(cs));
        }
      });
    }
    for (auto& th : submitters) th.join();
  }
  // The last accesses' commitment follows at the sequencer's next wake-up.
  for (int i = 0; i < 600 && indexer.pending_accesses() > 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (indexer.pending_accesses() > 0) Die("the last commitment did not come");
  double secs = std::chrono::duration<double>(Clock::now() - start).count() - sign_secs;
  seq.Stop();

  std::ofstream out(dir + "/subjects.txt", std::ios::trunc);
  for (const auto& t : tags) out << ledger::Base64UrlEncode(t) << "\n";
  out.close();
  if (!out) Die("cannot write " + dir + "/subjects.txt");
  std::string vkey = (*signer)->verifier().VerifierKeyString();
  if (auto s = ledger::WriteFileAtomic(dir + "/log.vkey", vkey + "\n", 0644); !s.ok()) Die(s.ToString());
  nlohmann::json j{{"subjects", subjects},
                   {"accesses", total},
                   {"tree_size", (*store)->size()},
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
