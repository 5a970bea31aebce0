// Tests for ledger::Sequencer: the single writer that group-commits entries
// with a signed checkpoint. Every receipt is checked the way a client would:
// open the returned checkpoint with the log key and verify an inclusion
// proof served by the store against its root.
#include "ledger/sequencer.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/store.h"
#include "test_util.h"

using namespace ledger;

namespace {

const char kLogName[] = "example.com/test-log";

using ledger_test::TempDir;

std::unique_ptr<NoteSigner> NewSigner(const std::string& name = kLogName) {
  auto s = NoteSigner::Generate(name);
  INFO("Generate: " << s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

std::unique_ptr<Store> OpenStore(const std::string& dir, bool durable = false) {
  StoreOptions o;
  o.dir = dir;
  o.durable = durable;  // mostly off for speed; the ordering of commit and reply is what is tested
  auto s = Store::Open(o);
  INFO("Store::Open: " << s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

std::unique_ptr<Sequencer> StartSequencer(Store* store, const NoteSigner* signer, EntryHook* hook = nullptr,
                                          SequencerOptions options = {}) {
  auto seq = std::make_unique<Sequencer>(store, signer, options, hook);
  Status s = seq->Start();
  INFO("Start: " << s.ToString());
  REQUIRE(s.ok());
  return seq;
}

Checkpoint OpenOrDie(const std::string& note, const NoteSigner& signer) {
  auto cp = OpenCheckpoint(note, signer.verifier());
  INFO("OpenCheckpoint: " << cp.status().ToString() << "\n" << note);
  REQUIRE(cp.ok());
  return *cp;
}

SequencerResult AppendOrDie(Sequencer& seq, std::vector<Bytes> entries) {
  auto r = seq.Append(std::move(entries));
  INFO("Append: " << r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

// VerifyReceipt checks one appended entry against the checkpoint returned
// with it, using only the log key and proofs from the store.
void VerifyReceipt(const Store& store, const NoteSigner& signer, const Bytes& entry, const SequencedEntry& got,
                   const std::string& checkpoint, uint64_t tree_size) {
  INFO("entry " << entry << " index " << got.index);
  REQUIRE(got.status.ok());
  REQUIRE(got.leaf_hash == HashLeaf(entry));
  Checkpoint cp = OpenOrDie(checkpoint, signer);
  REQUIRE(cp.origin == signer.name());
  REQUIRE(cp.size == tree_size);
  REQUIRE(got.index < cp.size);
  auto reader = store.Read();
  REQUIRE(reader.ok());
  auto e = (*reader)->GetEntry(got.index);
  REQUIRE(e.ok());
  REQUIRE(*e == entry);
  auto proof = InclusionProof(got.index, cp.size, **reader);
  INFO("InclusionProof: " << proof.status().ToString());
  REQUIRE(proof.ok());
  Status v = VerifyInclusion(HashLeaf(entry), got.index, cp.size, *proof, cp.root);
  INFO("VerifyInclusion: " << v.ToString());
  REQUIRE(v.ok());
}

void RequireConsistent(const Store& store, const Checkpoint& older, const Checkpoint& newer) {
  INFO("sizes " << older.size << " -> " << newer.size);
  REQUIRE(older.size <= newer.size);
  auto reader = store.Read();
  REQUIRE(reader.ok());
  auto proof = ConsistencyProof(older.size, newer.size, **reader);
  REQUIRE(proof.ok());
  Status v = VerifyConsistency(older.size, newer.size, *proof, older.root, newer.root);
  INFO("VerifyConsistency: " << v.ToString());
  REQUIRE(v.ok());
}

using CheckResult = StatusOr<std::optional<uint64_t>>;
const CheckResult kAppend = CheckResult(std::optional<uint64_t>());

// RefuseBad refuses entries containing "bad" and records what it saw.
class RefuseBad : public EntryHook {
 public:
  CheckResult Check(WriteBatch&, ByteView entry, const void* context) override {
    checked.emplace_back(entry);
    contexts.push_back(context);
    if (entry.find("bad") != ByteView::npos) return Status::PermissionDenied("entries containing \"bad\" are refused");
    return kAppend;
  }
  Status Applied(WriteBatch&, ByteView entry, const void* context, const AppendedLeaf& leaf) override {
    applied[leaf.index] = Bytes(entry);
    applied_contexts[leaf.index] = context;
    return Status::OK();
  }
  // Sequencer thread only; read after Append returns.
  std::vector<Bytes> checked;
  std::vector<const void*> contexts;
  std::map<uint64_t, Bytes> applied;
  std::map<uint64_t, const void*> applied_contexts;
};

// NameRegistry keeps derived state. Entries are "name=value", optionally
// followed by "#note". A name may be registered once: the same name and
// value again (with another note) is answered as a repeat of the original
// entry; another value is refused. Check consults state written by earlier
// entries, even ones earlier in the same batch; Applied records the name's
// index and a running count. An entry "explode" fails Applied.
class NameRegistry : public EntryHook {
 public:
  static std::pair<std::string, std::string> Parse(ByteView entry) {
    auto eq = entry.find('=');
    ByteView rest = entry.substr(eq + 1);
    return {std::string(entry.substr(0, eq)), std::string(rest.substr(0, rest.find('#')))};
  }
  CheckResult Check(WriteBatch& batch, ByteView entry, const void*) override {
    if (entry == "explode") return kAppend;
    auto eq = entry.find('=');
    if (eq == ByteView::npos || eq == 0) return Status::InvalidArgument("not name=value");
    auto [name, value] = Parse(entry);
    auto v = batch.GetState("name/" + name);
    if (!v.ok()) return v.status();
    if (!v->has_value()) return kAppend;
    uint64_t index = std::stoull(**v);
    auto original = batch.GetEntry(index);
    if (!original.ok()) return original.status();
    if (Parse(*original).second == value) return std::optional<uint64_t>(index);  // a repeat
    return Status::AlreadyExists("name already registered");
  }
  Status Applied(WriteBatch& batch, ByteView entry, const void*, const AppendedLeaf& leaf) override {
    if (entry == "explode") return Status::Internal("hook failure");
    LEDGER_RETURN_IF_ERROR(batch.PutState("name/" + Parse(entry).first, std::to_string(leaf.index)));
    auto count = batch.GetState("count");
    if (!count.ok()) return count.status();
    uint64_t n = count->has_value() ? std::stoull(**count) : 0;
    return batch.PutState("count", std::to_string(n + 1));
  }
};

std::optional<Bytes> GetState(const Store& store, const std::string& key) {
  auto r = store.Read();
  REQUIRE(r.ok());
  auto v = (*r)->GetState(key);
  REQUIRE(v.ok());
  return *v;
}

}  // namespace

TEST_CASE("Start on a new store writes a signed checkpoint of size 0", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  auto seq = StartSequencer(store.get(), signer.get());
  auto reader = store->Read();
  REQUIRE(reader.ok());
  const std::string stored = (*reader)->checkpoint();
  REQUIRE(!stored.empty());
  Checkpoint cp = OpenOrDie(stored, *signer);
  CHECK(cp.origin == kLogName);
  CHECK(cp.size == 0);
  CHECK(cp.root == EmptyTreeRoot());
  CHECK(seq->latest_checkpoint() == stored);
  CHECK(store->origin() == kLogName);
  CHECK(store->size() == 0);
  // Another key does not verify it.
  auto other = NewSigner();
  CHECK(!OpenCheckpoint(stored, other->verifier()).ok());
  // Starting twice is refused.
  CHECK(seq->Start().code() == Status::Code::kFailedPrecondition);
}

TEST_CASE("Append returns per-entry results with verifiable receipts", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  auto seq = StartSequencer(store.get(), signer.get());

  std::vector<Bytes> first{"alpha", "beta", "gamma"};
  SequencerResult r = AppendOrDie(*seq, first);
  REQUIRE(r.entries.size() == 3);
  CHECK(r.tree_size == 3);
  for (size_t i = 0; i < 3; i++) {
    CHECK(r.entries[i].index == i);
    CHECK(!r.entries[i].duplicate);
    VerifyReceipt(*store, *signer, first[i], r.entries[i], r.checkpoint, r.tree_size);
  }
  CHECK(seq->latest_checkpoint() == r.checkpoint);
  {
    auto reader = store->Read();
    REQUIRE(reader.ok());
    CHECK((*reader)->checkpoint() == r.checkpoint);  // stored with the entries
  }
  Checkpoint cp3 = OpenOrDie(r.checkpoint, *signer);

  // A malformed entry is refused alone.
  std::vector<Bytes> second{"delta", "", "epsilon", Bytes(65536, 'x')};
  SequencerResult r2 = AppendOrDie(*seq, second);
  REQUIRE(r2.entries.size() == 4);
  CHECK(r2.tree_size == 5);
  VerifyReceipt(*store, *signer, "delta", r2.entries[0], r2.checkpoint, r2.tree_size);
  CHECK(r2.entries[0].index == 3);
  CHECK(r2.entries[1].status.IsInvalidArgument());
  VerifyReceipt(*store, *signer, "epsilon", r2.entries[2], r2.checkpoint, r2.tree_size);
  CHECK(r2.entries[2].index == 4);
  CHECK(r2.entries[3].status.IsInvalidArgument());
  CHECK(store->size() == 5);
  CHECK(seq->stats().refused.load() == 2);
  RequireConsistent(*store, cp3, OpenOrDie(r2.checkpoint, *signer));

  // Old receipts still verify against their own checkpoints.
  for (size_t i = 0; i < 3; i++) VerifyReceipt(*store, *signer, first[i], r.entries[i], r.checkpoint, r.tree_size);

  // No entries at all is malformed.
  CHECK(seq->Append({}).status().IsInvalidArgument());
  CHECK(seq->stats().appended.load() == 5);
  CHECK(seq->stats().batches.load() >= 2);
}

TEST_CASE("concurrent submitters: unique indexes, batching, consistent checkpoints", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir(), /*durable=*/true);  // fsync per batch, as in production
  auto seq = StartSequencer(store.get(), signer.get());

  constexpr int kThreads = 16;
  constexpr int kRequests = 200;
  struct Done {
    std::vector<Bytes> entries;
    Status status;
    SequencerResult result;
  };
  std::vector<std::vector<Done>> done(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      uint64_t x = 0x9e3779b97f4a7c15ull * (t + 1);
      for (int q = 0; q < kRequests; q++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Done d;
        int n = 1 + static_cast<int>(x % 5);
        for (int k = 0; k < n; k++)
          d.entries.push_back("t" + std::to_string(t) + "/r" + std::to_string(q) + "/e" + std::to_string(k));
        auto r = seq->Append(d.entries);
        d.status = r.status();
        if (r.ok()) d.result = std::move(*r);
        done[t].push_back(std::move(d));
      }
    });
  }
  for (auto& th : threads) th.join();

  uint64_t total_entries = 0;
  std::set<uint64_t> indexes;
  std::map<uint64_t, std::string> checkpoints;  // size -> note
  for (auto& per_thread : done) {
    REQUIRE(per_thread.size() == kRequests);
    for (auto& d : per_thread) {
      INFO("Append: " << d.status.ToString());
      REQUIRE(d.status.ok());
      REQUIRE(d.result.entries.size() == d.entries.size());
      for (size_t k = 0; k < d.entries.size(); k++) {
        const SequencedEntry& e = d.result.entries[k];
        REQUIRE(e.status.ok());
        REQUIRE(!e.duplicate);
        REQUIRE(e.index < d.result.tree_size);
        REQUIRE(indexes.insert(e.index).second);  // unique
        total_entries++;
      }
      auto [it, inserted] = checkpoints.emplace(d.result.tree_size, d.result.checkpoint);
      // One checkpoint per tree size: requests of one batch share it.
      REQUIRE(it->second == d.result.checkpoint);
      (void)inserted;
    }
  }
  const uint64_t kTotalRequests = kThreads * kRequests;
  REQUIRE(store->size() == total_entries);
  REQUIRE(*indexes.begin() == 0);
  REQUIRE(*indexes.rbegin() == total_entries - 1);  // dense: 0..total-1
  CHECK(seq->stats().appended.load() == total_entries);
  CHECK(seq->stats().duplicates.load() == 0);
  CHECK(seq->stats().failed_batches.load() == 0);
  const uint64_t batches = seq->stats().batches;
  INFO("batches " << batches << " for " << kTotalRequests << " requests");
  INFO("group commit: " << batches << " batches for " << kTotalRequests << " requests, " << total_entries
                        << " entries");
  CHECK(batches < kTotalRequests);  // group commit happened
  CHECK(batches == checkpoints.size());
  CHECK(seq->stats().batch_entries.total.load() == batches);
  CHECK(seq->stats().batch_entries.sum.load() == total_entries);

  const Checkpoint final_cp = OpenOrDie(seq->latest_checkpoint(), *signer);
  REQUIRE(final_cp.size == total_entries);
  REQUIRE(final_cp.root == store->root());

  // Every returned checkpoint verifies and is a prefix of the final one.
  for (auto& [size, note] : checkpoints) {
    Checkpoint cp = OpenOrDie(note, *signer);
    REQUIRE(cp.size == size);
    RequireConsistent(*store, cp, final_cp);
  }
  // Every entry is where its receipt says, provable against its checkpoint.
  auto reader = store->Read();
  REQUIRE(reader.ok());
  for (auto& per_thread : done) {
    for (auto& d : per_thread) {
      Checkpoint cp = OpenOrDie(d.result.checkpoint, *signer);
      for (size_t k = 0; k < d.entries.size(); k++) {
        const SequencedEntry& e = d.result.entries[k];
        auto got = (*reader)->GetEntry(e.index);
        REQUIRE(got.ok());
        REQUIRE(*got == d.entries[k]);
        auto proof = InclusionProof(e.index, cp.size, **reader);
        REQUIRE(proof.ok());
        REQUIRE(VerifyInclusion(HashLeaf(d.entries[k]), e.index, cp.size, *proof, cp.root).ok());
      }
      // Entries of one request are appended in order.
      for (size_t k = 1; k < d.entries.size(); k++)
        REQUIRE(d.result.entries[k].index > d.result.entries[k - 1].index);
    }
  }
}

TEST_CASE("duplicates get the existing index", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  auto seq = StartSequencer(store.get(), signer.get());

  SequencerResult a = AppendOrDie(*seq, {"x", "y"});
  REQUIRE(a.entries[0].index == 0);
  REQUIRE(a.entries[1].index == 1);
  // The same entry again: same index, marked duplicate, nothing appended.
  SequencerResult b = AppendOrDie(*seq, {"x"});
  REQUIRE(b.entries.size() == 1);
  CHECK(b.entries[0].index == 0);
  CHECK(b.entries[0].duplicate);
  CHECK(b.tree_size == 2);
  CHECK(store->size() == 2);
  VerifyReceipt(*store, *signer, "x", b.entries[0], b.checkpoint, b.tree_size);
  // Twice within one request, and a duplicate next to a new entry.
  SequencerResult c = AppendOrDie(*seq, {"z", "z", "y"});
  CHECK(c.entries[0].index == 2);
  CHECK(!c.entries[0].duplicate);
  CHECK(c.entries[1].index == 2);
  CHECK(c.entries[1].duplicate);
  CHECK(c.entries[2].index == 1);
  CHECK(c.entries[2].duplicate);
  CHECK(c.tree_size == 3);
  for (size_t i = 0; i < 3; i++)
    VerifyReceipt(*store, *signer, i == 2 ? "y" : "z", c.entries[i], c.checkpoint, c.tree_size);
  CHECK(store->size() == 3);
  CHECK(seq->stats().duplicates.load() == 3);
  CHECK(seq->stats().appended.load() == 3);
}

TEST_CASE("restart keeps everything and Start verifies the stored checkpoint", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  std::vector<Bytes> entries;
  std::string checkpoint_before;
  Hash root_before{};
  {
    auto store = OpenStore(tmp.store_dir());
    auto seq = StartSequencer(store.get(), signer.get());
    for (int q = 0; q < 20; q++) {
      std::vector<Bytes> req;
      for (int k = 0; k <= q % 4; k++) req.push_back("before/" + std::to_string(q) + "/" + std::to_string(k));
      SequencerResult r = AppendOrDie(*seq, req);
      entries.insert(entries.end(), req.begin(), req.end());
      CHECK(r.tree_size == entries.size());
    }
    seq->Stop();
    seq->Stop();  // idempotent
    checkpoint_before = seq->latest_checkpoint();
    root_before = store->root();
    seq.reset();
  }
  auto store = OpenStore(tmp.store_dir());
  REQUIRE(store->size() == entries.size());
  REQUIRE(store->root() == root_before);
  CHECK(store->origin() == kLogName);
  auto seq = StartSequencer(store.get(), signer.get());
  CHECK(seq->latest_checkpoint() == checkpoint_before);
  Checkpoint before = OpenOrDie(checkpoint_before, *signer);
  CHECK(before.size == entries.size());

  {
    auto reader = store->Read();
    REQUIRE(reader.ok());
    for (size_t i = 0; i < entries.size(); i++) {
      auto e = (*reader)->GetEntry(i);
      REQUIRE(e.ok());
      REQUIRE(*e == entries[i]);
    }
  }
  // Duplicates are still recognised after the restart; new entries continue.
  SequencerResult d = AppendOrDie(*seq, {entries[5], "after/0"});
  CHECK(d.entries[0].index == 5);
  CHECK(d.entries[0].duplicate);
  CHECK(d.entries[1].index == entries.size());
  CHECK(!d.entries[1].duplicate);
  VerifyReceipt(*store, *signer, "after/0", d.entries[1], d.checkpoint, d.tree_size);
  VerifyReceipt(*store, *signer, entries[5], d.entries[0], d.checkpoint, d.tree_size);
  RequireConsistent(*store, before, OpenOrDie(d.checkpoint, *signer));

  SECTION("a stored checkpoint for another tree size is refused") {
    seq->Stop();
    seq.reset();
    Checkpoint wrong;
    wrong.origin = kLogName;
    wrong.size = before.size;  // correctly signed, but stale
    wrong.root = before.root;
    auto note = signer->SignNote(wrong.Format());
    REQUIRE(note.ok());
    {
      auto b = store->BeginWrite();
      REQUIRE(b.ok());
      REQUIRE((*b)->SetCheckpoint(*note).ok());
      REQUIRE((*b)->Commit().ok());
    }
    Sequencer again(store.get(), signer.get(), SequencerOptions{});
    Status s = again.Start();
    INFO(s.ToString());
    CHECK(s.IsCorruption());
    CHECK(again.Append({"nope"}).status().code() == Status::Code::kUnavailable);
  }
  SECTION("a stored checkpoint that does not verify is refused") {
    seq->Stop();
    seq.reset();
    {
      auto b = store->BeginWrite();
      REQUIRE(b.ok());
      REQUIRE((*b)->SetCheckpoint("garbage\n").ok());
      REQUIRE((*b)->Commit().ok());
    }
    Sequencer again(store.get(), signer.get(), SequencerOptions{});
    Status s = again.Start();
    INFO(s.ToString());
    CHECK(s.IsCorruption());
  }
}

TEST_CASE("Start with another key on an existing store fails", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  bool non_empty = GENERATE(false, true);
  std::string checkpoint;
  {
    auto seq = StartSequencer(store.get(), signer.get());
    if (non_empty) AppendOrDie(*seq, {"one", "two", "three"});
    checkpoint = seq->latest_checkpoint();
  }
  const uint64_t size = store->size();
  CHECK(size == (non_empty ? 3u : 0u));

  auto same_name = NewSigner(kLogName);
  auto other_name = NewSigner("example.com/other-log");
  for (const NoteSigner* wrong : {same_name.get(), other_name.get()}) {
    INFO("key " << wrong->verifier().VerifierKeyString());
    Sequencer seq(store.get(), wrong, SequencerOptions{});
    Status s = seq.Start();
    INFO("Start: " << s.ToString());
    REQUIRE(!s.ok());
    CHECK((s.code() == Status::Code::kFailedPrecondition || s.code() == Status::Code::kCorruption));
    CHECK(seq.Append({"intruder"}).status().code() == Status::Code::kUnavailable);
  }
  // Nothing was changed by the refused starts.
  CHECK(store->size() == size);
  CHECK(store->origin() == kLogName);
  auto reader = store->Read();
  REQUIRE(reader.ok());
  CHECK((*reader)->checkpoint() == checkpoint);
  reader->reset();
  // The right key still works.
  auto seq = StartSequencer(store.get(), signer.get());
  SequencerResult r = AppendOrDie(*seq, {"four"});
  CHECK(r.entries[0].index == size);
}

TEST_CASE("Append is Unavailable before Start and after Stop", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  Sequencer seq(store.get(), signer.get(), SequencerOptions{});
  CHECK(seq.Append({"early"}).status().code() == Status::Code::kUnavailable);
  REQUIRE(seq.Start().ok());
  AppendOrDie(seq, {"a"});
  seq.Stop();
  auto r = seq.Append({"late"});
  REQUIRE(!r.ok());
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(store->size() == 1);
}

TEST_CASE("Stop finishes queued requests; nothing is lost or half-done", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  auto seq = StartSequencer(store.get(), signer.get());
  constexpr int kThreads = 8;
  struct Done {
    Bytes entry;
    Status status;
    uint64_t index = 0;
  };
  std::vector<std::vector<Done>> done(kThreads);
  std::atomic<int> ok_count{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int q = 0;; q++) {
        Done d;
        d.entry = "stop/" + std::to_string(t) + "/" + std::to_string(q);
        auto r = seq->Append({d.entry});
        d.status = r.status();
        if (r.ok()) {
          d.status = r->entries[0].status;
          d.index = r->entries[0].index;
          ok_count++;
        }
        bool stop = !r.ok();
        done[t].push_back(std::move(d));
        if (stop) return;
      }
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ok_count < 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(ok_count >= 200);
  seq->Stop();
  for (auto& th : threads) th.join();

  auto reader = store->Read();
  REQUIRE(reader.ok());
  uint64_t acknowledged = 0;
  for (auto& per_thread : done) {
    REQUIRE(!per_thread.empty());
    // Each submitter ends with Unavailable; everything before it was appended.
    CHECK(per_thread.back().status.code() == Status::Code::kUnavailable);
    for (size_t i = 0; i + 1 < per_thread.size(); i++) {
      const Done& d = per_thread[i];
      REQUIRE(d.status.ok());
      auto e = (*reader)->GetEntry(d.index);
      REQUIRE(e.ok());
      REQUIRE(*e == d.entry);
      acknowledged++;
    }
    // The refused entry is not in the log.
    CHECK((*reader)->FindLeaf(HashLeaf(per_thread.back().entry)).status().IsNotFound());
  }
  CHECK(acknowledged == store->size());
  CHECK(OpenOrDie(seq->latest_checkpoint(), *signer).size == store->size());
}

TEST_CASE("an EntryHook can refuse single entries", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  RefuseBad hook;
  auto seq = StartSequencer(store.get(), signer.get(), &hook);

  std::vector<Bytes> req{"good-1", "this is bad", "good-2", "badger", "good-3"};
  SequencerResult r = AppendOrDie(*seq, req);
  REQUIRE(r.entries.size() == 5);
  CHECK(r.entries[1].status.code() == Status::Code::kPermissionDenied);
  CHECK(r.entries[3].status.code() == Status::Code::kPermissionDenied);
  CHECK(r.tree_size == 3);
  VerifyReceipt(*store, *signer, "good-1", r.entries[0], r.checkpoint, r.tree_size);
  VerifyReceipt(*store, *signer, "good-2", r.entries[2], r.checkpoint, r.tree_size);
  VerifyReceipt(*store, *signer, "good-3", r.entries[4], r.checkpoint, r.tree_size);
  CHECK(r.entries[0].index == 0);
  CHECK(r.entries[2].index == 1);
  CHECK(r.entries[4].index == 2);
  CHECK(store->size() == 3);
  auto reader = store->Read();
  REQUIRE(reader.ok());
  CHECK((*reader)->FindLeaf(HashLeaf("this is bad")).status().IsNotFound());
  CHECK((*reader)->FindLeaf(HashLeaf("badger")).status().IsNotFound());
  CHECK(hook.applied == std::map<uint64_t, Bytes>{{0, "good-1"}, {1, "good-2"}, {2, "good-3"}});
  CHECK(seq->stats().refused.load() == 2);
  CHECK(seq->stats().appended.load() == 3);

  // A request refused entirely appends nothing and returns the current
  // (valid) checkpoint.
  SequencerResult all_bad = AppendOrDie(*seq, {"bad"});
  CHECK(!all_bad.entries[0].status.ok());
  CHECK(all_bad.tree_size == 3);
  CHECK(OpenOrDie(all_bad.checkpoint, *signer).size == 3);
  CHECK(store->size() == 3);
  // Exact duplicates are answered without consulting the hook and are not
  // applied again.
  const size_t checks_before = hook.checked.size();
  SequencerResult dup = AppendOrDie(*seq, {"good-2", "good-4"});
  CHECK(dup.entries[0].status.ok());
  CHECK(dup.entries[0].duplicate);
  CHECK(dup.entries[0].index == 1);
  CHECK(dup.entries[1].index == 3);
  CHECK(!dup.entries[1].duplicate);
  REQUIRE(hook.checked.size() == checks_before + 1);
  CHECK(hook.checked.back() == "good-4");
  CHECK(hook.applied.size() == 4);
  // Without contexts the hook sees null.
  for (const void* c : hook.contexts) CHECK(c == nullptr);
}

TEST_CASE("contexts reach the hook with their entries", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  RefuseBad hook;
  auto seq = StartSequencer(store.get(), signer.get(), &hook);
  auto c0 = std::make_shared<const int>(10);
  auto c1 = std::make_shared<const int>(11);
  auto c2 = std::make_shared<const int>(12);
  auto r = seq->Append({"ctx-0", "bad-1", "ctx-2"}, {c0, c1, c2});
  REQUIRE(r.ok());
  CHECK(r->entries[0].status.ok());
  CHECK(!r->entries[1].status.ok());
  CHECK(r->entries[2].status.ok());
  CHECK(hook.contexts == std::vector<const void*>{c0.get(), c1.get(), c2.get()});
  CHECK(hook.applied_contexts == std::map<uint64_t, const void*>{{0, c0.get()}, {1, c2.get()}});
  // One context per entry, or none.
  auto mismatch = seq->Append({"ctx-3", "ctx-4"}, {c0});
  CHECK(mismatch.status().IsInvalidArgument());
  CHECK(store->size() == 2);
}

TEST_CASE("an EntryHook keeps derived state in the same transaction", "[sequencer]") {
  TempDir tmp;
  auto signer = NewSigner();
  auto store = OpenStore(tmp.store_dir());
  NameRegistry hook;
  auto seq = StartSequencer(store.get(), signer.get(), &hook);

  SequencerResult r = AppendOrDie(*seq, {"alice=1", "bob=2"});
  REQUIRE(r.entries[0].status.ok());
  REQUIRE(r.entries[1].status.ok());
  CHECK(GetState(*store, "name/alice") == std::optional<Bytes>("0"));
  CHECK(GetState(*store, "name/bob") == std::optional<Bytes>("1"));
  CHECK(GetState(*store, "count") == std::optional<Bytes>("2"));

  // The hook may answer an equivalent entry as a repeat of the original:
  // the original's index and leaf hash, nothing appended.
  const std::string cp2 = seq->latest_checkpoint();
  SequencerResult again = AppendOrDie(*seq, {"alice=1#retry"});
  REQUIRE(again.entries[0].status.ok());
  CHECK(again.entries[0].duplicate);
  CHECK(again.entries[0].index == 0);
  CHECK(again.entries[0].leaf_hash == HashLeaf("alice=1"));
  CHECK(again.tree_size == 2);
  CHECK(store->size() == 2);
  CHECK(seq->latest_checkpoint() == cp2);
  VerifyReceipt(*store, *signer, "alice=1", again.entries[0], again.checkpoint, again.tree_size);
  CHECK(GetState(*store, "count") == std::optional<Bytes>("2"));

  // Check sees state written earlier in the same batch.
  SequencerResult r2 = AppendOrDie(*seq, {"carol=1", "carol=2", "alice=9", "dave=4"});
  CHECK(r2.entries[0].status.ok());
  CHECK(r2.entries[1].status.code() == Status::Code::kAlreadyExists);
  CHECK(r2.entries[2].status.code() == Status::Code::kAlreadyExists);
  CHECK(r2.entries[3].status.ok());
  CHECK(r2.entries[3].index == 3);
  CHECK(GetState(*store, "name/carol") == std::optional<Bytes>("2"));
  CHECK(GetState(*store, "name/dave") == std::optional<Bytes>("3"));
  CHECK(GetState(*store, "count") == std::optional<Bytes>("4"));

  // A failing Applied fails the whole batch: no entries, no state.
  const Hash root = store->root();
  const std::string cp = seq->latest_checkpoint();
  auto bad = seq->Append({"erin=5", "explode"});
  REQUIRE(!bad.ok());
  CHECK(bad.status().code() == Status::Code::kInternal);
  CHECK(store->size() == 4);
  CHECK(store->root() == root);
  CHECK(seq->latest_checkpoint() == cp);
  CHECK(GetState(*store, "name/erin") == std::nullopt);
  CHECK(GetState(*store, "count") == std::optional<Bytes>("4"));
  CHECK(seq->stats().failed_batches.load() == 1);

  // The sequencer carries on. A repeat of an entry earlier in the same batch
  // gets that entry's index.
  SequencerResult r3 = AppendOrDie(*seq, {"erin=5", "erin=5#again", "erin=6"});
  CHECK(r3.entries[0].index == 4);
  CHECK(!r3.entries[0].duplicate);
  CHECK(r3.entries[1].status.ok());
  CHECK(r3.entries[1].duplicate);
  CHECK(r3.entries[1].index == 4);
  CHECK(r3.entries[2].status.code() == Status::Code::kAlreadyExists);
  CHECK(r3.tree_size == 5);
  VerifyReceipt(*store, *signer, "erin=5", r3.entries[0], r3.checkpoint, r3.tree_size);
  VerifyReceipt(*store, *signer, "erin=5", r3.entries[1], r3.checkpoint, r3.tree_size);
  CHECK(GetState(*store, "count") == std::optional<Bytes>("5"));

  // State survives a restart.
  seq->Stop();
  seq.reset();
  store.reset();
  store = OpenStore(tmp.store_dir());
  CHECK(GetState(*store, "name/erin") == std::optional<Bytes>("4"));
  CHECK(GetState(*store, "count") == std::optional<Bytes>("5"));
}
