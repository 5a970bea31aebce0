// Test helper: checks that a (restarted) ledgerd still holds everything it
// acknowledged. Shared by tests/crash_test.cc (opaque mode) and the fault
// tests in tests/faults/ (ledger mode, full map, disk errors, clock).
//
//   std::map<uint64_t, AckedEntry> acked;   // index -> entry
//   std::map<uint64_t, Hash> checkpoints;   // size -> root
//   std::string err = CheckAck(ack, vkey, &acked, &checkpoints);  // per 200
//   ledger::Checkpoint now = VerifyLog(port, vkey, acked, checkpoints);
//
// VerifyLog uses Catch2 assertions; the rest is plain. Errors is
// thread-safe; the other helpers are called from one thread.
#ifndef LEDGER_TESTS_FAULTS_LOG_CHECK_H_
#define LEDGER_TESTS_FAULTS_LOG_CHECK_H_

#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "../ledgerd_process.h"
#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/note.h"

namespace ledger_test {

// EnvU64 reads a whole number from the environment, or |fallback|.
inline uint64_t EnvU64(const char* name, uint64_t fallback) {
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
  ledger::Hash leaf{};
};

// Errors collects failures from worker threads; the main thread reports them.
class Errors {
 public:
  void Add(std::string e) {
    std::lock_guard<std::mutex> l(mu_);
    count_++;
    if (list_.size() < 20) list_.push_back(std::move(e));
  }
  size_t count() const {
    std::lock_guard<std::mutex> l(mu_);
    return count_;
  }
  std::string Summary() const {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const auto& e : list_) s += e + "\n";
    return s;
  }

 private:
  mutable std::mutex mu_;
  size_t count_ = 0;
  std::vector<std::string> list_;
};

// ParallelFor runs fn(i, client) for i in [0, n) on |threads| threads, each
// with its own HTTP client (a std::unique_ptr<httplib::Client>&, which fn
// may replace).
template <typename Fn>
void ParallelFor(size_t n, int port, int threads, Fn fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&] {
      auto cli = MakeClient(port);
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i, cli);
    });
  }
  for (auto& t : ts) t.join();
}

// GetRetrying GETs |path|, retrying twice on a fresh connection after a
// transport error: a server may close an idle keep-alive connection at any
// time (RFC 9112 §9.6), and GETs are safe to repeat. HTTP errors are not
// retried.
inline httplib::Result GetRetrying(std::unique_ptr<httplib::Client>& cli, int port, const std::string& path) {
  auto r = cli->Get(path.c_str());
  for (int attempt = 0; attempt < 2 && !r; attempt++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    cli = MakeClient(port);
    r = cli->Get(path.c_str());
  }
  return r;
}

// CheckAck verifies one acknowledged response, as a client would before
// trusting it, and records its entries and checkpoint. Returns "" or why
// it is wrong.
inline std::string CheckAck(const Ack& ack, const ledger::NoteVerifier& vkey, std::map<uint64_t, AckedEntry>* acked,
                            std::map<uint64_t, ledger::Hash>* checkpoints) {
  using json = nlohmann::json;
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
    ledger::Hash leaf;
    std::vector<ledger::Hash> proof;
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

// VerifyLog checks a (restarted) server against everything acknowledged so
// far: the stored checkpoint verifies, every acknowledged entry is at its
// index with the same bytes, and every acknowledged checkpoint is
// consistent with the latest (consistency proofs). Returns the latest.
inline ledger::Checkpoint VerifyLog(int port, const ledger::NoteVerifier& vkey,
                                    const std::map<uint64_t, AckedEntry>& acked,
                                    const std::map<uint64_t, ledger::Hash>& checkpoints) {
  using json = nlohmann::json;
  using ledger::Hash;
  auto cli = MakeClient(port);
  auto res = GetRetrying(cli, port, "/checkpoint");
  INFO("GET /checkpoint: " << (res ? std::to_string(res->status) : httplib::to_string(res.error())));
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
  ParallelFor(items.size(), port, 4, [&](size_t k, std::unique_ptr<httplib::Client>& c) {
    uint64_t index = items[k].first;
    const AckedEntry& want = *items[k].second;
    std::string where = "entry " + std::to_string(index) + ": ";
    auto r = GetRetrying(c, port, "/v1/entries/" + std::to_string(index));
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
  ParallelFor(cps.size(), port, 4, [&](size_t k, std::unique_ptr<httplib::Client>& c) {
    auto [from, from_root] = cps[k];
    std::string where = "consistency " + std::to_string(from) + " -> " + std::to_string(latest->size) + ": ";
    auto r = GetRetrying(c, port, "/v1/proof/consistency?from=" + std::to_string(from) + "&to=" + std::to_string(latest->size));
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

}  // namespace ledger_test

#endif  // LEDGER_TESTS_FAULTS_LOG_CHECK_H_
