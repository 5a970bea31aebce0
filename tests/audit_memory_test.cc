// The audit's bounded memory for request ids (verifier/request_ids.h): with
// a tiny budget the set spills to a temporary file, and every lookup still
// finds exactly the ids recorded, so duplicates are caught across a spill,
// across merged runs and across an incremental (--state) audit.
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../verifier/audit.h"
#include "../verifier/request_ids.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/vrf.h"
#include "test_parties.h"

namespace fs = std::filesystem;
using namespace ledger;

namespace {

// TempDir is a directory removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / (name + "." + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<uint64_t> Sorted(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<uint64_t> FindAll(const verifier::RequestIdSet& set, uint64_t fp) {
  std::vector<uint64_t> out;
  REQUIRE(set.Find(fp, &out).ok());
  return Sorted(out);
}

std::vector<uint64_t> Expected(const std::multimap<uint64_t, uint64_t>& ref, uint64_t fp) {
  std::vector<uint64_t> out;
  auto range = ref.equal_range(fp == 0 ? 1 : fp);  // the set stores 0 as 1
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return Sorted(out);
}

}  // namespace

TEST_CASE("RequestIdSet: over its memory budget it spills, and still finds every id exactly") {
  REQUIRE(sodium_init() >= 0);
  TempDir dir("audit_memory_test.set");
  const unsigned bits = GENERATE(20u, 64u);  // 20 bits: one table, many collisions; 64: all 256 tables
  INFO("fingerprint bits " << bits);
  verifier::RequestIdSet set(bits, Bytes(16, 'k'), /*memory_budget=*/4096, dir.path.string());
  std::multimap<uint64_t, uint64_t> ref;  // stored fingerprint -> index
  std::mt19937_64 rng(7);
  uint64_t index = 0;
  auto add = [&](uint64_t fp) {
    REQUIRE(set.Insert(fp, index).ok());
    ref.emplace(fp == 0 ? 1 : fp, index);
    index++;
  };
  std::vector<uint64_t> fps;
  for (int i = 0; i < 20000; i++) {
    fps.push_back(set.Fingerprint("r/acc/req-" + std::to_string(i)));
    add(fps.back());
    // One fingerprint recorded 700 times: its matches span several 256-id
    // blocks of a run.
    if (i % 25 == 0 && i / 25 < 700) add(fps[0]);
  }
  REQUIRE(set.size() == ref.size());
  CHECK(set.spilled() > 0);
  CHECK(set.spilled() <= set.size());
  CHECK(set.runs() >= 1);
  CHECK(set.runs() <= 9);
  // The tables stay near the budget (plus the runs' 8 bytes per 256 ids).
  // (at least 64 slots in each of the 256 tables).
  CHECK(set.memory_bytes() <= 256 * 64 * 13 + 4096 + (set.spilled() / 256 + 9) * 8);
  // Not in the spill directory: the file is unlinked when created.
  CHECK(fs::is_empty(dir.path));

  for (size_t i = 0; i < fps.size(); i += 37) REQUIRE(FindAll(set, fps[i]) == Expected(ref, fps[i]));
  REQUIRE(FindAll(set, fps[0]).size() == 701);
  for (int i = 0; i < 300; i++) {
    uint64_t absent = bits == 64 ? rng() : (rng() & ((uint64_t{1} << bits) - 1));
    REQUIRE(FindAll(set, absent) == Expected(ref, absent));
  }

  // Replace, in memory or in a run, changes exactly the one id.
  for (size_t i : {size_t{1}, size_t{5000}, fps.size() - 1}) {
    uint64_t fp = fps[i];
    std::vector<uint64_t> before = Expected(ref, fp);
    REQUIRE(!before.empty());
    uint64_t from = before.front(), to = (uint64_t{1} << 39) + i;
    REQUIRE(set.Replace(fp, from, to).ok());
    auto range = ref.equal_range(fp == 0 ? 1 : fp);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == from) {
        it->second = to;
        break;
      }
    REQUIRE(FindAll(set, fp) == Expected(ref, fp));
  }

  // ForEach lists every id once.
  std::multimap<uint64_t, uint64_t> listed;
  REQUIRE(set.ForEach([&](uint64_t fp, uint64_t idx) { listed.emplace(fp, idx); }).ok());
  std::vector<std::pair<uint64_t, uint64_t>> a(listed.begin(), listed.end()), b(ref.begin(), ref.end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  REQUIRE(a == b);

  // A move keeps the spilled ids (the state load replaces the set so).
  verifier::RequestIdSet moved = std::move(set);
  REQUIRE(FindAll(moved, fps[10]) == Expected(ref, fps[10]));
  REQUIRE(!moved.Insert(1, uint64_t{1} << 40).ok());
}

namespace {

constexpr char kHolder[] = "bank";
constexpr char kAccessor[] = "acme";

// DuplicatesLog is a ledger-mode log of |n| accesses, some of which reuse
// an earlier request id (with another payload, or the same one).
struct DuplicatesLog {
  ledger_test::LedgerParties parties{"example.com/audit-memory-test", kHolder, kAccessor};
  std::vector<Bytes> entries;
  std::vector<std::pair<std::string, uint64_t>> want;  // (rule, index) expected

  uint64_t Add(Bytes e) {
    entries.push_back(std::move(e));
    return entries.size() - 1;
  }
  Bytes Access(const std::string& request_id, int variant) {
    AccessRecord r;
    r.request_id = request_id;
    r.accessor = kAccessor;
    r.holder = kHolder;
    r.subject = Bytes(32, static_cast<char>('a' + variant % 7));
    r.purpose = "CUSTOMER_SUPPORT";
    r.categories = {"BALANCES"};
    r.consent = "consent";
    r.time = ledger_test::kTestTime;
    r.actor = "agent-" + std::to_string(variant);
    return SignEnvelope(kAccessPayloadType, EncodeAccess(r), *parties.accessor);
  }

  explicit DuplicatesLog(int n) {
    Add(parties.HolderEntry());
    Add(parties.AuthorizeEntry());
    Add(parties.PolicyEntry(1, {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES"}, 90}}));
    std::vector<Bytes> originals;
    std::vector<std::string> ids;  // the request id of each access
    std::set<std::string> logged;
    for (int i = 0; i < n; i++) {
      // Every 97th access reuses the id of an access ~half the log back
      // (long spilled by then) with another payload; every 301st repeats
      // an access ~two thirds back byte for byte.
      std::string id = "req-" + std::to_string(i);
      if (i > 200 && i % 97 == 0) {
        id = ids[static_cast<size_t>(i / 2)];
        Add(Access(id, i));
      } else if (i > 200 && i % 301 == 0) {
        id = ids[static_cast<size_t>(i / 3)];
        Add(originals[static_cast<size_t>(i / 3)]);
      } else {
        Add(Access(id, i));
      }
      if (!logged.insert(id).second) want.emplace_back("request id reused", entries.size() - 1);
      ids.push_back(id);
      originals.push_back(entries.back());
    }
  }

  std::vector<std::pair<std::string, uint64_t>> Replay(verifier::AuditReplay& r, uint64_t from, uint64_t to) const {
    for (uint64_t i = from; i < to; i++) {
      Status st = r.Feed(i, entries[i], HashLeaf(entries[i]), ParseEntry(entries[i]));
      INFO(st.ToString());
      REQUIRE(st.ok());
    }
    std::vector<std::pair<std::string, uint64_t>> got;
    for (const auto& v : r.violations()) got.emplace_back(v.rule, v.index);
    return got;
  }

  std::unique_ptr<verifier::AuditReplay> NewReplay(uint64_t budget, const std::string& dir) const {
    auto r = std::make_unique<verifier::AuditReplay>(Bytes(parties.log_key->verifier().public_key()), 300);
    r->SetRequestIdMemory(budget, dir);
    r->SetEntrySource([this](uint64_t index) -> StatusOr<Bytes> {
      if (index >= entries.size()) return Status::Internal("no entry " + std::to_string(index));
      return entries[index];
    });
    return r;
  }
};

}  // namespace

TEST_CASE("audit: a tiny request-id budget catches the same reused ids, in full and incremental audits") {
  REQUIRE(sodium_init() >= 0);
  TempDir dir("audit_memory_test.audit");
  DuplicatesLog log(6000);
  REQUIRE(log.want.size() > 40);
  const uint64_t n = log.entries.size();

  auto roomy = log.NewReplay(verifier::RequestIdSet::kDefaultMemoryBudget, dir.path.string());
  auto got_roomy = log.Replay(*roomy, 0, n);
  CHECK(roomy->request_ids().spilled() == 0);
  CHECK(got_roomy == log.want);

  auto tiny = log.NewReplay(2048, dir.path.string());
  auto got_tiny = log.Replay(*tiny, 0, n);
  CHECK(tiny->request_ids().spilled() > 0);
  CHECK(tiny->request_ids().size() == roomy->request_ids().size());
  CHECK(got_tiny == log.want);
  CHECK(tiny->entries_by_kind() == roomy->entries_by_kind());
  CHECK(tiny->accesses() == roomy->accesses());

  // Incremental: saved after a spill, resumed with the tiny budget (the
  // loaded ids spill again), the rest replayed: the same violations.
  std::string state = (dir.path / "audit.state").string();
  const std::string vkey = log.parties.log_key->verifier().VerifierKeyString();
  const uint64_t cut = n / 2 + 13;
  {
    auto first = log.NewReplay(2048, dir.path.string());
    log.Replay(*first, 0, cut);
    REQUIRE(first->request_ids().spilled() > 0);
    REQUIRE(first->SaveState(state, vkey, "cp").ok());
  }
  auto resumed = log.NewReplay(2048, dir.path.string());
  std::string note;
  Status loaded = resumed->LoadState(state, vkey, &note);
  INFO(loaded.ToString());
  REQUIRE(loaded.ok());
  CHECK(resumed->request_ids().spilled() > 0);
  auto got_resumed = log.Replay(*resumed, cut, n);
  CHECK(got_resumed == log.want);
  CHECK(resumed->Root() == roomy->Root());
  CHECK(resumed->request_ids().size() == roomy->request_ids().size());
  // And a state saved by the tiny run resumes with the default budget.
  {
    auto first = log.NewReplay(2048, dir.path.string());
    log.Replay(*first, 0, cut);
    REQUIRE(first->SaveState(state, vkey, "cp").ok());
  }
  auto resumed2 = log.NewReplay(verifier::RequestIdSet::kDefaultMemoryBudget, dir.path.string());
  REQUIRE(resumed2->LoadState(state, vkey, &note).ok());
  CHECK(log.Replay(*resumed2, cut, n) == log.want);
  // Only the state file is left: spill files are unlinked.
  std::vector<std::string> left;
  for (const auto& f : fs::directory_iterator(dir.path)) left.push_back(f.path().filename().string());
  CHECK(left == std::vector<std::string>{"audit.state"});
}
