// SubjectTreeStore (subject_tree.h): versions read from memory, from disk
// and from both; views pinned across persists; retracted versions;
// restart with and without a flush; persists in bounded transactions and
// a crash between them; imports a crash interrupted; and
// readers racing a writer and the background persister (also under TSan).
#include "ledger/subject_tree.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "ledger/subject_state.h"
#include "test_util.h"

using namespace ledger;

namespace {

using ledger_test::TempDir;

SubjectTreeOptions Options(const TempDir& tmp, bool background) {
  SubjectTreeOptions o;
  o.dir = tmp.path() + "/subjects";
  o.map_size = uint64_t{1} << 30;
  o.durable = false;
  o.background = background;
  o.flush_nodes = 64;
  o.flush_interval = std::chrono::milliseconds(20);
  return o;
}

std::unique_ptr<SubjectTreeStore> Open(const SubjectTreeOptions& o) {
  auto s = SubjectTreeStore::Open(o);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

SubjectTag Tag(uint64_t n) { return Sha256("tag " + std::to_string(n)); }

// Model is the reference: every tag's list of indices, per version.
struct Model {
  std::map<SubjectTag, std::vector<uint64_t>> lists;
  std::map<uint64_t, Hash> roots;  // version -> root
  uint64_t next_index = 1;

  Hash Root() const {
    std::map<SubjectTag, SubjectValue> values;
    for (const auto& [tag, indices] : lists) values[tag] = SubjectValueOf(indices);
    return SubjectIndexReferenceRoot(values);
  }
};

// Commit appends |accesses| accesses to tags drawn from [0, tags) as the
// version after them, published and committed (or retracted).
uint64_t NextVersion(SubjectTreeStore& tree, Model& m, std::mt19937_64& rng, int accesses, uint64_t tags,
                     bool commit = true) {
  std::map<SubjectTag, std::vector<uint64_t>> pending;
  std::uniform_int_distribution<uint64_t> pick(0, tags - 1);
  for (int i = 0; i < accesses; i++) pending[Tag(pick(rng))].push_back(m.next_index++);
  const uint64_t version = m.next_index++;
  auto update = tree.BeginUpdate(version);
  INFO(update.status().ToString());
  REQUIRE(update.ok());
  auto change = UpdateSubjectTree(**update, pending);
  INFO(change.status().ToString());
  REQUIRE(change.ok());
  REQUIRE((*update)->Publish().ok());
  if (!commit) {
    tree.Retract(version);
    return version;
  }
  for (const auto& [tag, indices] : pending)
    for (uint64_t i : indices) m.lists[tag].push_back(i);
  const Hash root = m.Root();
  CHECK(change->root == root);
  m.roots[version] = root;
  tree.Commit(version);
  return version;
}

Hash RootAt(SubjectTreeStore& tree, uint64_t version) {
  auto view = tree.View();
  REQUIRE(view.ok());
  REQUIRE((*view)->SetVersion(version).ok());
  auto root = SubjectIndexRoot(**view);
  REQUIRE(root.ok());
  return *root;
}

}  // namespace

TEST_CASE("subject tree: a view reads its version from memory, from disk or both") {
  TempDir tmp;
  auto tree = Open(Options(tmp, /*background=*/false));
  std::mt19937_64 rng(1);
  Model m;
  CHECK(RootAt(*tree, 0) == SubjectEmptyHash());
  const uint64_t v1 = NextVersion(*tree, m, rng, 40, 30);
  auto old = std::move(tree->View()).value();  // pinned at v1, nothing persisted yet
  CHECK(old->version() == v1);
  const uint64_t v2 = NextVersion(*tree, m, rng, 40, 30);
  CHECK(RootAt(*tree, v2) == m.roots[v2]);
  CHECK(tree->stats().memory_nodes > 0);
  REQUIRE(tree->Flush().ok());
  CHECK(tree->persisted_version() == v2);
  const uint64_t v3 = NextVersion(*tree, m, rng, 40, 30);
  // The old view still reads v1 (its snapshot predates the persist; the
  // versions after it stay in memory while it lives).
  auto root = SubjectIndexRoot(*old);
  REQUIRE(root.ok());
  CHECK(*root == m.roots[v1]);
  REQUIRE(old->SetVersion(v2).ok());
  CHECK(*SubjectIndexRoot(*old) == m.roots[v2]);
  REQUIRE(old->SetVersion(v3).ok());
  CHECK(*SubjectIndexRoot(*old) == m.roots[v3]);
  // A new view reads v2 from disk and v3 from memory; an older version is
  // refused, not answered wrongly.
  CHECK(RootAt(*tree, v3) == m.roots[v3]);
  auto fresh = std::move(tree->View()).value();
  CHECK(fresh->SetVersion(v1).code() == Status::Code::kFailedPrecondition);
  old.reset();
  fresh.reset();
  const size_t held = tree->stats().memory_nodes;
  REQUIRE(tree->Flush().ok());
  CHECK(tree->stats().memory_nodes == 0);  // persisted, and no view pins them
  CHECK(RootAt(*tree, v3) == m.roots[v3]);
  // The statistics: two persisting transactions; the most held at once is
  // at least what the last flush found.
  SubjectTreeStats st = tree->stats();
  CHECK(st.memory_nodes == 0);
  CHECK(st.memory_nodes_max >= held);
  CHECK(st.persists == 2);
  CHECK(st.persisted_version == v3);
  CHECK(st.committed_version == v3);
  CHECK(st.persist_writes_max > 0);
  CHECK(st.persist_writes_max <= st.memory_nodes_max);
  // Writes through a view fail.
  auto view = std::move(tree->View()).value();
  CHECK(view->PutNode(0, SubjectTag{}, SubjectNode{}).code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("subject tree: a retracted version is never read, and its number is reused") {
  TempDir tmp;
  auto tree = Open(Options(tmp, false));
  std::mt19937_64 rng(2);
  Model m;
  const uint64_t v1 = NextVersion(*tree, m, rng, 20, 10);
  Model copy = m;
  const uint64_t retracted = NextVersion(*tree, copy, rng, 20, 10, /*commit=*/false);
  CHECK(tree->committed_version() == v1);
  CHECK(RootAt(*tree, v1) == m.roots[v1]);
  // The next version takes the same number and sees v1, not the retracted.
  const uint64_t v2 = NextVersion(*tree, m, rng, 20, 10);
  CHECK(v2 == retracted);
  CHECK(RootAt(*tree, v2) == m.roots[v2]);
  // Versions only grow; one at a time.
  CHECK(tree->BeginUpdate(v2).status().code() == Status::Code::kFailedPrecondition);
  REQUIRE(tree->Flush().ok());
  CHECK(RootAt(*tree, v2) == m.roots[v2]);
}

TEST_CASE("subject tree: reopened, it has what was persisted") {
  TempDir tmp;
  std::mt19937_64 rng(3);
  Model m;
  uint64_t flushed = 0, last = 0;
  {
    auto tree = Open(Options(tmp, false));
    for (int i = 0; i < 5; i++) NextVersion(*tree, m, rng, 30, 200);
    REQUIRE(tree->Flush().ok());
    flushed = tree->persisted_version();
    for (int i = 0; i < 3; i++) last = NextVersion(*tree, m, rng, 30, 200);
    // Destroyed without Close: as a crash, the last three are lost.
  }
  {
    auto tree = Open(Options(tmp, false));
    CHECK(tree->persisted_version() == flushed);
    CHECK(tree->committed_version() == flushed);
    CHECK(RootAt(*tree, flushed) == m.roots[flushed]);
    // The lost versions are recomputed from the log by the indexer
    // (subject_state_test); here the next one simply follows.
    CHECK(tree->BeginUpdate(last).ok());
  }
}

TEST_CASE("subject tree: Close persists every committed version") {
  TempDir tmp;
  std::mt19937_64 rng(4);
  Model m;
  uint64_t last = 0;
  {
    auto tree = Open(Options(tmp, /*background=*/true));
    for (int i = 0; i < 10; i++) last = NextVersion(*tree, m, rng, 30, 200);
    REQUIRE(tree->Close().ok());
  }
  auto tree = Open(Options(tmp, true));
  CHECK(tree->persisted_version() == last);
  CHECK(RootAt(*tree, last) == m.roots[last]);
}

// CheckTreeAt checks every tag of [0, tags) against |m|'s lists at
// |version| through a view of |tree| there: each lookup's value and proof
// (whose siblings are the stored nodes) against the model's root, so a
// stale node anywhere on those paths fails.
void CheckTreeAt(SubjectTreeStore& tree, const std::map<SubjectTag, std::vector<uint64_t>>& lists, const Hash& root,
                 uint64_t version, uint64_t tags) {
  auto view = tree.View();
  REQUIRE(view.ok());
  REQUIRE((*view)->SetVersion(version).ok());
  for (uint64_t t = 0; t < tags; t++) {
    INFO("version " << version << ", tag " << t);
    auto found = ProveSubject(**view, Tag(t));
    REQUIRE(found.ok());
    auto listed = lists.find(Tag(t));
    std::optional<SubjectValue> want;
    if (listed != lists.end()) want = SubjectValueOf(listed->second);
    CHECK(found->value == want);
    CHECK(VerifySubjectIndexProof(root, Tag(t), want, found->proof).ok());
  }
}

TEST_CASE("subject tree: a persist writes whole versions in bounded transactions; a crash between them loses nothing") {
  TempDir tmp;
  SubjectTreeOptions o = Options(tmp, /*background=*/false);
  o.flush_nodes = 1 << 20;
  o.max_persist_writes = 10;
  // After each transaction, a copy of the environment: what a crash right
  // then would leave.
  std::vector<uint64_t> persisted;
  o.on_persisted = [&](uint64_t version) {
    persisted.push_back(version);
    const std::string copy = tmp.path() + "/crash-" + std::to_string(version);
    std::filesystem::create_directories(copy);
    std::filesystem::copy_file(o.dir + "/data.mdb", copy + "/data.mdb");
  };
  auto tree = Open(o);
  std::mt19937_64 rng(9);
  Model m;
  std::map<uint64_t, std::map<SubjectTag, std::vector<uint64_t>>> lists_at;
  // Few tags: every version rewrites nodes the one before wrote (the root
  // always), which a transaction ending between the two must still have.
  const uint64_t tags = 16;
  std::vector<uint64_t> versions;
  for (int i = 0; i < 10; i++) {
    versions.push_back(NextVersion(*tree, m, rng, 3, tags));
    lists_at[versions.back()] = m.lists;
  }
  REQUIRE(tree->Flush().ok());
  CHECK(tree->persisted_version() == versions.back());
  // Several transactions, each ending at a version, in order, the last at
  // the flush's; none wrote more than the bound unless it held one version.
  INFO("transactions ending at " << ::Catch::Detail::stringify(persisted));
  REQUIRE(persisted.size() >= 3);
  CHECK(persisted.size() < versions.size());
  CHECK(persisted.back() == versions.back());
  CHECK(std::is_sorted(persisted.begin(), persisted.end()));
  for (uint64_t v : persisted) CHECK(m.roots.count(v) == 1);
  CHECK(tree->stats().persists == persisted.size());
  CheckTreeAt(*tree, m.lists, m.roots[versions.back()], versions.back(), tags);
  tree.reset();
  // A crash after any transaction: the environment holds exactly the tree
  // of its version, and the next versions build on it.
  for (uint64_t v : persisted) {
    INFO("crash after version " << v);
    SubjectTreeOptions c = Options(tmp, false);
    c.dir = tmp.path() + "/crash-" + std::to_string(v);
    auto crashed = Open(c);
    CHECK(crashed->persisted_version() == v);
    CheckTreeAt(*crashed, lists_at[v], m.roots[v], v, tags);
    Model after;
    after.lists = lists_at[v];
    after.next_index = v + 1;
    const uint64_t next = NextVersion(*crashed, after, rng, 4, tags);
    CheckTreeAt(*crashed, after.lists, after.roots[next], next, tags);
  }
}

TEST_CASE("subject tree: an import a crash interrupted is undone on open") {
  TempDir tmp;
  std::mt19937_64 rng(5);
  Model m;
  std::map<Bytes, Bytes> nodes;
  uint64_t last = 0;
  {
    auto tree = Open(Options(tmp, false));
    for (int i = 0; i < 4; i++) last = NextVersion(*tree, m, rng, 50, 500);
    REQUIRE(tree->Close().ok());
    REQUIRE(tree->ForEachPersisted([&](ByteView k, ByteView v) { nodes.emplace(k, v); }).ok());
  }
  REQUIRE(nodes.size() > 100);
  auto source = [&](size_t stop_after) {
    return [&nodes, stop_after](const std::function<Status(ByteView, ByteView)>& put) {
      size_t n = 0;
      for (const auto& [k, v] : nodes) {
        if (n++ == stop_after) return Status::IOError("interrupted");
        LEDGER_RETURN_IF_ERROR(put(k, v));
      }
      return Status::OK();
    };
  };
  {
    auto tree = Open(Options(tmp, false));
    // Steps of 16 nodes: several committed before the failure.
    CHECK(tree->Import(source(90), last, 16).code() == Status::Code::kIOError);
  }
  {
    auto tree = Open(Options(tmp, false));
    CHECK(tree->persisted_version() == 0);
    size_t left = 0;
    REQUIRE(tree->ForEachPersisted([&](ByteView, ByteView) { left++; }).ok());
    CHECK(left == 0);
    REQUIRE(tree->Import(source(nodes.size()), last, 16).ok());
    CHECK(tree->persisted_version() == last);
    CHECK(RootAt(*tree, last) == m.roots[last]);
    // Keys must ascend.
    auto reversed = [&](const std::function<Status(ByteView, ByteView)>& put) {
      for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) LEDGER_RETURN_IF_ERROR(put(it->first, it->second));
      return Status::OK();
    };
    CHECK(tree->Import(reversed, last).IsInvalidArgument());
  }
}

TEST_CASE("subject tree: readers see exactly their version while a writer and the persister run") {
  TempDir tmp;
  SubjectTreeOptions o = Options(tmp, /*background=*/true);
  o.max_nodes = 512;  // the writer also waits for the persister
  auto tree = Open(o);
  std::mt19937_64 rng(6);
  Model m;
  std::mutex roots_mu;
  std::map<uint64_t, Hash> roots{{0, SubjectEmptyHash()}};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, wrong{0};
  auto reader = [&](int seed) {
    std::mt19937_64 r(seed);
    while (!done) {
      auto view = tree->View();
      if (!view.ok()) {
        wrong++;
        continue;
      }
      // As a log snapshot opened after the view: any committed version
      // at or above the view's.
      uint64_t version = (*view)->version();
      Hash want;
      {
        std::lock_guard<std::mutex> l(roots_mu);
        auto it = roots.lower_bound(version);
        std::vector<uint64_t> later;
        for (; it != roots.end(); ++it) later.push_back(it->first);
        if (later.empty()) continue;
        version = later[r() % later.size()];
        want = roots[version];
      }
      if (!(*view)->SetVersion(version).ok()) wrong++;
      auto root = SubjectIndexRoot(**view);
      if (!root.ok() || *root != want) wrong++;
      reads++;
    }
  };
  std::thread a(reader, 1), b(reader, 2);
  for (int i = 0; i < 150; i++) {
    const bool commit = i % 17 != 5;
    const uint64_t v = NextVersion(*tree, m, rng, 12, 400, commit);
    if (!commit) continue;
    std::lock_guard<std::mutex> l(roots_mu);
    roots[v] = m.roots[v];
  }
  while (reads < 300) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  done = true;
  a.join();
  b.join();
  CHECK(wrong == 0);
  CHECK(tree->stats().persists > 0);
  REQUIRE(tree->Close().ok());
  CHECK(tree->persisted_version() == m.roots.rbegin()->first);
  CHECK(tree->stats().memory_nodes == 0);
}
