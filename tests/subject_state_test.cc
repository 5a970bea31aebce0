// Subject index maintenance in the sequencer's transactions (SPEC.md §10,
// §14): commitments at batch ends and on the sequencer's own timer, state
// rebuilt identically by replay, refusal of submitted commitments, restart
// with pending accesses, a log written before the index existed, and
// request ids of the layout before 2026-12-02.
#include "ledger/subject_state.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "ledger/ledger_hook.h"
#include "ledger/merkle.h"
#include "ledger/sequencer.h"
#include "replayed_state.h"
#include "test_util.h"

using namespace ledger;

namespace {

constexpr int64_t kNow = 1796119200;  // 2026-12-01T10:00:00Z

using ledger_test::TempDir;

std::unique_ptr<Ed25519Signer> Key(char b) { return std::move(Ed25519Signer::FromSeed(Bytes(32, b))).value(); }

// World: a log key, one holder, one accessor with its key and policy.
struct World {
  std::unique_ptr<NoteSigner> log = std::move(NoteSigner::FromSeed("example.com/subject-test", Bytes(32, 'L'))).value();
  std::unique_ptr<Ed25519Signer> holder = Key('H');
  std::unique_ptr<Ed25519Signer> accessor = Key('A');
  int next_request = 0;

  Bytes LogSigned(const char* type, const Bytes& payload) const {
    return SignEnvelopeWith(type, payload, log->verifier().public_key(), [&](ByteView m) { return log->Sign(m); });
  }
  std::vector<Bytes> Setup(uint64_t policy_version = 1) const {
    HolderRecord h{"bank", Bytes(holder->public_key()), Bytes(32, 'v'), FormatTime(kNow)};
    AccessorRecord a;
    a.holder = "bank";
    a.accessor = "app";
    a.keys = {Bytes(accessor->public_key())};
    a.time = FormatTime(kNow);
    return {LogSigned(kHolderPayloadType, EncodeHolder(h)), SignEnvelope(kAccessorPayloadType, EncodeAccessor(a), *holder),
            Policy(policy_version)};
  }
  Bytes Policy(uint64_t version) const {
    PolicyRecord p;
    p.holder = "bank";
    p.accessor = "app";
    p.version = version;
    p.purposes = {PolicyPurpose{"CUSTOMER_SUPPORT", {"BALANCES"}, std::nullopt}};
    p.time = FormatTime(kNow);
    return SignEnvelope(kPolicyPayloadType, EncodePolicy(p), *accessor);
  }
  Bytes Access(const SubjectTag& tag) {
    AccessRecord r;
    r.request_id = "req-" + std::to_string(next_request++);
    r.accessor = "app";
    r.holder = "bank";
    r.subject = Bytes(HashView(tag));
    r.purpose = "CUSTOMER_SUPPORT";
    r.categories = {"BALANCES"};
    r.consent = "c";
    r.time = FormatTime(kNow);
    return SignEnvelope(kAccessPayloadType, EncodeAccess(r), *accessor);
  }
};

SubjectTag TagOf(int n) {
  SubjectTag t = Sha256(std::to_string(n));
  return t;
}

// TreeDir is the subject tree's directory beside the store |store_dir|
// (DIR/lmdb and DIR/subjects, as ledgerd lays them out).
std::string TreeDir(const std::string& store_dir) { return store_dir.substr(0, store_dir.rfind('/')) + "/subjects"; }

// TestTreeOptions persists often (every 64 node versions), so that the
// tests read versions from memory, from disk and from both.
SubjectTreeOptions TestTreeOptions(const std::string& store_dir) {
  SubjectTreeOptions o;
  o.dir = TreeDir(store_dir);
  o.map_size = uint64_t{1} << 30;
  o.durable = false;
  o.flush_nodes = 64;
  o.max_nodes = size_t{1} << 20;
  return o;
}

std::unique_ptr<SubjectTreeStore> OpenTree(const SubjectTreeOptions& o) {
  auto tree = SubjectTreeStore::Open(o);
  INFO(tree.status().ToString());
  REQUIRE(tree.ok());
  return std::move(*tree);
}

// Ledger: a store, a rules hook with a subject indexer and its tree, a
// sequencer. Stopping it closes the tree (persists it) as ledgerd does,
// unless |crash| is set: then the versions in memory are lost.
struct Ledger {
  StoreOptions so;
  std::unique_ptr<Store> store;
  std::unique_ptr<RulesHook> hook;
  std::unique_ptr<SubjectTreeStore> tree;
  std::unique_ptr<SubjectIndexer> indexer;
  std::unique_ptr<Sequencer> seq;
  bool crash = false;

  Ledger(const World& w, const std::string& dir, std::chrono::milliseconds interval, bool with_index = true,
         size_t max_accesses = SubjectIndexerOptions{}.max_accesses,
         std::optional<SubjectTreeOptions> tree_options = std::nullopt) {
    so.dir = dir;
    so.durable = false;
    store = std::move(Store::Open(so)).value();
    RulesOptions ro;
    ro.log_public_key = Bytes(w.log->verifier().public_key());
    hook = std::make_unique<RulesHook>(LedgerRules(ro), [] { return kNow; });
    if (with_index) {
      tree = OpenTree(tree_options ? *tree_options : TestTreeOptions(dir));
      SubjectIndexerOptions io;
      io.interval = interval;
      io.max_accesses = max_accesses;
      indexer = std::make_unique<SubjectIndexer>(w.log.get(), tree.get(), io);
      Status s = indexer->Recover(*store);
      INFO(s.ToString());
      REQUIRE(s.ok());
      hook->SetSubjectIndexer(indexer.get());
    }
    seq = std::make_unique<Sequencer>(store.get(), w.log.get(), SequencerOptions{}, hook.get());
    REQUIRE(seq->Start().ok());
  }
  ~Ledger() {
    seq->Stop();
    if (tree && !crash) CHECK(tree->Close().ok());
  }

  std::vector<SequencedEntry> Append(std::vector<Bytes> entries) {
    auto r = seq->Append(std::move(entries));
    INFO(r.status().ToString());
    REQUIRE(r.ok());
    return r->entries;
  }
};

// Snapshot is a log snapshot and the subject tree of its latest commitment.
struct Snapshot {
  std::unique_ptr<SubjectTreeView> tree;
  std::unique_ptr<LogReader> reader;
};

Snapshot Snap(Store& store, SubjectTreeStore& tree) {
  Snapshot s;
  s.tree = std::move(tree.View()).value();  // the view first, then the log
  s.reader = std::move(store.Read()).value();
  Status v = SetSubjectTreeVersion(*s.tree, *s.reader);
  INFO(v.ToString());
  REQUIRE(v.ok());
  return s;
}

StatusOr<std::vector<uint64_t>> Covered(Store& store, SubjectTreeStore& tree, const SubjectTag& tag) {
  Snapshot s = Snap(store, tree);
  return CoveredSubjectAccesses(*s.reader, *s.tree, tag);
}

std::map<Bytes, Bytes> AllState(const LogReader& r) {
  std::map<Bytes, Bytes> out;
  REQUIRE(r.ForEachState("", [&](ByteView k, ByteView v) { out.emplace(Bytes(k), Bytes(v)); }).ok());
  return out;
}

// Replay rebuilds the whole derived state (rules and subject index) from
// the log alone and requires it to equal the stored state. Returns the
// indices of the commitments.
std::vector<uint64_t> ReplayAndCompare(const World& w, Store& store, SubjectTreeStore& tree) {
  REQUIRE(tree.Flush().ok());
  auto reader = std::move(store.Read()).value();
  RulesOptions ro;
  ro.log_public_key = Bytes(w.log->verifier().public_key());
  ro.check_clock = false;
  LedgerRules rules(ro);
  MemoryStateStore state;
  SubjectIndexReplay replay(state);
  std::vector<uint64_t> commitments;
  for (uint64_t i = 0; i < reader->size(); i++) {
    auto e = reader->GetEntry(i);
    REQUIRE(e.ok());
    auto p = ParseEntry(*e);
    REQUIRE(p.ok());
    auto c = rules.Check(state, *p, 0, i);
    INFO("entry " << i << ": " << c.status().ToString());
    REQUIRE(c.ok());
    REQUIRE(rules.Apply(state, *p, i).ok());
    Status s = replay.Add(*p, i);
    INFO(s.ToString());
    REQUIRE(s.ok());
    if (p->kind == EntryKind::kIndex) commitments.push_back(i);
  }
  ledger_test::RequireReplayedState(*reader, state, tree);
  CHECK(tree.persisted_version() == (commitments.empty() ? 0 : commitments.back()));
  return commitments;
}

// CheckLookups proves every tag in |tags| against the stored index and the
// latest commitment's root, with |model|'s indices below the commitment.
void CheckLookups(Store& store, SubjectTreeStore& tree_store, const std::map<SubjectTag, std::vector<uint64_t>>& model,
                  const std::vector<SubjectTag>& extra_absent) {
  Snapshot snap = Snap(store, tree_store);
  LogReader* reader = snap.reader.get();
  SubjectTreeView& tree = *snap.tree;
  ReaderStateStore state(*reader);
  auto last = ReadLastCommitment(state);
  REQUIRE(last.ok());
  REQUIRE(last->has_value());
  auto entry = reader->GetEntry((*last)->index);
  REQUIRE(entry.ok());
  auto parsed = ParseEntry(*entry);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->kind == EntryKind::kIndex);
  const IndexRecord& c = parsed->index();
  std::map<SubjectTag, SubjectValue> ref;
  uint64_t accesses = 0;
  for (const auto& [tag, indices] : model) {
    std::vector<uint64_t> below;
    for (uint64_t i : indices)
      if (i < c.size) below.push_back(i);
    if (!below.empty()) ref[tag] = SubjectValueOf(below);
    accesses += below.size();
  }
  CHECK(c.root == SubjectIndexReferenceRoot(ref));
  CHECK(c.subjects == ref.size());
  CHECK(c.accesses == accesses);
  auto probe = [&](const SubjectTag& tag) {
    auto look = ProveSubject(tree, tag);
    REQUIRE(look.ok());
    auto it = ref.find(tag);
    if (it == ref.end()) {
      CHECK_FALSE(look->value.has_value());
    } else {
      REQUIRE(look->value.has_value());
      CHECK(*look->value == it->second);
    }
    CHECK(VerifySubjectIndexProof(c.root, tag, look->value, look->proof).ok());
    // The list, walked back from the leaf's last index along c/ keys.
    auto listed = CoveredSubjectAccesses(*reader, tree, tag);
    INFO(listed.status().ToString());
    REQUIRE(listed.ok());
    if (it == ref.end()) {
      CHECK(listed->empty());
    } else {
      CHECK(SubjectValueOf(*listed) == it->second);
      CHECK(listed->size() == it->second.count);
    }
  };
  for (const auto& [tag, v] : model) probe(tag);
  for (const auto& t : extra_absent) probe(t);
}

}  // namespace

TEST_CASE("subject state: key encodings") {
  SubjectTag t = TagOf(1);
  Bytes k0 = SubjectNodeKey(0, SubjectTag{});
  CHECK(k0 == Bytes("t/\0\0\0", 5));
  // Depth 9: tile 1 (depths 8..15) under the first byte; the second byte's
  // top bit; 1 level into the tile.
  Bytes k9 = SubjectNodeKey(9, SubjectPrefix(t, 9));
  CHECK(k9 == Bytes("t/\x01", 3) + Bytes(1, static_cast<char>(t[0])) + Bytes(1, static_cast<char>(t[1] & 0x80)) + Bytes(1, '\x01'));
  Bytes k256 = SubjectNodeKey(256, t);
  CHECK(k256.size() == 2 + 1 + 32 + 2);
  CHECK(k256.substr(3, 32) == Bytes(HashView(t)));
  // A path's nodes: one key prefix per tile of 8 levels, and within a tile
  // ancestors before descendants.
  for (unsigned d = 0; d < 256; d++) {
    Bytes parent = SubjectNodeKey(d, SubjectPrefix(t, d)), child = SubjectNodeKey(d + 1, SubjectPrefix(t, d + 1));
    INFO("depth " << d);
    if ((d + 1) % 8 != 0) {
      CHECK(parent.substr(0, 3 + d / 8) == child.substr(0, 3 + d / 8));
      CHECK(parent < child);
    }
  }
  CHECK(SubjectChainKey(258) == Bytes("c/\0\0\0\0\0\0\x01\x02", 10));
  Bytes xk = LegacySubjectAccessKey(t, 258);
  CHECK(xk.size() == 2 + 32 + 8);
  CHECK(xk.substr(0, 34) == "x/" + Bytes(HashView(t)));
  CHECK(LoadU64(xk.data() + 34) == 258);
  CHECK(PolicyHistoryKey("bank", "app", 5) == "q/bank/app/" + Bytes("\0\0\0\0\0\0\0\x05", 8));

  SubjectNode leaf;
  leaf.leaf = true;
  leaf.tag = t;
  leaf.value = SubjectValueOf({4, 9});
  leaf.hash = SubjectLeafHash(leaf.tag, leaf.value);
  leaf.last_index = 9;
  CHECK(EncodeSubjectNode(leaf).size() == 1 + 32 + 40 + 8);
  auto back = DecodeSubjectNode(EncodeSubjectNode(leaf));
  REQUIRE(back.ok());
  CHECK(back->leaf);
  CHECK(back->hash == leaf.hash);
  CHECK(back->value == leaf.value);
  CHECK(back->last_index == 9);
  // A leaf of the layout before 2026-12-02: no last index.
  back = DecodeSubjectNode(EncodeSubjectNode(leaf).substr(0, 1 + 32 + 40));
  REQUIRE(back.ok());
  CHECK(back->value == leaf.value);
  CHECK(back->last_index == kUnknownLastIndex);
  CHECK(DecodeSubjectNode(EncodeSubjectNode(leaf).substr(0, 1 + 32 + 40 + 4)).status().IsCorruption());
  SubjectNode inner;
  inner.hash = TagOf(2);
  back = DecodeSubjectNode(EncodeSubjectNode(inner));
  REQUIRE(back.ok());
  CHECK_FALSE(back->leaf);
  CHECK(back->hash == inner.hash);
  CHECK(DecodeSubjectNode("").status().IsCorruption());
  CHECK(DecodeSubjectNode(EncodeSubjectNode(inner) + "x").status().IsCorruption());
  Bytes bad = EncodeSubjectNode(leaf);
  bad[0] = 2;
  CHECK(DecodeSubjectNode(bad).status().IsCorruption());
}

TEST_CASE("subject state: a StateStore keeps and deletes subject nodes") {
  MemoryStateStore state;
  StateSubjectNodeStore store(state);
  SubjectTag t = TagOf(7);
  SubjectNode leaf;
  leaf.leaf = true;
  leaf.tag = t;
  leaf.value = SubjectValueOf({3});
  leaf.hash = SubjectLeafHash(leaf.tag, leaf.value);
  SubjectNode inner;
  inner.hash = TagOf(8);

  REQUIRE(store.PutNode(256, t, leaf).ok());
  REQUIRE(store.PutNode(0, SubjectTag{}, inner).ok());
  CHECK(state.data().size() == 2);
  CHECK(state.data().count(SubjectNodeKey(256, t)) == 1);
  auto got = store.GetNode(256, t);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->leaf);
  CHECK((*got)->value == leaf.value);

  REQUIRE(store.DeleteNode(256, t).ok());
  got = store.GetNode(256, t);
  REQUIRE(got.ok());
  CHECK_FALSE(got->has_value());
  CHECK(state.data().size() == 1);  // the root is untouched
  CHECK(store.DeleteNode(256, t).ok());  // deleting an empty subtree is OK
  got = store.GetNode(0, SubjectTag{});
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->hash == inner.hash);
}

TEST_CASE("subject state: a commitment per batch, rebuilt identically by replay") {
  World w;
  TempDir tmp;
  Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
  l.Append(w.Setup());
  std::mt19937_64 rng(7);
  std::map<SubjectTag, std::vector<uint64_t>> model;
  std::vector<SubjectTag> tags;
  for (int i = 0; i < 40; i++) tags.push_back(TagOf(i));
  int batches = 0;
  for (int b = 0; b < 25; b++) {
    std::vector<Bytes> entries;
    std::vector<SubjectTag> used;
    size_t n = 1 + rng() % 20;
    for (size_t k = 0; k < n; k++) {
      used.push_back(tags[rng() % (b < 5 ? 8 : tags.size())]);
      entries.push_back(w.Access(used.back()));
    }
    if (b == 12) entries.push_back(w.Policy(2));  // a second policy mid-way
    auto got = l.Append(entries);
    for (size_t k = 0; k < used.size(); k++) {
      REQUIRE(got[k].status.ok());
      model[used[k]].push_back(got[k].index);
    }
    batches++;
    // Every batch with accesses ended with a commitment at the next index.
    uint64_t last_index = got[entries.size() - 1].index;
    CHECK(l.store->size() == last_index + 2);
    CHECK(l.indexer->pending_accesses() == 0);
    if (b % 8 == 0) CheckLookups(*l.store, *l.tree, model, {TagOf(1000), TagOf(1001)});
  }
  // A batch without accesses appends no commitment.
  uint64_t before = l.store->size();
  l.Append({w.Policy(3)});
  CHECK(l.store->size() == before + 1);
  CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
  auto commitments = ReplayAndCompare(w, *l.store, *l.tree);
  CHECK(commitments.size() == static_cast<size_t>(batches));

  // Submitted commitments are refused, whoever signed them.
  auto reader = std::move(l.store->Read()).value();
  IndexRecord r;
  r.size = reader->size();
  r.root = Hash{};
  r.time = FormatTime(kNow);
  auto refused = l.Append({w.LogSigned(kIndexPayloadType, EncodeIndex(r)),
                           SignEnvelope(kIndexPayloadType, EncodeIndex(r), *w.accessor)});
  for (const auto& e : refused) {
    CHECK(e.status.code() == Status::Code::kPermissionDenied);
    CHECK(e.status.message().rfind("unauthorised key", 0) == 0);
  }
  CHECK(l.store->size() == reader->size());
}

TEST_CASE("subject state: the sequencer wakes up to commit without requests") {
  World w;
  TempDir tmp;
  Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(100));
  l.Append(w.Setup());
  std::map<SubjectTag, std::vector<uint64_t>> model;
  auto got = l.Append({w.Access(TagOf(1)), w.Access(TagOf(2)), w.Access(TagOf(1))});
  for (int k = 0; k < 3; k++) model[TagOf(k == 1 ? 2 : 1)].push_back(got[k].index);
  uint64_t size = got[2].index + 1;
  // Due 100 ms after the accesses; no request comes after them.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (l.store->size() == size && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(l.store->size() == size + 1);
  // The commitment is visible in the store before the sequencer settles its
  // batch (BatchDone), so a resubmitted entry, answered only after the
  // sequencer has finished that batch, orders this thread after it.
  l.Append({w.Setup()[0]});
  CHECK(l.store->size() == size + 1);
  CHECK(l.indexer->pending_accesses() == 0);
  CheckLookups(*l.store, *l.tree, model, {TagOf(3)});
  // The checkpoint stored with the commitment covers it. (The sequencer's
  // cached copy is updated just after the commit becomes visible, so read
  // the store's snapshot, where size and checkpoint are one transaction.)
  auto snapshot = std::move(l.store->Read()).value();
  auto cp = OpenCheckpoint(snapshot->checkpoint(), w.log->verifier());
  REQUIRE(cp.ok());
  CHECK(cp->size == size + 1);
  // Nothing pending: no more commitments, however long we wait.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(l.store->size() == size + 1);
  ReplayAndCompare(w, *l.store, *l.tree);
}

TEST_CASE("subject state: pending accesses survive a restart and get committed") {
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  {
    Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
    l.Append(w.Setup());
    auto got = l.Append({w.Access(TagOf(1))});
    model[TagOf(1)].push_back(got[0].index);
    l.indexer->set_interval(std::chrono::hours(1));
    got = l.Append({w.Access(TagOf(1)), w.Access(TagOf(2))});
    model[TagOf(1)].push_back(got[0].index);
    model[TagOf(2)].push_back(got[1].index);
    CHECK(l.indexer->pending_accesses() == 2);
  }
  Ledger l(w, tmp.store_dir(), std::chrono::hours(1));
  CHECK(l.indexer->pending_accesses() == 2);
  auto got = l.Append({w.Access(TagOf(3))});
  model[TagOf(3)].push_back(got[0].index);
  CHECK(l.indexer->pending_accesses() == 3);
  // Due now: the next batch (a resubmitted entry) or the sequencer's own
  // wake-up appends one commitment for all three.
  l.indexer->set_interval(std::chrono::milliseconds(0));
  l.Append({w.Setup()[0]});
  CHECK(l.store->size() == got[0].index + 2);
  CHECK(l.indexer->pending_accesses() == 0);
  CheckLookups(*l.store, *l.tree, model, {TagOf(4)});
  CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() == 2);
}

TEST_CASE("subject state: a log from before the subject index is indexed on start") {
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  {
    Ledger old(w, tmp.store_dir(), std::chrono::milliseconds(0), /*with_index=*/false);
    old.Append(w.Setup());
    for (int i = 0; i < 30; i++) {
      auto got = old.Append({w.Access(TagOf(i % 7))});
      model[TagOf(i % 7)].push_back(got[0].index);
    }
    old.Append({w.Policy(2)});
  }
  Ledger l(w, tmp.store_dir(), std::chrono::hours(1));
  CHECK(l.indexer->pending_accesses() == 30);
  auto got = l.Append({w.Access(TagOf(1))});
  model[TagOf(1)].push_back(got[0].index);
  l.indexer->set_interval(std::chrono::milliseconds(0));
  l.Append({w.Setup()[0]});
  CHECK(l.store->size() == got[0].index + 2);
  CHECK(l.indexer->pending_accesses() == 0);
  CheckLookups(*l.store, *l.tree, model, {TagOf(100)});
  CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() == 1);
}

TEST_CASE("subject state: index records parse strictly and the rules check them") {
  World w;
  IndexRecord r;
  r.size = 1042;
  r.root = TagOf(5);
  r.subjects = 17;
  r.accesses = 930;
  r.time = "2026-12-01T10:00:01Z";
  Bytes payload = EncodeIndex(r);
  CHECK(payload == "{\"size\":1042,\"root\":\"" + Base64UrlEncode(HashView(r.root)) +
                       "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}");
  auto back = ParseIndex(payload);
  REQUIRE(back.ok());
  CHECK(back->size == 1042);
  CHECK(back->root == r.root);
  CHECK(back->subjects == 17);
  CHECK(back->accesses == 930);
  CHECK(back->time == r.time);
  const std::string root = Base64UrlEncode(HashView(r.root));
  for (const std::string& bad : {
           std::string("{\"size\":1042,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930}",
           std::string("{\"size\":1042,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\",\"x\":1}",
           std::string("{\"root\":\"") + root + "\",\"size\":1042,\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\": 1042,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":1042.0,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":-1,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":9007199254740993,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":1042,\"root\":\"") + root + "=\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":1042,\"root\":\"") + root.substr(1) + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":1042,\"root\":\"") + root + "\",\"subjects\":\"17\",\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
           std::string("{\"size\":1042,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"yesterday\"}",
           std::string("{\"size\":1042,\"size\":1042,\"root\":\"") + root + "\",\"subjects\":17,\"accesses\":930,\"time\":\"2026-12-01T10:00:01Z\"}",
       }) {
    INFO(bad);
    CHECK(ParseIndex(bad).status().IsInvalidArgument());
  }

  Bytes entry = w.LogSigned(kIndexPayloadType, payload);
  auto parsed = ParseEntry(entry);
  REQUIRE(parsed.ok());
  CHECK(parsed->kind == EntryKind::kIndex);
  CHECK(std::string(EntryKindName(EntryKind::kIndex)) == "index");
  CHECK(parsed->index().accesses == 930);
  RulesOptions ro;
  ro.log_public_key = Bytes(w.log->verifier().public_key());
  LedgerRules rules(ro);
  MemoryStateStore state;
  CHECK(rules.Check(state, *parsed, kNow, 1042).ok());
  CHECK(rules.Check(state, *parsed, kNow).ok());
  CHECK(rules.Check(state, *parsed, kNow, 1041).status().IsInvalidArgument());
  CHECK(rules.Apply(state, *parsed, 1042).ok());
  CHECK(rules.Apply(state, *parsed, 7).IsInvalidArgument());
  CHECK(state.data().empty());
  auto other = ParseEntry(SignEnvelope(kIndexPayloadType, payload, *w.accessor));
  REQUIRE(other.ok());
  auto refused = rules.Check(state, *other, kNow, 1042);
  CHECK(refused.status().code() == Status::Code::kPermissionDenied);
  CHECK(refused.status().message().rfind("unauthorised key", 0) == 0);
}

TEST_CASE("subject state: a commitment once max_accesses are pending, however long the interval") {
  // Bounds the commitment's transaction (SubjectIndexerOptions, SPEC.md §14).
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  Ledger l(w, tmp.store_dir(), std::chrono::hours(1), /*with_index=*/true, /*max_accesses=*/4);
  l.Append(w.Setup());
  auto got = l.Append({w.Access(TagOf(1)), w.Access(TagOf(2)), w.Access(TagOf(1))});
  for (int k = 0; k < 3; k++) model[TagOf(k == 1 ? 2 : 1)].push_back(got[k].index);
  CHECK(l.indexer->pending_accesses() == 3);
  CHECK(l.store->size() == got[2].index + 1);
  // The fourth pending access makes the batch end with a commitment.
  got = l.Append({w.Access(TagOf(3))});
  model[TagOf(3)].push_back(got[0].index);
  CHECK(l.store->size() == got[0].index + 2);
  CHECK(l.indexer->pending_accesses() == 0);
  // A batch that alone exceeds the bound is still committed whole.
  std::vector<Bytes> many;
  for (int i = 0; i < 6; i++) many.push_back(w.Access(TagOf(10 + i)));
  got = l.Append(many);
  for (int i = 0; i < 6; i++) model[TagOf(10 + i)].push_back(got[i].index);
  CHECK(l.store->size() == got[5].index + 2);
  CHECK(l.indexer->pending_accesses() == 0);
  CheckLookups(*l.store, *l.tree, model, {TagOf(100)});
  CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() == 2);
}

TEST_CASE("subject state: a data directory from before y/ keys opens and commits its pending accesses") {
  // Until y/ keys existed, every access wrote its x/ key with the entry.
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  std::vector<std::pair<SubjectTag, uint64_t>> pending;
  {
    Ledger l(w, tmp.store_dir(), std::chrono::hours(1), /*with_index=*/true, /*max_accesses=*/1 << 20);
    l.Append(w.Setup());
    for (int i = 0; i < 6; i++) model[TagOf(i % 3)].push_back(l.Append({w.Access(TagOf(i % 3))})[0].index);
    l.indexer->set_interval(std::chrono::milliseconds(0));
    l.Append({w.Setup()[0]});
    l.indexer->set_interval(std::chrono::hours(1));
    REQUIRE(l.indexer->pending_accesses() == 0);
    for (int i = 0; i < 5; i++) {
      SubjectTag t = TagOf(i % 2 == 0 ? 1 : 7);
      uint64_t at = l.Append({w.Access(t)})[0].index;
      model[t].push_back(at);
      pending.emplace_back(t, at);
    }
    auto reader = std::move(l.store->Read()).value();
    auto listed = PendingSubjectAccesses(*reader, TagOf(1), 1000);
    REQUIRE(listed.ok());
    CHECK(*listed == std::vector<uint64_t>{pending[0].second, pending[2].second, pending[4].second});
  }
  {
    // The old layout: x/ keys for the pending accesses, no y/ keys.
    StoreOptions so;
    so.dir = tmp.store_dir();
    so.durable = false;
    auto store = std::move(Store::Open(so)).value();
    auto b = std::move(store->BeginWrite()).value();
    for (const auto& [t, i] : pending) {
      REQUIRE(b->DeleteState(PendingAccessKey(i)).ok());
      REQUIRE(b->PutState(LegacySubjectAccessKey(t, i), "").ok());
    }
    REQUIRE(b->Commit().ok());
  }
  Ledger l(w, tmp.store_dir(), std::chrono::hours(1), /*with_index=*/true, /*max_accesses=*/1 << 20);
  CHECK(l.indexer->pending_accesses() == pending.size());
  {
    auto reader = std::move(l.store->Read()).value();
    auto listed = PendingSubjectAccesses(*reader, TagOf(7), 1000);
    REQUIRE(listed.ok());
    CHECK(*listed == std::vector<uint64_t>{pending[1].second, pending[3].second});
    auto none = PendingSubjectAccesses(*reader, TagOf(100), 1000);
    REQUIRE(none.ok());
    CHECK(none->empty());
  }
  l.indexer->set_interval(std::chrono::milliseconds(0));
  l.Append({w.Setup()[0]});
  CHECK(l.indexer->pending_accesses() == 0);
  CheckLookups(*l.store, *l.tree, model, {TagOf(100)});
  auto reader = std::move(l.store->Read()).value();
  CHECK(AllState(*reader).count(PendingAccessKey(pending[0].second)) == 0);
  CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() == 2);
}

namespace {

// FillSubjects appends 300 accesses one per batch, spread over |distinct|
// tags (several commitments), then |bulk| accesses to new tags in one
// batch, and records them in |model|.
void FillSubjects(World& w, Ledger& l, std::map<SubjectTag, std::vector<uint64_t>>& model, int distinct, int bulk) {
  for (int i = 0; i < 300; i++) model[TagOf(i % distinct)].push_back(l.Append({w.Access(TagOf(i % distinct))})[0].index);
  std::vector<Bytes> more;
  for (int i = 0; i < bulk; i++) more.push_back(w.Access(TagOf(5000 + i)));
  auto sequenced = l.Append(more);
  for (int i = 0; i < bulk; i++) model[TagOf(5000 + i)].push_back(sequenced[i].index);
}

}  // namespace

namespace {

// ToFormat4 puts the subject tree where storage format 4 kept it: its
// nodes as t/ keys in the store's state, and no tree directory. Returns
// the number of nodes.
uint64_t ToFormat4(const std::string& store_dir) {
  std::map<Bytes, Bytes> nodes;
  {
    auto tree = OpenTree(TestTreeOptions(store_dir));
    REQUIRE(tree->ForEachPersisted([&](ByteView k, ByteView v) { nodes.emplace(k, v); }).ok());
  }
  std::filesystem::remove_all(TreeDir(store_dir));
  StoreOptions so;
  so.dir = store_dir;
  so.durable = false;
  auto store = std::move(Store::Open(so)).value();
  auto b = std::move(store->BeginWrite()).value();
  for (const auto& [k, v] : nodes) REQUIRE(b->PutState(k, v).ok());
  REQUIRE(b->Commit().ok());
  return nodes.size();
}

// WithoutNodes returns |state| without its t/ keys; NodesOf only those.
std::map<Bytes, Bytes> WithoutNodes(std::map<Bytes, Bytes> state) {
  for (auto it = state.begin(); it != state.end();) it = it->first.compare(0, 2, "t/") == 0 ? state.erase(it) : std::next(it);
  return state;
}
std::map<Bytes, Bytes> NodesOf(const std::map<Bytes, Bytes>& state) {
  std::map<Bytes, Bytes> out;
  for (const auto& [k, v] : state)
    if (k.compare(0, 2, "t/") == 0) out.emplace(k, v);
  return out;
}
std::map<Bytes, Bytes> PersistedNodes(SubjectTreeStore& tree) {
  std::map<Bytes, Bytes> out;
  REQUIRE(tree.ForEachPersisted([&](ByteView k, ByteView v) { out.emplace(k, v); }).ok());
  return out;
}

}  // namespace

TEST_CASE("subject state: subject nodes of the layout before tiles move to t/ keys on start") {
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  std::map<Bytes, Bytes> before;
  {
    Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
    l.Append(w.Setup());
    // Enough subjects for nodes deeper than one tile, over several
    // commitments, and over 2,048 nodes, so that the move takes several
    // transactions.
    FillSubjects(w, l, model, 150, 1100);
    REQUIRE(l.indexer->pending_accesses() == 0);
  }
  CHECK(ToFormat4(tmp.store_dir()) > 2048);
  before = AllState(*std::move(Store::Open(StoreOptions{tmp.store_dir()})).value()->Read().value());
  uint64_t t_keys = 0;
  {
    // Rewrite every node under its old key: "s/" u16be(depth) || ceil(depth/8) prefix bytes.
    StoreOptions so;
    so.dir = tmp.store_dir();
    so.durable = false;
    auto store = std::move(Store::Open(so)).value();
    auto b = std::move(store->BeginWrite()).value();
    for (const auto& [k, v] : before) {
      if (k.compare(0, 2, "t/") != 0) continue;
      t_keys++;
      const unsigned band = static_cast<uint8_t>(k[2]), within = static_cast<uint8_t>(k.back());
      const unsigned depth = band * 8 + within;
      REQUIRE(k.size() == 5 + band);
      SubjectTag prefix{};
      std::memcpy(prefix.data(), k.data() + 3, band);
      if (band < 32) prefix[band] = static_cast<uint8_t>(k[3 + band]);
      REQUIRE(SubjectNodeKey(depth, prefix) == k);
      Bytes old = "s/";
      AppendU16(&old, static_cast<uint16_t>(depth));
      old.append(reinterpret_cast<const char*>(prefix.data()), (depth + 7) / 8);
      REQUIRE(b->DeleteState(k).ok());
      REQUIRE(b->PutState(old, v).ok());
    }
    REQUIRE(b->Commit().ok());
  }
  CHECK(t_keys > 2048);  // inner nodes and leaves of 1,250 subjects
  Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
  auto reader = std::move(l.store->Read()).value();
  // s/ -> t/ -> the tree's directory (storage format 5).
  CHECK(AllState(*reader) == WithoutNodes(before));
  CHECK(PersistedNodes(*l.tree) == NodesOf(before));
  CHECK(l.indexer->moved_nodes() == t_keys);
  CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
  // And the index goes on from there.
  model[TagOf(1)].push_back(l.Append({w.Access(TagOf(1))})[0].index);
  CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
  CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() > 1);
}

namespace {

// ToLegacyLists rewrites the stored lists in the layout before 2026-12-02:
// an x/ tag u64be(index) key per covered access instead of its c/ key, and
// every leaf without its last index. |model| gives each access's tag.
// Returns the number of x/ keys written.
uint64_t ToLegacyLists(const std::string& dir, const std::map<SubjectTag, std::vector<uint64_t>>& model) {
  StoreOptions so;
  so.dir = dir;
  so.durable = false;
  auto store = std::move(Store::Open(so)).value();
  std::map<uint64_t, SubjectTag> tag_of;
  for (const auto& [tag, indices] : model)
    for (uint64_t i : indices) tag_of[i] = tag;
  std::map<Bytes, Bytes> state = AllState(*std::move(store->Read()).value());
  auto b = std::move(store->BeginWrite()).value();
  uint64_t x_keys = 0;
  for (const auto& [k, v] : state) {
    if (k.compare(0, 2, "c/") == 0) {
      REQUIRE(k.size() == 10);
      const uint64_t i = LoadU64(k.data() + 2);
      REQUIRE(tag_of.count(i) == 1);
      REQUIRE(b->DeleteState(k).ok());
      REQUIRE(b->PutState(LegacySubjectAccessKey(tag_of[i], i), "").ok());
      x_keys++;
    } else if (k.compare(0, 2, "t/") == 0 && v[0] == '\x01') {
      REQUIRE(v.size() == 1 + 32 + 40 + 8);
      REQUIRE(b->PutState(k, v.substr(0, 1 + 32 + 40)).ok());
    }
  }
  REQUIRE(b->Commit().ok());
  return x_keys;
}

}  // namespace

TEST_CASE("subject state: lists of the layout before 2026-12-02 move to c/ keys on start") {
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  std::map<Bytes, Bytes> before;
  std::vector<std::pair<SubjectTag, uint64_t>> pending;
  {
    Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
    l.Append(w.Setup());
    // Subjects with several accesses over several commitments, and over
    // 2,048 of them, so that the move takes several transactions.
    FillSubjects(w, l, model, 40, 2500);
    REQUIRE(l.indexer->pending_accesses() == 0);
    // Pending accesses (y/ keys) are not part of the move.
    l.indexer->set_interval(std::chrono::hours(1));
    for (int i = 0; i < 3; i++) {
      uint64_t at = l.Append({w.Access(TagOf(i))})[0].index;
      model[TagOf(i)].push_back(at);
      pending.emplace_back(TagOf(i), at);
    }
    REQUIRE(l.indexer->pending_accesses() == 3);
  }
  ToFormat4(tmp.store_dir());
  before = AllState(*std::move(Store::Open(StoreOptions{tmp.store_dir()})).value()->Read().value());
  std::map<SubjectTag, std::vector<uint64_t>> covered = model;
  for (const auto& [tag, i] : pending) covered[tag].pop_back();
  CHECK(ToLegacyLists(tmp.store_dir(), covered) == 2800);
  {
    // A data directory from before y/ keys also held x/ keys of pending
    // accesses: the move drops them (the accesses stay pending).
    StoreOptions so;
    so.dir = tmp.store_dir();
    so.durable = false;
    auto store = std::move(Store::Open(so)).value();
    auto b = std::move(store->BeginWrite()).value();
    REQUIRE(b->PutState(LegacySubjectAccessKey(pending[0].first, pending[0].second), "").ok());
    REQUIRE(b->Commit().ok());
  }
  {
    Ledger l(w, tmp.store_dir(), std::chrono::hours(1));
    CHECK(l.indexer->pending_accesses() == 3);
    auto reader = std::move(l.store->Read()).value();
    CHECK(AllState(*reader) == WithoutNodes(before));
    CHECK(PersistedNodes(*l.tree) == NodesOf(before));
    CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
    // And the index goes on from there.
    l.indexer->set_interval(std::chrono::milliseconds(0));
    model[TagOf(1)].push_back(l.Append({w.Access(TagOf(1))})[0].index);
    model[TagOf(7)].push_back(l.Append({w.Access(TagOf(7))})[0].index);
    CHECK(l.indexer->pending_accesses() == 0);
    CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
    auto listed = Covered(*l.store, *l.tree, TagOf(1));
    REQUIRE(listed.ok());
    CHECK(*listed == model[TagOf(1)]);
    CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() > 1);
  }
}

TEST_CASE("subject state: a broken list or a mismatched legacy list is corruption, not a wrong answer") {
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  {
    Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
    l.Append(w.Setup());
    for (int i = 0; i < 12; i++) model[TagOf(i % 3)].push_back(l.Append({w.Access(TagOf(i % 3))})[0].index);
    CheckLookups(*l.store, *l.tree, model, {});
  }
  StoreOptions so;
  const SubjectTreeOptions to = TestTreeOptions(tmp.store_dir());
  so.dir = tmp.store_dir();
  so.durable = false;
  SECTION("a c/ key missing") {
    auto store = std::move(Store::Open(so)).value();
    auto b = std::move(store->BeginWrite()).value();
    REQUIRE(b->DeleteState(SubjectChainKey(model[TagOf(1)][2])).ok());
    REQUIRE(b->Commit().ok());
    auto tree = OpenTree(to);
    auto listed = Covered(*store, *tree, TagOf(1));
    CHECK(listed.status().IsCorruption());
    CHECK(Covered(*store, *tree, TagOf(2)).ok());
  }
  SECTION("a c/ value pointing elsewhere") {
    auto store = std::move(Store::Open(so)).value();
    auto b = std::move(store->BeginWrite()).value();
    Bytes wrong;
    AppendU64(&wrong, model[TagOf(2)][0]);
    REQUIRE(b->PutState(SubjectChainKey(model[TagOf(1)][1]), wrong).ok());
    REQUIRE(b->Commit().ok());
    auto tree = OpenTree(to);
    CHECK(Covered(*store, *tree, TagOf(1)).status().IsCorruption());
  }
  SECTION("a legacy list that is not the leaf's") {
    ToFormat4(tmp.store_dir());
    CHECK(ToLegacyLists(tmp.store_dir(), model) == 12);
    {
      auto store = std::move(Store::Open(so)).value();
      auto b = std::move(store->BeginWrite()).value();
      REQUIRE(b->DeleteState(LegacySubjectAccessKey(TagOf(0), model[TagOf(0)].back())).ok());
      REQUIRE(b->Commit().ok());
    }
    auto store = std::move(Store::Open(so)).value();
    auto tree = OpenTree(to);
    SubjectIndexer indexer(w.log.get(), tree.get(), SubjectIndexerOptions{});
    Status s = indexer.Recover(*store);
    INFO(s.ToString());
    CHECK(s.IsCorruption());
  }
}

TEST_CASE("subject state: the node cache forgets a commitment whose batch aborted") {
  // The indexer caches the tree's top levels (here depths 0..3) between
  // commitments. A commitment's batch that writes nodes and then aborts
  // must leave the cache as it was committed: the next commitments,
  // touching one path at a time and so reading the cached siblings, must
  // match the reference root and the replay. Holds for every cache depth,
  // none included.
  for (int depth : {-1, 0, 3, 16}) {
    INFO("node cache depth " << depth);
    World w;
    TempDir tmp;
    StoreOptions so;
    so.dir = tmp.store_dir();
    so.durable = false;
    auto store = std::move(Store::Open(so)).value();
    RulesOptions ro;
    ro.log_public_key = Bytes(w.log->verifier().public_key());
    RulesHook hook(LedgerRules(ro), [] { return kNow; });
    SubjectIndexerOptions io;
    io.interval = std::chrono::milliseconds(0);
    io.node_cache_depth = depth;
    auto tree = OpenTree(TestTreeOptions(so.dir));
    SubjectIndexer indexer(w.log.get(), tree.get(), io);
    REQUIRE(indexer.Recover(*store).ok());
    hook.SetSubjectIndexer(&indexer);
    std::map<SubjectTag, std::vector<uint64_t>> model;
    auto append = [&](Sequencer& seq, std::vector<Bytes> entries, std::vector<SubjectTag> tags) {
      auto r = seq.Append(std::move(entries));
      REQUIRE(r.ok());
      for (const auto& e : r->entries) {
        INFO(e.status.ToString());
        REQUIRE(e.status.ok());
        REQUIRE_FALSE(e.duplicate);
      }
      for (size_t k = 0; k < tags.size(); k++) model[tags[k]].push_back(r->entries[k].index);
    };
    {
      Sequencer seq(store.get(), w.log.get(), SequencerOptions{}, &hook);
      REQUIRE(seq.Start().ok());
      append(seq, w.Setup(), {});
      for (int b = 0; b < 3; b++) {
        std::vector<Bytes> entries;
        std::vector<SubjectTag> tags;
        for (int k = 0; k < 12; k++) {
          tags.push_back(TagOf(b * 12 + k));
          entries.push_back(w.Access(tags.back()));
        }
        append(seq, entries, tags);
      }
      seq.Stop();
    }
    // A batch as the sequencer runs it, with a policy and accesses to new
    // and known tags; its commitment is written, then the batch aborts.
    {
      auto batch = std::move(store->BeginWrite()).value();
      std::vector<Bytes> entries = {w.Policy(2)};
      for (int k = 0; k < 16; k++) entries.push_back(w.Access(TagOf(k % 2 ? 100 + k : k)));
      for (const Bytes& e : entries) {
        auto c = hook.Check(*batch, e, nullptr);
        INFO(c.status().ToString());
        REQUIRE(c.ok());
        REQUIRE_FALSE(c->has_value());
        auto leaf = batch->Append(e);
        REQUIRE(leaf.ok());
        REQUIRE(hook.Applied(*batch, e, nullptr, *leaf).ok());
      }
      uint64_t extra = 0;
      REQUIRE(hook.BatchEnd(*batch, &extra).ok());
      REQUIRE(extra == 1);
      batch.reset();  // aborts
      hook.BatchDone(false);
    }
    // One path per commitment from here.
    {
      Sequencer seq(store.get(), w.log.get(), SequencerOptions{}, &hook);
      REQUIRE(seq.Start().ok());
      // Waits out the retry delay after the failed commitment (interval 0).
      for (int k : {0, 5, 13, 27, 101, 7}) append(seq, {w.Access(TagOf(k))}, {TagOf(k)});
      // The aborted policy v2 is not in force: v2 again is accepted.
      append(seq, {w.Policy(2)}, {});
      append(seq, {w.Access(TagOf(2))}, {TagOf(2)});
      seq.Stop();
    }
    CHECK(indexer.pending_accesses() == 0);
    CheckLookups(*store, *tree, model, {TagOf(100), TagOf(103)});
    ReplayAndCompare(w, *store, *tree);
  }
}

TEST_CASE("request ids: an r/ state key of the layout before 2026-12-02 is still honoured") {
  // Until 2026-12-02 each access's request id was a state key; now it is
  // recorded in the leaf index (SPEC.md §10). A store written before keeps
  // its r/ keys, which are read first.
  World w;
  TempDir tmp;
  Ledger l(w, tmp.store_dir(), std::chrono::hours(1));
  l.Append(w.Setup());
  const uint64_t original = l.Append({w.Access(TagOf(1))})[0].index;
  AccessRecord r;
  r.request_id = "legacy-1";
  r.accessor = "app";
  r.holder = "bank";
  r.subject = Bytes(HashView(TagOf(2)));
  r.purpose = "CUSTOMER_SUPPORT";
  r.categories = {"BALANCES"};
  r.consent = "c";
  r.time = FormatTime(kNow);
  const Bytes payload = EncodeAccess(r);
  {
    // As the old layout stored it: "<index> <hex SHA-256 of the payload>".
    l.seq->Stop();
    auto b = std::move(l.store->BeginWrite()).value();
    REQUIRE(b->PutState(RequestIdStateKey("app", "legacy-1"), std::to_string(original) + " " + HexEncode(HashView(Sha256(payload))))
                .ok());
    REQUIRE(b->Commit().ok());
  }
  l.seq = std::make_unique<Sequencer>(l.store.get(), w.log.get(), SequencerOptions{}, l.hook.get());
  REQUIRE(l.seq->Start().ok());
  // The same payload is a retry of the entry the old key names ...
  auto got = l.seq->Append({SignEnvelope(kAccessPayloadType, payload, *w.accessor)});
  REQUIRE(got.ok());
  REQUIRE(got->entries[0].status.ok());
  CHECK(got->entries[0].duplicate);
  CHECK(got->entries[0].index == original);
  // ... and another payload under that request id is refused.
  r.consent = "other";
  got = l.seq->Append({SignEnvelope(kAccessPayloadType, EncodeAccess(r), *w.accessor)});
  REQUIRE(got.ok());
  CHECK(got->entries[0].status.code() == Status::Code::kAlreadyExists);
  // New request ids are not state keys.
  auto reader = std::move(l.store->Read()).value();
  size_t r_keys = 0;
  for (const auto& [k, v] : AllState(*reader)) r_keys += k.compare(0, 2, "r/") == 0;
  CHECK(r_keys == 1);
}

TEST_CASE("subject state: after a crash the tree's unpersisted versions are recomputed from the log") {
  World w;
  TempDir tmp;
  std::map<SubjectTag, std::vector<uint64_t>> model;
  // Never persisted in the background: only what Flush writes is on disk.
  SubjectTreeOptions manual = TestTreeOptions(tmp.store_dir());
  manual.background = false;
  uint64_t flushed = 0, latest = 0;
  {
    Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0), true, SubjectIndexerOptions{}.max_accesses, manual);
    l.Append(w.Setup());
    for (int i = 0; i < 40; i++) model[TagOf(i % 13)].push_back(l.Append({w.Access(TagOf(i % 13))})[0].index);
    REQUIRE(l.tree->Flush().ok());
    flushed = l.tree->persisted_version();
    // Commitments whose tree versions are only in memory, then a crash.
    for (int i = 0; i < 60; i++) model[TagOf(100 + i % 29)].push_back(l.Append({w.Access(TagOf(100 + i % 29))})[0].index);
    latest = l.tree->committed_version();
    CHECK(l.tree->persisted_version() == flushed);
    CHECK(latest > flushed);
    l.crash = true;
  }
  {
    Ledger l(w, tmp.store_dir(), std::chrono::hours(1));
    CHECK(l.tree->committed_version() == latest);
    CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
    // And the index goes on from there.
    l.indexer->set_interval(std::chrono::milliseconds(0));
    model[TagOf(5)].push_back(l.Append({w.Access(TagOf(5))})[0].index);
    CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
    CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() > 60);
  }
  // Without any persisted version (the tree's directory lost): the whole
  // tree is recomputed.
  std::filesystem::remove_all(TreeDir(tmp.store_dir()));
  Ledger l(w, tmp.store_dir(), std::chrono::hours(1));
  CheckLookups(*l.store, *l.tree, model, {TagOf(1000)});
  CHECK(ReplayAndCompare(w, *l.store, *l.tree).size() > 60);
}

TEST_CASE("subject state: a persisted tree ahead of the log refuses to start") {
  World w;
  TempDir tmp;
  const std::string copy = tmp.path() + "/lmdb-copy";
  {
    Ledger l(w, tmp.store_dir(), std::chrono::milliseconds(0));
    l.Append(w.Setup());
    l.Append({w.Access(TagOf(1))});
    // The log as it was after the first commitment.
    std::filesystem::copy(tmp.store_dir(), copy);
    l.Append({w.Access(TagOf(2))});
  }
  std::filesystem::remove_all(tmp.store_dir());
  std::filesystem::rename(copy, tmp.store_dir());
  StoreOptions so;
  so.dir = tmp.store_dir();
  so.durable = false;
  auto store = std::move(Store::Open(so)).value();
  auto tree = OpenTree(TestTreeOptions(so.dir));
  SubjectIndexer indexer(w.log.get(), tree.get(), SubjectIndexerOptions{});
  Status s = indexer.Recover(*store);
  INFO(s.ToString());
  CHECK(s.IsCorruption());
}
