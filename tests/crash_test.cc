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

#include "faults/log_check.h"
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
// Shared with the fault tests (tests/faults/log_check.h).
using ledger_test::Ack;
using ledger_test::AckedEntry;
using ledger_test::CheckAck;
using ledger_test::EnvU64;
using ledger_test::VerifyLog;

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
