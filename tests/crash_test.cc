// Crash test: SIGKILL ledgerd while clients append, restart it, and check
// that nothing acknowledged was lost: every entry that got an HTTP 200 is
// at its index with its leaf hash, and the checkpoint after the restart is
// consistent with every checkpoint a client was given.
//
// LEDGER_CRASH_ROUNDS sets the number of kill/restart rounds (default 10);
// LEDGER_TEST_SEED fixes the random seed.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledgerd_process.h"

namespace {

using json = nlohmann::json;
using ledger::Hash;
using ledger_test::DecodeHash;
using ledger_test::DecodeHashes;
using ledger_test::EntriesBody;
using ledger_test::LedgerdProcess;
using ledger_test::MakeClient;
using ledger_test::TempDir;

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* s = std::getenv(name);
  if (!s || !*s) return fallback;
  return std::strtoull(s, nullptr, 10);
}

// An acknowledged POST: the entries sent and the 200 response body.
struct Ack {
  std::vector<std::string> entries;
  std::string body;
};

struct AckedEntry {
  std::string entry;
  Hash leaf{};
};

// Errors collects failures from worker threads; the main thread reports them.
class Errors {
 public:
  void Add(std::string e) {
    std::lock_guard<std::mutex> l(mu_);
    count_++;
    if (list_.size() < 20) list_.push_back(std::move(e));
  }
  size_t count() const { return count_; }
  std::string Summary() const {
    std::string s;
    for (const auto& e : list_) s += e + "\n";
    return s;
  }

 private:
  std::mutex mu_;
  size_t count_ = 0;
  std::vector<std::string> list_;
};

// ParallelFor runs fn(i, client) for i in [0, n) on |threads| threads, each
// with its own HTTP client.
template <typename Fn>
void ParallelFor(size_t n, int port, int threads, Fn fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&] {
      auto cli = MakeClient(port);
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i, *cli);
    });
  }
  for (auto& t : ts) t.join();
}

// CheckAck verifies one acknowledged response, as a client would before
// trusting it, and records its entries and checkpoint. Returns "" or why
// it is wrong.
std::string CheckAck(const Ack& ack, const ledger::NoteVerifier& vkey, std::map<uint64_t, AckedEntry>* acked,
                     std::map<uint64_t, Hash>* checkpoints) {
  json j = json::parse(ack.body, nullptr, false);
  if (!j.is_object() || !j.contains("checkpoint") || !j["checkpoint"].is_string() || !j.contains("receipts") ||
      !j["receipts"].is_array())
    return "malformed response: " + ack.body.substr(0, 200);
  auto cp = ledger::OpenCheckpoint(j["checkpoint"].get<std::string>(), vkey);
  if (!cp.ok()) return "checkpoint does not verify: " + cp.status().ToString();
  if (j["receipts"].size() != ack.entries.size()) return "wrong number of receipts";
  auto [it, inserted] = checkpoints->emplace(cp->size, cp->root);
  if (!inserted && it->second != cp->root) return "two roots for size " + std::to_string(cp->size);
  for (size_t i = 0; i < ack.entries.size(); i++) {
    const json& r = j["receipts"][i];
    if (!r.is_object() || !r["index"].is_number_unsigned()) return "malformed receipt " + r.dump();
    uint64_t index = r["index"].get<uint64_t>();
    Hash leaf;
    std::vector<Hash> proof;
    if (!DecodeHash(r["leaf_hash"], &leaf) || !DecodeHashes(r["inclusion"], &proof)) return "malformed receipt " + r.dump();
    if (leaf != ledger::HashLeaf(ack.entries[i])) return "receipt leaf hash is not the entry's";
    if (r.contains("duplicate")) return "unique entry reported as duplicate: " + r.dump();
    if (auto s = ledger::VerifyInclusion(leaf, index, cp->size, proof, cp->root); !s.ok())
      return "receipt does not verify: " + s.ToString();
    auto [eit, fresh] = acked->emplace(index, AckedEntry{ack.entries[i], leaf});
    if (!fresh) return "index " + std::to_string(index) + " acknowledged twice";
  }
  return "";
}

// VerifyLog checks a restarted server against everything acknowledged so
// far. Returns the latest checkpoint.
ledger::Checkpoint VerifyLog(int port, const ledger::NoteVerifier& vkey, const std::map<uint64_t, AckedEntry>& acked,
                             const std::map<uint64_t, Hash>& checkpoints) {
  auto cli = MakeClient(port);
  auto res = cli->Get("/checkpoint");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  auto latest = ledger::OpenCheckpoint(res->body, vkey);
  INFO(res->body << "\n" << latest.status().ToString());
  REQUIRE(latest.ok());
  if (!acked.empty()) CHECK(latest->size > acked.rbegin()->first);
  if (!checkpoints.empty()) CHECK(latest->size >= checkpoints.rbegin()->first);

  // Every acknowledged entry, at its index.
  std::vector<std::pair<uint64_t, const AckedEntry*>> items;
  for (const auto& [i, e] : acked) items.emplace_back(i, &e);
  Errors errors;
  ParallelFor(items.size(), port, 4, [&](size_t k, httplib::Client& c) {
    uint64_t index = items[k].first;
    const AckedEntry& want = *items[k].second;
    std::string where = "entry " + std::to_string(index) + ": ";
    auto r = c.Get(("/v1/entries/" + std::to_string(index)).c_str());
    if (!r) return errors.Add(where + httplib::to_string(r.error()));
    if (r->status != 200) return errors.Add(where + "status " + std::to_string(r->status) + " " + r->body);
    json j = json::parse(r->body, nullptr, false);
    Hash leaf;
    if (!j.is_object() || j["index"] != index || !DecodeHash(j["leaf_hash"], &leaf) || !j["entry"].is_string())
      return errors.Add(where + "malformed " + r->body.substr(0, 200));
    if (leaf != want.leaf) return errors.Add(where + "different leaf hash");
    auto raw = ledger::Base64Decode(j["entry"].get<std::string>());
    if (!raw.ok() || *raw != want.entry) return errors.Add(where + "different entry bytes");
  });
  INFO(errors.Summary());
  CHECK(errors.count() == 0);

  // Every acknowledged checkpoint is a prefix of the latest.
  std::vector<std::pair<uint64_t, Hash>> cps(checkpoints.begin(), checkpoints.end());
  Errors cerrors;
  ParallelFor(cps.size(), port, 4, [&](size_t k, httplib::Client& c) {
    auto [from, from_root] = cps[k];
    std::string where = "consistency " + std::to_string(from) + " -> " + std::to_string(latest->size) + ": ";
    auto r = c.Get(("/v1/proof/consistency?from=" + std::to_string(from) + "&to=" + std::to_string(latest->size)).c_str());
    if (!r) return cerrors.Add(where + httplib::to_string(r.error()));
    if (r->status != 200) return cerrors.Add(where + "status " + std::to_string(r->status) + " " + r->body);
    json j = json::parse(r->body, nullptr, false);
    std::vector<Hash> proof;
    if (!j.is_object() || !DecodeHashes(j["hashes"], &proof)) return cerrors.Add(where + "malformed " + r->body);
    if (auto s = ledger::VerifyConsistency(from, latest->size, proof, from_root, latest->root); !s.ok())
      cerrors.Add(where + s.ToString());
  });
  INFO(cerrors.Summary());
  CHECK(cerrors.count() == 0);
  return *latest;
}

}  // namespace

TEST_CASE("ledgerd: SIGKILL under concurrent load loses nothing acknowledged", "[crash]") {
  const uint64_t rounds = EnvU64("LEDGER_CRASH_ROUNDS", 10);
  const uint64_t seed = EnvU64("LEDGER_TEST_SEED", std::random_device{}());
  CAPTURE(seed, rounds);
  std::mt19937_64 rng(seed);
  auto t0 = std::chrono::steady_clock::now();

  TempDir tmp;
  LedgerdProcess server(tmp.path() + "/data");
  std::optional<ledger::NoteVerifier> vkey;
  std::string vkey_text;
  std::map<uint64_t, AckedEntry> acked;    // index -> entry
  std::map<uint64_t, Hash> checkpoints;    // size -> root, every acknowledged checkpoint
  std::optional<ledger::Checkpoint> last;  // after the previous restart
  uint64_t total_failed = 0;

  for (uint64_t round = 0; round <= rounds; round++) {
    CAPTURE(round);
    server.Start({"--entries", "opaque"});
    INFO("ledgerd log:\n" << server.Log());
    if (!vkey) {
      auto vk = ledger::NoteVerifier::Parse(server.vkey());
      REQUIRE(vk.ok());
      vkey = *vk;
      vkey_text = server.vkey();
    }
    CHECK(server.vkey() == vkey_text);

    // After a restart: nothing acknowledged is lost.
    ledger::Checkpoint now = VerifyLog(server.port(), *vkey, acked, checkpoints);
    if (last) {
      // Also consistent with what the previous incarnation had at start.
      CHECK(now.size >= last->size);
      checkpoints.emplace(last->size, last->root);
    }
    last = now;
    if (round == rounds) break;  // the final restart only verifies

    // Load, then SIGKILL mid-flight.
    const int nthreads = 4 + static_cast<int>(rng() % 5);
    const auto delay = std::chrono::milliseconds(50 + rng() % 351);
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<Ack> acks;
    std::atomic<uint64_t> failed{0}, unexpected{0};
    std::string unexpected_text;
    std::vector<std::thread> threads;
    const int port = server.port();
    for (int t = 0; t < nthreads; t++) {
      uint64_t tseed = rng();
      threads.emplace_back([&, t, tseed] {
        std::mt19937_64 trng(tseed);
        auto cli = MakeClient(port);
        uint64_t counter = 0;
        while (!stop.load()) {
          std::vector<std::string> batch(1 + trng() % 20);
          for (auto& e : batch) {
            // Unique: round, thread and counter, then random bytes.
            e = std::to_string(round) + "/" + std::to_string(t) + "/" + std::to_string(counter++) + "/";
            size_t extra = 8 + trng() % 200;
            for (size_t k = 0; k < extra; k++) e.push_back(static_cast<char>(trng() & 0xff));
          }
          auto res = cli->Post("/v1/entries", EntriesBody(batch), "application/json");
          if (res && res->status == 200) {
            std::lock_guard<std::mutex> l(mu);
            acks.push_back(Ack{std::move(batch), res->body});
          } else if (res) {
            // A response that is not a success is never expected here.
            std::lock_guard<std::mutex> l(mu);
            if (unexpected++ == 0) unexpected_text = std::to_string(res->status) + " " + res->body;
          } else {
            // Killed mid-request or refused: simply not acknowledged.
            failed++;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            cli = MakeClient(port);
          }
        }
      });
    }
    std::this_thread::sleep_for(delay);
    server.Kill();
    stop = true;
    for (auto& t : threads) t.join();

    INFO("round " << round << ": " << nthreads << " threads, killed after " << delay.count() << " ms");
    CHECK(unexpected == 0);
    INFO(unexpected_text);
    size_t before = acked.size();
    for (const auto& ack : acks) {
      std::string err = CheckAck(ack, *vkey, &acked, &checkpoints);
      INFO(err);
      CHECK(err.empty());
    }
    total_failed += failed;
    std::printf("crash_test round %llu: %d threads, killed after %lld ms, %zu requests / %zu entries acknowledged, "
                "%llu requests cut off\n",
                static_cast<unsigned long long>(round), nthreads, static_cast<long long>(delay.count()), acks.size(),
                acked.size() - before, static_cast<unsigned long long>(failed.load()));
    std::fflush(stdout);
  }
  // One more clean stop and start: still all there.
  CHECK(server.Stop() == 0);
  server.Start({"--entries", "opaque"});
  ledger::Checkpoint final_cp = VerifyLog(server.port(), *vkey, acked, checkpoints);
  CHECK(final_cp.size == last->size);
  CHECK(final_cp.root == last->root);
  CHECK(server.Stop() == 0);

  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("crash_test: %llu rounds, %zu entries and %zu checkpoints acknowledged, tree size %llu, "
              "%llu requests cut off, %.1f s\n",
              static_cast<unsigned long long>(rounds), acked.size(), checkpoints.size(),
              static_cast<unsigned long long>(final_cp.size), static_cast<unsigned long long>(total_failed), secs);
  if (rounds > 0) CHECK(acked.size() > 0);
}
