// Fault tests (issue #8): ledgerd in ledger mode, appending signed access
// records under concurrent load, while
//   - it is SIGKILLed at random moments and restarted ([kill]);
//   - its LMDB map fills up, then it restarts with a larger map ([mapfull]);
//   - the disk fails a data write, an fsync or the meta-page write
//     (tests/faults/faultshim.c, LD_PRELOAD) ([diskerror]);
//   - its wall clock jumps backwards and forwards (the same shim) ([clock]).
// After every fault: every acknowledged entry is at its index with its
// bytes, every acknowledged checkpoint is consistent with the latest, the
// stored checkpoint verifies, and the derived state holds (a retry of an
// acknowledged access gets the original receipt, also when signed by
// another authorised key; its request id with another payload is refused).
//
// Environment: LEDGER_FAULT_KILL_ROUNDS (default 10), LEDGER_TEST_SEED,
// LEDGER_FAULTSHIM (the shim's path; set by CMake through FAULTSHIM_PATH).
#include <httplib.h>
#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/files.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "log_check.h"

#ifndef FAULTSHIM_PATH
#error "FAULTSHIM_PATH must be defined to faultshim.so's path"
#endif

namespace {

using json = nlohmann::json;
using ledger::Bytes;
using ledger::Hash;
using namespace ledger_test;

constexpr char kHolder[] = "demo-bank";
constexpr char kAccessor[] = "chat-banking";

int64_t Now() { return static_cast<int64_t>(time(nullptr)); }

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// ScopedEnv sets environment variables for a child started meanwhile (the
// test's own threads are joined whenever it is used). Preloading the shim
// into a sanitized ledgerd needs ASan's link-order check off.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) : vars_(std::move(vars)) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    vars_.emplace_back("ASAN_OPTIONS", std::string(asan ? asan : "") + (asan && *asan ? ":" : "") +
                                           "verify_asan_link_order=0");
    if (asan) saved_asan_ = asan;
    for (auto& [k, v] : vars_) setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto& [k, v] : vars_) unsetenv(k.c_str());
    if (saved_asan_) setenv("ASAN_OPTIONS", saved_asan_->c_str(), 1);
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
  std::optional<std::string> saved_asan_;
};

// Ledger is one ledgerd --demo data directory with the demo accessor's key,
// a second key the test authorises for the same accessor, and everything
// acknowledged so far.
struct Ledger {
  TempDir tmp;
  LedgerdProcess server{tmp.path() + "/data"};
  std::optional<ledger::NoteVerifier> vkey;
  std::unique_ptr<ledger::Ed25519Signer> accessor_key, second_key;
  std::map<uint64_t, AckedEntry> acked;  // index -> entry
  std::map<uint64_t, Hash> checkpoints;  // size -> root
  std::mutex mu;

  // Start (re)starts ledgerd; on first start it loads the demo keys and
  // authorises a second key for the accessor.
  void Start(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), "--demo");
    server.Start(extra, std::chrono::seconds(20));
    if (vkey) return;
    auto vk = ledger::NoteVerifier::Parse(server.vkey());
    REQUIRE(vk.ok());
    vkey = *vk;
    auto acc = ledger::LoadSigningKeyFile(server.data_dir() + "/demo/accessor.key");
    auto holder = ledger::LoadSigningKeyFile(server.data_dir() + "/demo/holder.key");
    REQUIRE(acc.ok());
    REQUIRE(holder.ok());
    accessor_key = std::move(*acc);
    auto second = ledger::Ed25519Signer::Generate();
    REQUIRE(second.ok());
    second_key = std::move(*second);
    ledger::AccessorRecord auth{kHolder, kAccessor, ledger::AccessorRecord::Action::kAuthorize,
                                {Bytes(second_key->public_key())}, ledger::FormatTime(Now())};
    Bytes entry = ledger::SignEnvelope(ledger::kAccessorPayloadType, ledger::EncodeAccessor(auth), **holder);
    auto cli = MakeClient(server.port());
    auto res = cli->Post("/v1/entries", EntriesBody({entry}), "application/json");
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    REQUIRE(CheckAck(Ack{{entry}, res->body}, *vkey, &acked, &checkpoints).empty());
  }

  // Record checks and records an acknowledged response.
  std::string Record(const Ack& ack) {
    std::lock_guard<std::mutex> l(mu);
    return CheckAck(ack, *vkey, &acked, &checkpoints);
  }
};

// ShimActive reports whether faultshim.so took effect in the server (not
// in a sanitized build, whose runtime intercepts the same functions first).
bool ShimActive(const LedgerdProcess& server) {
  std::string log = server.Log();
  if (log.find("faultshim: not interposed") != std::string::npos) {
    WARN("faultshim.so cannot interpose in this ledgerd build (sanitizer runtime); fault injection skipped");
    return false;
  }
  REQUIRE(log.find("faultshim: interposed") != std::string::npos);
  return true;
}

// AccessPayload is a valid access for the demo policy, unique by |rid|.
Bytes AccessPayload(const std::string& rid, std::mt19937_64& rng, int64_t when, const std::string& detail = "") {
  ledger::AccessRecord r;
  r.request_id = rid;
  r.accessor = kAccessor;
  r.holder = kHolder;
  r.subject.resize(32);
  for (auto& c : r.subject) c = static_cast<char>(rng());
  r.purpose = "CUSTOMER_SUPPORT";
  r.categories = {"BALANCES"};
  r.consent = "consent-" + std::to_string(rng() % 100000);
  r.time = ledger::FormatTime(when);
  r.actor = "agent-" + std::to_string(rng() % 50);
  r.detail = detail.empty() ? std::string(rng() % 200, 'x') : detail;
  if (r.detail->empty()) r.detail.reset();
  return ledger::EncodeAccess(r);
}

Bytes SignAccess(const Bytes& payload, const ledger::Ed25519Signer& key) {
  return ledger::SignEnvelope(ledger::kAccessPayloadType, payload, key);
}

// Load runs threads appending batches of 1..10 signed access records until
// |stop|, recording every 200 in |lg| and counting other outcomes.
struct LoadStats {
  std::mutex mu;
  std::map<int, uint64_t> statuses;                 // HTTP status -> responses
  uint64_t cut_off = 0;                              // transport failures
  std::vector<std::pair<int, std::string>> refused;  // first few non-200 bodies
  std::vector<std::string> failed_entries;           // entries of answered non-200 requests
  // Entries of requests answered 503 "the entries are logged, but their
  // receipts could not be read": committed just before a storage failure.
  std::vector<std::string> logged_unread;
  std::vector<std::string> bad_acks;                 // CheckAck failures
};

void RunLoad(Ledger& lg, int port, int nthreads, uint64_t seed, const std::string& tag, std::atomic<bool>& stop,
             LoadStats& st) {
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + static_cast<uint64_t>(t) * 7919);
      auto cli = MakeClient(port);
      uint64_t counter = 0;
      while (!stop.load()) {
        std::vector<std::string> batch(1 + rng() % 10);
        for (auto& e : batch) {
          std::string rid = tag + "-" + std::to_string(t) + "-" + std::to_string(counter++);
          e = SignAccess(AccessPayload(rid, rng, Now()), *lg.accessor_key);
        }
        auto res = cli->Post("/v1/entries", EntriesBody(batch), "application/json");
        if (res && res->status == 200) {
          std::string err = lg.Record(Ack{batch, res->body});
          if (!err.empty()) {
            std::lock_guard<std::mutex> l(st.mu);
            st.bad_acks.push_back(err);
          }
          std::lock_guard<std::mutex> l(st.mu);
          st.statuses[200]++;
        } else if (res) {
          std::lock_guard<std::mutex> l(st.mu);
          st.statuses[res->status]++;
          if (st.refused.size() < 10) st.refused.emplace_back(res->status, res->body);
          auto& into = res->status == 503 && res->body.find("the entries are logged") != std::string::npos
                           ? st.logged_unread
                           : st.failed_entries;
          into.insert(into.end(), batch.begin(), batch.end());
        } else {
          {
            std::lock_guard<std::mutex> l(st.mu);
            st.cut_off++;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
          cli = MakeClient(port);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

// PostOne posts one entry and returns (status, parsed body).
// A transport error is retried on a fresh connection: appends are
// idempotent (the same bytes answer with the original receipt).
std::pair<int, json> PostOne(std::unique_ptr<httplib::Client>& cli, int port, const std::string& entry) {
  auto res = cli->Post("/v1/entries", EntriesBody({entry}), "application/json");
  for (int attempt = 0; attempt < 2 && !res; attempt++) {
    cli = MakeClient(port);
    res = cli->Post("/v1/entries", EntriesBody({entry}), "application/json");
  }
  if (!res) return {0, json()};
  return {res->status, json::parse(res->body, nullptr, false)};
}

// CheckDerivedState retries up to |samples| acknowledged accesses: the same
// bytes and the same payload signed by the second key both answer with the
// original index (duplicate); the request id with another payload is refused
// (409 request id reused). Nothing of this is logged.
void CheckDerivedState(Ledger& lg, size_t samples, std::mt19937_64& rng) {
  std::vector<uint64_t> accesses;
  for (const auto& [index, e] : lg.acked) {
    auto env = ledger::ParseEnvelope(e.entry);
    if (env.ok() && env->payload_type == ledger::kAccessPayloadType) accesses.push_back(index);
  }
  if (accesses.empty()) return;  // e.g. killed before any access was acknowledged
  std::shuffle(accesses.begin(), accesses.end(), rng);
  if (accesses.size() > samples) accesses.resize(samples);
  const int port = lg.server.port();
  auto cli = MakeClient(port);
  for (uint64_t index : accesses) {
    const AckedEntry& want = lg.acked.at(index);
    CAPTURE(index);
    auto env = ledger::ParseEnvelope(want.entry);
    REQUIRE(env.ok());
    // 1. The exact bytes again.
    auto [s1, j1] = PostOne(cli, port, want.entry);
    INFO(j1.dump());
    REQUIRE(s1 == 200);
    CHECK(j1["receipts"][0]["index"] == index);
    CHECK(j1["receipts"][0]["duplicate"] == true);
    // 2. The same access signed by another authorised key: a retry by
    // request id (derived state), answered with the original entry.
    auto [s2, j2] = PostOne(cli, port, SignAccess(env->payload, *lg.second_key));
    INFO(j2.dump());
    REQUIRE(s2 == 200);
    CHECK(j2["receipts"][0]["index"] == index);
    CHECK(j2["receipts"][0]["duplicate"] == true);
    Hash leaf;
    REQUIRE(DecodeHash(j2["receipts"][0]["leaf_hash"], &leaf));
    CHECK(leaf == want.leaf);
    // 3. The request id with another payload.
    auto rec = ledger::ParseAccess(env->payload);
    REQUIRE(rec.ok());
    rec->detail = "changed after the fault";
    auto [s3, j3] = PostOne(cli, port, SignAccess(ledger::EncodeAccess(*rec), *lg.accessor_key));
    INFO(j3.dump());
    CHECK(s3 == 409);
    CHECK(j3.value("error", "").rfind("request id reused", 0) == 0);
  }
}

// AppendSome appends |n| fresh accesses one request at a time and records them.
void AppendSome(Ledger& lg, int n, const std::string& tag, std::mt19937_64& rng, int64_t when = 0) {
  auto cli = MakeClient(lg.server.port());
  for (int i = 0; i < n; i++) {
    std::string entry = SignAccess(AccessPayload(tag + "-" + std::to_string(i), rng, when ? when : Now()), *lg.accessor_key);
    auto res = cli->Post("/v1/entries", EntriesBody({entry}), "application/json");
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    REQUIRE(lg.Record(Ack{{entry}, res->body}).empty());
  }
}

// Sample returns every item at or above |fresh_from| (in key order: what
// the last round acknowledged) and |k| random older ones, so that a long
// campaign's per-round check stays bounded; the final check takes all.
template <typename V>
std::map<uint64_t, V> Sample(const std::map<uint64_t, V>& all, uint64_t fresh_from, size_t k, std::mt19937_64& rng) {
  std::map<uint64_t, V> out(all.lower_bound(fresh_from), all.end());
  std::vector<uint64_t> older;
  for (auto it = all.begin(); it != all.end() && it->first < fresh_from; ++it) older.push_back(it->first);
  std::shuffle(older.begin(), older.end(), rng);
  for (size_t i = 0; i < older.size() && i < k; i++) out.emplace(older[i], all.at(older[i]));
  return out;
}

uint64_t Seed() {
  uint64_t seed = EnvU64("LEDGER_TEST_SEED", std::random_device{}());
  std::printf("faults_test: seed %llu (LEDGER_TEST_SEED=%llu reproduces)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  return seed;
}

}  // namespace

TEST_CASE("faults: SIGKILL under signed-record load loses nothing acknowledged", "[faults][kill]") {
  const uint64_t rounds = EnvU64("LEDGER_FAULT_KILL_ROUNDS", 10);
  const uint64_t seed = Seed();
  CAPTURE(seed, rounds);
  std::mt19937_64 rng(seed);
  auto t0 = std::chrono::steady_clock::now();
  Ledger lg;
  std::optional<ledger::Checkpoint> last;
  uint64_t total_cut = 0, total_requests = 0;
  uint64_t fresh_entries = 0, fresh_checkpoints = 0;  // first index / size acknowledged in the last round
  for (uint64_t round = 0; round <= rounds; round++) {
    CAPTURE(round);
    lg.Start();
    INFO("ledgerd log:\n" << lg.server.Log());
    // Every 10th round and the last check everything; the others what the
    // last round acknowledged plus 2000 random older entries and checkpoints.
    bool full = round % 10 == 0 || round == rounds;
    ledger::Checkpoint now =
        full ? VerifyLog(lg.server.port(), *lg.vkey, lg.acked, lg.checkpoints)
             : VerifyLog(lg.server.port(), *lg.vkey, Sample(lg.acked, fresh_entries, 2000, rng),
                         Sample(lg.checkpoints, fresh_checkpoints, 2000, rng));
    fresh_entries = now.size;
    fresh_checkpoints = now.size;
    if (last) {
      CHECK(now.size >= last->size);
      lg.checkpoints.emplace(last->size, last->root);
    }
    last = now;
    if (round > 0) CheckDerivedState(lg, 5, rng);
    if (round == rounds) break;

    const int nthreads = 2 + static_cast<int>(rng() % 5);
    const auto delay = std::chrono::milliseconds(50 + rng() % 451);
    std::atomic<bool> stop{false};
    LoadStats st;
    size_t before = lg.acked.size();
    const uint64_t load_seed = rng();
    std::thread load([&] { RunLoad(lg, lg.server.port(), nthreads, load_seed, "k" + std::to_string(round), stop, st); });
    std::this_thread::sleep_for(delay);
    lg.server.Kill();
    stop = true;
    load.join();
    INFO("bad acks: " << (st.bad_acks.empty() ? "" : st.bad_acks[0]));
    CHECK(st.bad_acks.empty());
    // Nothing but 200 or a cut connection is expected while killing.
    std::string other;
    for (auto& [status, body] : st.refused) other += std::to_string(status) + " " + body + "\n";
    INFO(other);
    CHECK(st.refused.empty());
    total_cut += st.cut_off;
    total_requests += st.statuses[200];
    std::printf("faults_test kill round %llu: %d threads, killed after %lld ms, %llu requests / %zu records "
                "acknowledged, %llu cut off\n",
                static_cast<unsigned long long>(round), nthreads, static_cast<long long>(delay.count()),
                static_cast<unsigned long long>(st.statuses[200]), lg.acked.size() - before,
                static_cast<unsigned long long>(st.cut_off));
    std::fflush(stdout);
  }
  CHECK(lg.server.Stop() == 0);
  lg.Start();
  ledger::Checkpoint final_cp = VerifyLog(lg.server.port(), *lg.vkey, lg.acked, lg.checkpoints);
  CHECK(final_cp.size >= last->size);
  CheckDerivedState(lg, 20, rng);
  CHECK(lg.server.Stop() == 0);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("faults_test kill: %llu rounds, %zu entries and %zu checkpoints acknowledged (%llu requests), "
              "tree size %llu, %llu requests cut off, lost 0, %.1f s\n",
              static_cast<unsigned long long>(rounds), lg.acked.size(), lg.checkpoints.size(),
              static_cast<unsigned long long>(total_requests), static_cast<unsigned long long>(final_cp.size),
              static_cast<unsigned long long>(total_cut), secs);
  if (rounds > 0) CHECK(lg.acked.size() > rounds);
}

TEST_CASE("faults: a full LMDB map refuses appends with 507, keeps serving, resumes with a larger map",
          "[faults][mapfull]") {
  const uint64_t seed = Seed();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  Ledger lg;
  lg.Start({"--map-size", "4M"});
  INFO("ledgerd log:\n" << lg.server.Log());
  const int port = lg.server.port();

  // Load until every thread has seen several 507s.
  LoadStats st;
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    for (int i = 0; i < 3000 && !stop; i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::lock_guard<std::mutex> l(st.mu);
      if (st.statuses[507] >= 40) stop = true;
    }
    stop = true;
  });
  RunLoad(lg, port, 4, rng(), "m", stop, st);
  watcher.join();
  CHECK(st.bad_acks.empty());
  REQUIRE(st.statuses[507] >= 40);
  for (auto& [status, body] : st.refused) {
    INFO(body);
    CHECK(status == 507);
    json j = json::parse(body, nullptr, false);
    CHECK(j.is_object());
    CHECK(j.value("error", "").find("map is full") != std::string::npos);
    CHECK(j.value("error", "").find("--map-size") != std::string::npos);
  }
  for (auto& [status, n] : st.statuses) CHECK((status == 200 || status == 507));
  size_t acked_full = lg.acked.size();
  REQUIRE(acked_full > 500);  // the map did hold a good number first

  // Full: reads keep working and everything acknowledged is there.
  VerifyLog(port, *lg.vkey, lg.acked, lg.checkpoints);
  auto cli = MakeClient(port);
  auto health = cli->Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  auto tile = cli->Get("/tile/0/000");
  REQUIRE(tile);
  CHECK(tile->status == 200);
  // Still refusing (not a storage failure: ledgerd keeps running).
  std::string one = SignAccess(AccessPayload("m-after-full", rng, Now(), std::string(900, 'y')), *lg.accessor_key);
  auto [s, j] = PostOne(cli, port, one);
  INFO(j.dump());
  CHECK((s == 507 || s == 200));
  if (s == 200) REQUIRE(lg.Record(Ack{{one}, j.dump()}).empty());

  // A clean stop, then a larger map: everything is there and appends resume.
  CHECK(lg.server.Stop() == 0);
  lg.Start({"--map-size", "64M"});
  VerifyLog(lg.server.port(), *lg.vkey, lg.acked, lg.checkpoints);
  CheckDerivedState(lg, 10, rng);
  AppendSome(lg, 50, "m-resumed", rng);
  // The entries refused for a full map were not logged: they can be sent again.
  auto cli2 = MakeClient(lg.server.port());
  int refused_then_logged = 0;
  for (size_t i = 0; i < st.failed_entries.size() && i < 20; i++) {
    auto res = cli2->Post("/v1/entries", EntriesBody({st.failed_entries[i]}), "application/json");
    REQUIRE(res);
    INFO(res->body);
    REQUIRE(res->status == 200);
    json jr = json::parse(res->body, nullptr, false);
    if (jr["receipts"][0].contains("duplicate")) refused_then_logged++;
    else REQUIRE(lg.Record(Ack{{st.failed_entries[i]}, res->body}).empty());
  }
  CHECK(refused_then_logged == 0);
  VerifyLog(lg.server.port(), *lg.vkey, lg.acked, lg.checkpoints);
  CHECK(lg.server.Stop() == 0);
  std::printf("faults_test mapfull: %zu records acknowledged before the 4 MiB map was full, %llu answers 507, "
              "0 lost; resumed with 64 MiB\n",
              acked_full, static_cast<unsigned long long>(st.statuses[507]));
}

TEST_CASE("faults: a failed disk write or fsync fails its batch and stops ledgerd cleanly", "[faults][diskerror]") {
  const std::string mode = GENERATE(as<std::string>{}, "write EIO", "write ENOSPC", "sync EIO", "meta EIO");
  CAPTURE(mode);
  const uint64_t seed = Seed();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  Ledger lg;
  const std::string trigger = lg.tmp.path() + "/io-fault";
  {
    ScopedEnv env({{"LD_PRELOAD", FAULTSHIM_PATH}, {"LEDGER_FAULT_IO_FILE", trigger}});
    lg.Start();
  }
  if (!ShimActive(lg.server)) return;
  INFO("ledgerd log:\n" << lg.server.Log());
  LoadStats st;
  std::atomic<bool> stop{false};
  const uint64_t load_seed = rng();
  std::thread load([&] { RunLoad(lg, lg.server.port(), 4, load_seed, "d", stop, st); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  size_t acked_before = 0;
  {
    std::lock_guard<std::mutex> l(lg.mu);
    acked_before = lg.acked.size();
  }
  WriteFile(trigger, mode + "\n");
  // ledgerd stops on its own.
  bool exited = false;
  for (int i = 0; i < 1000 && !exited; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    exited = lg.server.Log().find("stopped at tree size") != std::string::npos;
  }
  stop = true;
  load.join();
  std::remove(trigger.c_str());
  REQUIRE(exited);
  int status = lg.server.Stop();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  std::string log = lg.server.Log();
  CHECK(log.find("faultshim: ") != std::string::npos);
  CHECK(log.find("ledgerd: storage failure, stopping") != std::string::npos);
  CHECK(st.bad_acks.empty());
  CHECK(acked_before > 0);
  // The failed batch's submitters got 500; later ones 503; a request that
  // httplib was still reading when ledgerd stopped may get its generic 400
  // (nothing of it is logged either: checked below).
  CHECK(st.statuses[500] >= 1);
  std::string bodies;
  for (auto& [s, body] : st.refused) bodies += std::to_string(s) + " " + body + "\n";
  for (auto& [s, n] : st.statuses) {
    CAPTURE(s, n, bodies);
    CHECK((s == 200 || s == 500 || s == 503 || s == 400));
  }
  for (auto& [s, body] : st.refused) {
    CAPTURE(s);
    if (s == 400) CHECK(body == R"({"error":"bad request"})");
    INFO(body);
    json j = json::parse(body, nullptr, false);
    CHECK(j.is_object());
    CHECK(j.contains("error"));
    if (s == 503) {
      const std::string reason = j.value("error", "");
      CHECK((reason.find("storage failure") != std::string::npos || reason.find("the entries are logged") == 0));
    }
  }

  // Restart without the shim: everything acknowledged is there, nothing of
  // the failed requests is, and appends work.
  lg.Start();
  ledger::Checkpoint cp = VerifyLog(lg.server.port(), *lg.vkey, lg.acked, lg.checkpoints);
  auto cli = MakeClient(lg.server.port());
  size_t present = 0;
  for (const auto& e : st.failed_entries) {
    auto r = cli->Get(("/v1/proof/by-hash?hash=" + QueryEscape(ledger::Base64Encode(ledger::HashView(ledger::HashLeaf(e)))) +
                       "&size=" + std::to_string(cp.size))
                          .c_str());
    REQUIRE(r);
    if (r->status == 200) present++;
    else CHECK(r->status == 404);
  }
  CHECK(present == 0);
  // Entries committed just before the failure whose receipts could not be
  // read are in the log, and a retry gets their receipts.
  for (const auto& e : st.logged_unread) {
    auto [status, body] = PostOne(cli, lg.server.port(), e);
    REQUIRE(status == 200);
    REQUIRE(body["receipts"][0].value("duplicate", false));
    // The original's receipt: checked (and recorded) as a fresh one.
    body["receipts"][0].erase("duplicate");
    std::string err = lg.Record(Ack{{e}, body.dump()});
    INFO(err);
    REQUIRE(err.empty());
  }
  CheckDerivedState(lg, 10, rng);
  AppendSome(lg, 20, "d-after", rng);
  CHECK(lg.server.Stop() == 0);
  std::printf("faults_test diskerror %s: %zu records acknowledged, %llu requests 500, %llu 503, %llu cut off, "
              "%zu failed entries absent after restart, %zu logged before the failure without receipts, 0 lost\n",
              mode.c_str(), lg.acked.size(), static_cast<unsigned long long>(st.statuses[500]),
              static_cast<unsigned long long>(st.statuses[503]), static_cast<unsigned long long>(st.cut_off),
              st.failed_entries.size(), st.logged_unread.size());
}

TEST_CASE("faults: the wall clock jumping backwards and forwards", "[faults][clock]") {
  const uint64_t seed = Seed();
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  Ledger lg;
  const std::string clock_file = lg.tmp.path() + "/clock-offset";
  WriteFile(clock_file, "0\n");
  {
    ScopedEnv env({{"LD_PRELOAD", FAULTSHIM_PATH}, {"LEDGER_FAULT_CLOCK_FILE", clock_file}});
    lg.Start({"--max-skew", "300", "--index-interval-ms", "50"});
  }
  if (!ShimActive(lg.server)) return;
  INFO("ledgerd log:\n" << lg.server.Log());
  const int port = lg.server.port();
  auto cli = MakeClient(port);
  auto verify = [&] { return VerifyLog(lg.server.port(), *lg.vkey, lg.acked, lg.checkpoints); };

  // Steps of the wall clock: back one hour, back ten seconds, forward two
  // hours, back to true time. The log's clock never runs backwards (SPEC
  // §10): after a backwards step it keeps the latest time it used, so
  // accesses stamped with the true time are still logged and accesses
  // stamped with the stepped-back clock are refused (clock skew); a forward
  // step is followed, and the step back to true time is then not: true-time
  // accesses are refused until the wall clock catches up or ledgerd
  // restarts. Load keeps being sequenced and every checkpoint stays
  // consistent throughout.
  struct Step {
    int64_t offset;
    bool true_time_accepted;  // an access stamped with the true time
    bool log_time_accepted;   // an access stamped with the stepped clock
  };
  const Step steps[] = {{0, true, true},     {-3600, true, false}, {-10, true, true},
                        {7200, false, true}, {0, false, false}};
  int n = 0;
  for (const Step& step : steps) {
    CAPTURE(step.offset);
    WriteFile(clock_file, std::to_string(step.offset) + "\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the shim re-reads every 10 ms
    // Concurrent load stamped with the log's clock.
    LoadStats st;
    std::atomic<bool> stop{false};
    // RunLoad stamps records with this process's clock (true time); so
    // where the log refuses true time they are refused: expected below.
    const uint64_t load_seed = rng();
    const std::string load_tag = "c" + std::to_string(n);
    std::thread load([&] { RunLoad(lg, port, 2, load_seed, load_tag, stop, st); });
    std::string rid = "clock-" + std::to_string(n++);
    std::string at_true = SignAccess(AccessPayload(rid + "-true", rng, Now()), *lg.accessor_key);
    std::string at_log = SignAccess(AccessPayload(rid + "-log", rng, Now() + step.offset), *lg.accessor_key);
    auto [s1, j1] = PostOne(cli, port, at_true);
    INFO(j1.dump());
    if (step.true_time_accepted) {
      CHECK(s1 == 200);
      if (s1 == 200) CHECK(lg.Record(Ack{{at_true}, j1.dump()}).empty());
    } else {
      CHECK(s1 == 400);
      CHECK(j1.value("error", "").rfind("clock skew", 0) == 0);
    }
    auto [s2, j2] = PostOne(cli, port, at_log);
    INFO(j2.dump());
    if (step.log_time_accepted) {
      CHECK(s2 == 200);
      if (s2 == 200) CHECK(lg.Record(Ack{{at_log}, j2.dump()}).empty());
    } else {
      CHECK(s2 == 400);
      CHECK(j2.value("error", "").rfind("clock skew", 0) == 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
    load.join();
    CHECK(st.bad_acks.empty());
    std::string bodies;
    for (auto& [s, body] : st.refused) bodies += std::to_string(s) + " " + body + "\n";
    for (auto& [s, c] : st.statuses) {
      CAPTURE(s, bodies);
      CHECK((s == 200 || (!step.true_time_accepted && s == 400)));
    }
    if (step.true_time_accepted) CHECK(st.statuses[200] > 0);
    verify();
  }
  // The index commitments' times never ran backwards either.
  {
    auto r = cli->Get("/checkpoint");
    REQUIRE(r);
    auto cp = ledger::OpenCheckpoint(r->body, *lg.vkey);
    REQUIRE(cp.ok());
    int64_t last_time = 0;
    int commitments = 0;
    for (uint64_t i = 0; i < cp->size; i++) {
      auto e = cli->Get(("/v1/entries/" + std::to_string(i)).c_str());
      REQUIRE(e);
      json j = json::parse(e->body, nullptr, false);
      auto raw = ledger::Base64Decode(j.value("entry", ""));
      REQUIRE(raw.ok());
      auto env = ledger::ParseEnvelope(*raw);
      if (!env.ok() || env->payload_type.find(".index.") == std::string::npos) continue;
      json p = json::parse(env->payload, nullptr, false);
      auto t = ledger::ParseTime(p.value("time", ""));
      REQUIRE(t.ok());
      CAPTURE(i, p.dump());
      CHECK(*t >= last_time);
      last_time = *t;
      commitments++;
    }
    CHECK(commitments >= 5);
    std::printf("faults_test clock: %d index commitments, times non-decreasing\n", commitments);
  }
  // A restart resets the log's clock to the wall clock: true time again.
  CHECK(lg.server.Stop() == 0);
  {
    WriteFile(clock_file, "0\n");
    ScopedEnv env({{"LD_PRELOAD", FAULTSHIM_PATH}, {"LEDGER_FAULT_CLOCK_FILE", clock_file}});
    lg.Start({"--max-skew", "300", "--index-interval-ms", "50"});
  }
  verify();
  AppendSome(lg, 5, "clock-after-restart", rng);
  CHECK(lg.server.Stop() == 0);
  // And without the shim: all there, all consistent.
  lg.Start();
  verify();
  CheckDerivedState(lg, 10, rng);
  CHECK(lg.server.Stop() == 0);
  std::printf("faults_test clock: %zu records acknowledged across wall-clock steps of -3600, -10, +7200 and back "
              "to true time, 0 lost, checkpoints consistent\n",
              lg.acked.size());
}
