// Tests for ledger::Store: the LMDB-backed log state. Every test uses its own
// temporary directory. Roots are checked against an independent recursive
// RFC 6962 Merkle tree hash over the entries, and proofs for every older tree
// size are served from the stored hashes and verified.
#include "ledger/store.h"

#include <lmdb.h>
#include <stdlib.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "test_util.h"

using namespace ledger;

namespace {

using ledger_test::TempDir;

StoreOptions Options(const std::string& dir, uint64_t map_size = 0) {
  StoreOptions o;
  o.dir = dir;
  o.durable = false;  // speed; durability is LMDB's, not under test here
  if (map_size) o.map_size = map_size;
  return o;
}

std::unique_ptr<Store> OpenStore(const StoreOptions& o) {
  auto s = Store::Open(o);
  INFO("Store::Open: " << s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

std::unique_ptr<Store> OpenStore(const std::string& dir, uint64_t map_size = 0) { return OpenStore(Options(dir, map_size)); }

std::unique_ptr<LogReader> ReadOrDie(const Store& store) {
  auto r = store.Read();
  INFO("Store::Read: " << r.status().ToString());
  REQUIRE(r.ok());
  return std::move(*r);
}

std::unique_ptr<WriteBatch> BeginOrDie(Store& store) {
  auto b = store.BeginWrite();
  INFO("BeginWrite: " << b.status().ToString());
  REQUIRE(b.ok());
  return std::move(*b);
}

// CommitOrDie stores a stand-in checkpoint (the store requires one for a
// non-empty log but leaves its signature to the caller) and commits.
void CommitOrDie(WriteBatch& b) {
  REQUIRE(b.SetCheckpoint("test checkpoint " + std::to_string(b.size()) + "\n").ok());
  Status s = b.Commit();
  INFO("Commit: " << s.ToString());
  REQUIRE(s.ok());
}

AppendedLeaf AppendOrDie(WriteBatch& b, ByteView entry) {
  auto r = b.Append(entry);
  INFO("Append: " << r.status().ToString());
  REQUIRE(r.ok());
  return *r;
}

// RefRoot is RFC 6962 MTH over leaves [lo, hi), written independently of
// the library's tree code (only the two hash primitives are shared).
Hash RefRoot(const std::vector<Hash>& leaves, size_t lo, size_t hi) {
  size_t n = hi - lo;
  if (n == 0) return EmptyTreeRoot();
  if (n == 1) return leaves[lo];
  size_t k = 1;
  while (k * 2 < n) k *= 2;  // largest power of two < n
  return HashChildren(RefRoot(leaves, lo, lo + k), RefRoot(leaves, lo + k, hi));
}

// MakeEntry returns a unique entry of a pseudo-random length.
Bytes MakeEntry(uint64_t i, std::mt19937_64& rng) {
  Bytes e = "entry-" + std::to_string(i) + ":";
  size_t pad = rng() % 120;
  for (size_t j = 0; j < pad; j++) e.push_back(static_cast<char>(rng() & 0xff));
  return e;
}

Bytes RandomBytes(size_t n, std::mt19937_64& rng) {
  Bytes b(n, '\0');
  for (auto& c : b) c = static_cast<char>(rng() & 0xff);
  return b;
}

std::string Hex(const Hash& h) { return HexEncode(HashView(h)); }

// RawEnv opens the store's LMDB environment directly, bypassing Store, to
// damage it. The Store must be closed while a RawEnv is open.
class RawEnv {
 public:
  explicit RawEnv(const std::string& dir) {
    REQUIRE(mdb_env_create(&env_) == 0);
    REQUIRE(mdb_env_set_maxdbs(env_, 8) == 0);
    REQUIRE(mdb_env_set_mapsize(env_, uint64_t{1} << 30) == 0);
    int rc = mdb_env_open(env_, dir.c_str(), 0, 0600);
    INFO("mdb_env_open: " << mdb_strerror(rc));
    REQUIRE(rc == 0);
  }
  ~RawEnv() { mdb_env_close(env_); }
  RawEnv(const RawEnv&) = delete;
  RawEnv& operator=(const RawEnv&) = delete;

  // Mutate runs fn inside a write transaction on database |db| and commits.
  void Mutate(const char* db, const std::function<void(MDB_txn*, MDB_dbi)>& fn) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_, nullptr, 0, &txn) == 0);
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn, db, 0, &dbi);
    if (rc != 0) mdb_txn_abort(txn);
    REQUIRE(rc == 0);
    fn(txn, dbi);
    REQUIRE(mdb_txn_commit(txn) == 0);
  }

  // Run runs fn inside one write transaction (any databases) and commits.
  void Run(const std::function<void(MDB_txn*)>& fn) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_, nullptr, 0, &txn) == 0);
    fn(txn);
    REQUIRE(mdb_txn_commit(txn) == 0);
  }

  // Get returns the value of |key| in |db| ("" and false if absent).
  bool Get(const char* db, const std::string& key, std::string* out) {
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) == 0);
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    bool found = rc == 0;
    if (found) out->assign(static_cast<const char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    return found;
  }

 private:
  MDB_env* env_ = nullptr;
};

void RawPut(MDB_txn* txn, MDB_dbi dbi, const std::string& key, const std::string& value) {
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  int rc = mdb_put(txn, dbi, &k, &v, 0);
  INFO("mdb_put: " << mdb_strerror(rc));
  REQUIRE(rc == 0);
}

void RawDel(MDB_txn* txn, MDB_dbi dbi, const std::string& key) {
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  int rc = mdb_del(txn, dbi, &k, nullptr);
  INFO("mdb_del: " << mdb_strerror(rc));
  REQUIRE(rc == 0);
}

std::string U64Key(uint64_t i) {
  std::string k;
  AppendU64(&k, i);
  return k;
}

// ChunkKey is the format-2 key of a hash chunk: u8 group || u64be chunk.
std::string ChunkKey(int group, uint64_t chunk) {
  std::string k(1, static_cast<char>(group));
  AppendU64(&k, chunk);
  return k;
}

// TreeKey is the format-3 key of a hash chunk (SPEC.md §7): the index of
// the leaf whose append creates its first hash, chunk*16^(g+1) + 16^g - 1.
std::string TreeKey(int group, uint64_t chunk) {
  uint64_t span = uint64_t{1} << (4 * group);  // leaves under one hash of the group
  return U64Key(chunk * 16 * span + span - 1);
}

MDB_dbi OpenDb(MDB_txn* t, const char* name, unsigned flags = 0) {
  MDB_dbi d;
  int rc = mdb_dbi_open(t, name, flags, &d);
  INFO("mdb_dbi_open " << name << ": " << mdb_strerror(rc));
  REQUIRE(rc == 0);
  return d;
}

// DowngradeToFormat2 rewrites a closed format-3 store in the format-2 layout
// (SPEC.md §7, "Earlier formats"), as a format-2 build left it: `hashes`
// keyed by group || chunk holding only the filled hashes, every entry in
// `entries`, no `tree` or `bundles`, meta format "2".
void DowngradeToFormat2(const std::string& dir) {
  RawEnv env(dir);
  std::string size_value;
  REQUIRE(env.Get("meta", "size", &size_value));
  const uint64_t size = LoadU64(size_value.data());
  env.Run([&](MDB_txn* t) {
    MDB_dbi tree = OpenDb(t, "tree"), bundles = OpenDb(t, "bundles"), entries = OpenDb(t, "entries"),
            meta = OpenDb(t, "meta"), hashes = OpenDb(t, "hashes", MDB_CREATE);
    MDB_cursor* c;
    MDB_val k, v;
    REQUIRE(mdb_cursor_open(t, tree, &c) == 0);
    uint64_t chunks = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      REQUIRE(k.mv_size == 8);
      REQUIRE(v.mv_size == 512);
      uint64_t created = LoadU64(k.mv_data) + 1;
      int g = 0;
      while (created % 16 == 0) created /= 16, g++;
      REQUIRE(created % 16 == 1);
      uint64_t chunk = created / 16;
      uint64_t fill = std::min<uint64_t>(16, (size >> (4 * g)) - chunk * 16);
      RawPut(t, hashes, ChunkKey(g, chunk), std::string(static_cast<const char*>(v.mv_data), fill * 32));
      chunks++;
    }
    mdb_cursor_close(c);
    REQUIRE(chunks > 0);
    REQUIRE(mdb_cursor_open(t, bundles, &c) == 0);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      std::string bundle(static_cast<const char*>(v.mv_data), v.mv_size);
      uint64_t index = LoadU64(k.mv_data) * 256;
      for (size_t pos = 0; pos < bundle.size(); index++) {
        size_t len = (static_cast<uint8_t>(bundle[pos]) << 8) | static_cast<uint8_t>(bundle[pos + 1]);
        RawPut(t, entries, U64Key(index), bundle.substr(pos + 2, len));
        pos += 2 + len;
      }
    }
    mdb_cursor_close(c);
    REQUIRE(mdb_drop(t, tree, 1) == 0);
    REQUIRE(mdb_drop(t, bundles, 1) == 0);
    RawPut(t, meta, "format", "2");
  });
}

}  // namespace

TEST_CASE("EmptyTreeRoot is SHA-256 of the empty string", "[store]") {
  REQUIRE(Hex(EmptyTreeRoot()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("a new store is empty", "[store]") {
  TempDir tmp;
  for (int pass = 0; pass < 2; pass++) {  // new, then reopened
    auto store = OpenStore(tmp.store_dir());
    CHECK(store->size() == 0);
    CHECK(store->root() == EmptyTreeRoot());
    CHECK(store->origin().empty());
    CHECK(store->DiskBytes() > 0);
    auto r = ReadOrDie(*store);
    CHECK(r->size() == 0);
    CHECK(r->root() == EmptyTreeRoot());
    CHECK(r->checkpoint().empty());
    CHECK(r->GetEntry(0).status().IsNotFound());
    auto none = r->GetEntries(0, 0);
    REQUIRE(none.ok());
    CHECK(none->empty());
    CHECK(r->GetEntries(0, 1).status().IsNotFound());
    CHECK(r->FindLeaf(HashLeaf("x")).status().IsNotFound());
    auto root = TreeRoot(0, *r);
    REQUIRE(root.ok());
    CHECK(*root == EmptyTreeRoot());
    auto st = r->GetState("k");
    REQUIRE(st.ok());
    CHECK(!st->has_value());
  }
}

TEST_CASE("Open rejects an empty directory option", "[store]") {
  StoreOptions o;
  auto s = Store::Open(o);
  REQUIRE(!s.ok());
  CHECK(s.status().IsInvalidArgument());
}

TEST_CASE("appends in batches and across reopen; proofs for every older size", "[store]") {
  TempDir tmp;
  std::mt19937_64 rng(0x5eed);
  std::vector<Bytes> entries;
  std::vector<Hash> leaves;
  std::vector<uint64_t> boundaries{0};  // committed sizes
  const uint64_t kTarget = 620;

  // Batch sizes: random, plus single-entry batches around the 16-hash chunk
  // and 256 boundaries so commits land exactly on them.
  // A random batch never jumps over the region around an edge.
  auto next_batch_size = [&](uint64_t size) -> uint64_t {
    uint64_t n = 1 + rng() % 40;
    for (uint64_t edge : {15u, 16u, 17u, 32u, 255u, 256u, 257u, 512u}) {
      if (size + 2 >= edge && size <= edge + 1) return 1;
      if (size + 2 < edge) n = std::min<uint64_t>(n, edge - 2 - size);
    }
    return n;
  };

  auto store = OpenStore(tmp.store_dir());
  int batches_since_reopen = 0;
  while (entries.size() < kTarget) {
    uint64_t n = std::min<uint64_t>(next_batch_size(entries.size()), kTarget - entries.size());
    auto batch = BeginOrDie(*store);
    REQUIRE(batch->size() == entries.size());
    for (uint64_t j = 0; j < n; j++) {
      Bytes e = MakeEntry(entries.size(), rng);
      AppendedLeaf leaf = AppendOrDie(*batch, e);
      REQUIRE(leaf.index == entries.size());
      REQUIRE(!leaf.duplicate);
      REQUIRE(leaf.leaf_hash == HashLeaf(e));
      entries.push_back(e);
      leaves.push_back(leaf.leaf_hash);
      // The batch sees its own uncommitted entries.
      auto got = batch->GetEntry(leaf.index);
      REQUIRE(got.ok());
      REQUIRE(*got == e);
      auto found = batch->FindLeaf(leaf.leaf_hash);
      REQUIRE(found.ok());
      REQUIRE(*found == leaf.index);
    }
    REQUIRE(batch->size() == entries.size());
    REQUIRE(batch->root() == RefRoot(leaves, 0, leaves.size()));
    // Readers do not see the batch before it commits.
    REQUIRE(store->size() == boundaries.back());
    REQUIRE(ReadOrDie(*store)->size() == boundaries.back());
    CommitOrDie(*batch);
    batch.reset();
    boundaries.push_back(entries.size());
    REQUIRE(store->size() == entries.size());
    REQUIRE(store->root() == RefRoot(leaves, 0, leaves.size()));
    auto r = ReadOrDie(*store);
    REQUIRE(r->size() == entries.size());
    REQUIRE(r->root() == store->root());

    if (++batches_since_reopen >= 7) {  // close and reopen at assorted sizes
      batches_since_reopen = 0;
      r.reset();
      store.reset();
      store = OpenStore(tmp.store_dir());
      REQUIRE(store->size() == entries.size());
      REQUIRE(store->root() == RefRoot(leaves, 0, leaves.size()));
    }
  }
  for (uint64_t edge : {15u, 16u, 17u, 32u, 255u, 256u, 257u, 512u})
    REQUIRE(std::find(boundaries.begin(), boundaries.end(), edge) != boundaries.end());
  // One more reopen at the end.
  store.reset();
  store = OpenStore(tmp.store_dir());
  const uint64_t N = entries.size();
  REQUIRE(store->size() == N);

  std::vector<Hash> roots(N + 1);
  for (uint64_t m = 0; m <= N; m++) roots[m] = RefRoot(leaves, 0, m);
  REQUIRE(store->root() == roots[N]);

  auto r = ReadOrDie(*store);
  REQUIRE(r->size() == N);
  REQUIRE(r->root() == roots[N]);

  SECTION("entries, FindLeaf and GetEntries") {
    for (uint64_t i = 0; i < N; i++) {
      auto e = r->GetEntry(i);
      REQUIRE(e.ok());
      REQUIRE(*e == entries[i]);
      auto f = r->FindLeaf(leaves[i]);
      REQUIRE(f.ok());
      REQUIRE(*f == i);
    }
    CHECK(r->GetEntry(N).status().IsNotFound());
    CHECK(r->GetEntry(UINT64_MAX).status().IsNotFound());
    CHECK(r->FindLeaf(HashLeaf("not in the log")).status().IsNotFound());
    // A hash sharing nothing with any leaf but a leaf's 8-byte prefix is
    // confirmed against the stored leaf hash and not found.
    Hash fake = leaves[17];
    fake[31] ^= 1;
    CHECK(r->FindLeaf(fake).status().IsNotFound());

    auto all = r->GetEntries(0, N);
    REQUIRE(all.ok());
    REQUIRE(all->size() == N);
    for (uint64_t i = 0; i < N; i++) REQUIRE((*all)[i] == entries[i]);
    for (int t = 0; t < 200; t++) {
      uint64_t start = rng() % (N + 1);
      uint64_t count = rng() % (N - start + 1);
      auto got = r->GetEntries(start, count);
      REQUIRE(got.ok());
      REQUIRE(got->size() == count);
      for (uint64_t i = 0; i < count; i++) REQUIRE((*got)[i] == entries[start + i]);
    }
    auto tail = r->GetEntries(N, 0);
    REQUIRE(tail.ok());
    CHECK(tail->empty());
    CHECK(r->GetEntries(N - 5, 6).status().IsNotFound());
    CHECK(r->GetEntries(N, 1).status().IsNotFound());
    CHECK(r->GetEntries(N + 1, 0).status().IsNotFound());
    CHECK(r->GetEntries(1, UINT64_MAX).status().IsNotFound());
    CHECK(r->GetEntries(UINT64_MAX, 2).status().IsNotFound());
  }

  SECTION("every older size: root, consistency and inclusion proofs") {
    for (uint64_t m = 1; m <= N; m++) {
      INFO("size " << m);
      auto root = TreeRoot(m, *r);
      REQUIRE(root.ok());
      REQUIRE(*root == roots[m]);

      auto cp = ConsistencyProof(m, N, *r);
      REQUIRE(cp.ok());
      REQUIRE(VerifyConsistency(m, N, *cp, roots[m], roots[N]).ok());
      if (m < N) {
        Hash wrong = roots[N];
        wrong[0] ^= 0x80;
        REQUIRE(!VerifyConsistency(m, N, *cp, roots[m], wrong).ok());
      }
      uint64_t to = m + rng() % (N - m + 1);
      auto cp2 = ConsistencyProof(m, to, *r);
      REQUIRE(cp2.ok());
      REQUIRE(VerifyConsistency(m, to, *cp2, roots[m], roots[to]).ok());

      std::set<uint64_t> idx{0, m - 1, m / 2, rng() % m};
      for (uint64_t i : idx) {
        INFO("index " << i);
        auto proof = InclusionProof(i, m, *r);
        REQUIRE(proof.ok());
        REQUIRE(VerifyInclusion(leaves[i], i, m, *proof, roots[m]).ok());
        if (m > 1) REQUIRE(!VerifyInclusion(leaves[(i + 1) % m], i, m, *proof, roots[m]).ok());
      }
      CHECK(InclusionProof(m, m, *r).status().code() == Status::Code::kOutOfRange);
    }
  }

  SECTION("every leaf at every committed batch size") {
    for (uint64_t m : boundaries) {
      for (uint64_t i = 0; i < m; i++) {
        auto proof = InclusionProof(i, m, *r);
        REQUIRE(proof.ok());
        INFO("index " << i << " size " << m);
        REQUIRE(VerifyInclusion(leaves[i], i, m, *proof, roots[m]).ok());
      }
    }
  }
}

TEST_CASE("duplicates get the existing index", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  {
    auto b = BeginOrDie(*store);
    AppendedLeaf a = AppendOrDie(*b, "alpha");
    AppendedLeaf bb = AppendOrDie(*b, "beta");
    AppendedLeaf a2 = AppendOrDie(*b, "alpha");  // duplicate within the batch
    CHECK(a.index == 0);
    CHECK(!a.duplicate);
    CHECK(bb.index == 1);
    CHECK(!bb.duplicate);
    CHECK(a2.index == 0);
    CHECK(a2.duplicate);
    CHECK(a2.leaf_hash == HashLeaf("alpha"));
    CHECK(b->size() == 2);
    CommitOrDie(*b);
  }
  CHECK(store->size() == 2);
  {
    auto b = BeginOrDie(*store);
    AppendedLeaf b2 = AppendOrDie(*b, "beta");  // duplicate across batches
    CHECK(b2.index == 1);
    CHECK(b2.duplicate);
    AppendedLeaf c = AppendOrDie(*b, "gamma");
    CHECK(c.index == 2);
    CHECK(!c.duplicate);
    AppendedLeaf c2 = AppendOrDie(*b, "gamma");
    CHECK(c2.index == 2);
    CHECK(c2.duplicate);
    CHECK(b->size() == 3);
    CommitOrDie(*b);
  }
  // A batch of only duplicates changes nothing.
  Hash root = store->root();
  {
    auto b = BeginOrDie(*store);
    CHECK(AppendOrDie(*b, "alpha").duplicate);
    CHECK(AppendOrDie(*b, "gamma").duplicate);
    CommitOrDie(*b);
  }
  CHECK(store->size() == 3);
  CHECK(store->root() == root);
  // Across a reopen too.
  store.reset();
  store = OpenStore(tmp.store_dir());
  {
    auto b = BeginOrDie(*store);
    AppendedLeaf a3 = AppendOrDie(*b, "alpha");
    CHECK(a3.index == 0);
    CHECK(a3.duplicate);
    // Entries that differ in one byte are different leaves.
    AppendedLeaf d = AppendOrDie(*b, "alphb");
    CHECK(d.index == 3);
    CHECK(!d.duplicate);
    CommitOrDie(*b);
  }
  auto r = ReadOrDie(*store);
  CHECK(r->size() == 4);
  std::vector<Hash> leaves{HashLeaf("alpha"), HashLeaf("beta"), HashLeaf("gamma"), HashLeaf("alphb")};
  CHECK(r->root() == RefRoot(leaves, 0, 4));
}

TEST_CASE("entry size limits", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  std::mt19937_64 rng(7);
  Bytes max_entry = RandomBytes(65535, rng);
  {
    auto b = BeginOrDie(*store);
    auto empty = b->Append("");
    REQUIRE(!empty.ok());
    CHECK(empty.status().IsInvalidArgument());
    auto big = b->Append(Bytes(65536, 'x'));
    REQUIRE(!big.ok());
    CHECK(big.status().IsInvalidArgument());
    auto huge = b->Append(Bytes(1 << 20, 'y'));
    REQUIRE(!huge.ok());
    CHECK(huge.status().IsInvalidArgument());
    CHECK(b->size() == 0);
    // The refusals do not spoil the batch.
    AppendedLeaf m = AppendOrDie(*b, max_entry);
    CHECK(m.index == 0);
    AppendedLeaf one = AppendOrDie(*b, Bytes(1, '\0'));  // a single NUL byte is a valid entry
    CHECK(one.index == 1);
    CommitOrDie(*b);
  }
  store.reset();
  store = OpenStore(tmp.store_dir());
  auto r = ReadOrDie(*store);
  REQUIRE(r->size() == 2);
  auto e = r->GetEntry(0);
  REQUIRE(e.ok());
  CHECK(*e == max_entry);
  auto e1 = r->GetEntry(1);
  REQUIRE(e1.ok());
  CHECK(*e1 == Bytes(1, '\0'));
  std::vector<Hash> leaves{HashLeaf(max_entry), HashLeaf(Bytes(1, '\0'))};
  CHECK(r->root() == RefRoot(leaves, 0, 2));
}

TEST_CASE("an uncommitted write batch leaves nothing", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  {
    auto b = BeginOrDie(*store);
    AppendOrDie(*b, "kept-0");
    AppendOrDie(*b, "kept-1");
    REQUIRE(b->PutState("s", "committed").ok());
    CommitOrDie(*b);
  }
  const Hash root2 = store->root();
  {
    auto b = BeginOrDie(*store);
    CHECK(AppendOrDie(*b, "dropped-0").index == 2);
    CHECK(AppendOrDie(*b, "dropped-1").index == 3);
    REQUIRE(b->PutState("s", "dropped").ok());
    REQUIRE(b->PutState("t", "dropped").ok());
    CHECK(b->size() == 4);
    // destroyed without Commit
  }
  auto check = [&](const Store& s) {
    CHECK(s.size() == 2);
    CHECK(s.root() == root2);
    auto r = ReadOrDie(s);
    CHECK(r->size() == 2);
    CHECK(r->root() == root2);
    CHECK(r->GetEntry(2).status().IsNotFound());
    CHECK(r->FindLeaf(HashLeaf("dropped-0")).status().IsNotFound());
    auto st = r->GetState("s");
    REQUIRE(st.ok());
    REQUIRE(st->has_value());
    CHECK(**st == "committed");
    auto t = r->GetState("t");
    REQUIRE(t.ok());
    CHECK(!t->has_value());
  };
  check(*store);
  store.reset();
  store = OpenStore(tmp.store_dir());
  check(*store);
  // The dropped entries' indexes are reused, and they are new leaves.
  auto b = BeginOrDie(*store);
  AppendedLeaf d = AppendOrDie(*b, "dropped-1");
  CHECK(d.index == 2);
  CHECK(!d.duplicate);
  CommitOrDie(*b);
  std::vector<Hash> leaves{HashLeaf("kept-0"), HashLeaf("kept-1"), HashLeaf("dropped-1")};
  CHECK(store->root() == RefRoot(leaves, 0, 3));
}

TEST_CASE("only one write batch at a time", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  auto b1 = BeginOrDie(*store);
  auto b2 = store->BeginWrite();
  REQUIRE(!b2.ok());
  CHECK(b2.status().code() == Status::Code::kFailedPrecondition);
  // Still refused from another thread.
  Status other;
  std::thread([&] { other = store->BeginWrite().status(); }).join();
  CHECK(other.code() == Status::Code::kFailedPrecondition);
  AppendOrDie(*b1, "x");
  CommitOrDie(*b1);
  // A committed batch is finished but still alive: it still holds the writer.
  CHECK(store->BeginWrite().status().code() == Status::Code::kFailedPrecondition);
  CHECK(b1->Append("y").status().code() == Status::Code::kFailedPrecondition);
  CHECK(b1->PutState("k", "v").code() == Status::Code::kFailedPrecondition);
  CHECK(b1->Commit().code() == Status::Code::kFailedPrecondition);
  b1.reset();
  auto b3 = BeginOrDie(*store);
  CHECK(b3->size() == 1);
  b3.reset();
  // An aborted batch releases the writer as well.
  auto b4 = BeginOrDie(*store);
  CHECK(b4->size() == 1);
}

TEST_CASE("derived state commits with the batch", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  auto get = [](const LogReader& r, ByteView k) -> std::optional<Bytes> {
    auto v = r.GetState(k);
    INFO("GetState: " << v.status().ToString());
    REQUIRE(v.ok());
    return *v;
  };
  {
    auto b = BeginOrDie(*store);
    REQUIRE(b->PutState("k1", "v1").ok());
    REQUIRE(b->PutState(Bytes("k\0two", 5), Bytes("v\0two", 5)).ok());
    REQUIRE(b->PutState("empty", "").ok());
    // The batch sees its own writes; a reader does not.
    auto v = b->GetState("k1");
    REQUIRE(v.ok());
    REQUIRE(v->has_value());
    CHECK(**v == "v1");
    CHECK(!get(*ReadOrDie(*store), "k1").has_value());
    AppendOrDie(*b, "e0");
    CommitOrDie(*b);
  }
  {
    auto r = ReadOrDie(*store);
    CHECK(get(*r, "k1") == std::optional<Bytes>("v1"));
    CHECK(get(*r, Bytes("k\0two", 5)) == std::optional<Bytes>(Bytes("v\0two", 5)));
    CHECK(get(*r, Bytes("k", 1)) == std::nullopt);
    CHECK(get(*r, "empty") == std::optional<Bytes>(""));
    CHECK(get(*r, "missing") == std::nullopt);
  }
  {
    // State-only batch (no entries) commits too.
    auto b = BeginOrDie(*store);
    REQUIRE(b->DeleteState("k1").ok());
    REQUIRE(b->PutState("k3", "v3").ok());
    REQUIRE(b->DeleteState("never-set").ok());
    auto gone = b->GetState("k1");
    REQUIRE(gone.ok());
    CHECK(!gone->has_value());
    // dropped
  }
  {
    auto r = ReadOrDie(*store);
    CHECK(get(*r, "k1") == std::optional<Bytes>("v1"));
    CHECK(get(*r, "k3") == std::nullopt);
  }
  {
    auto b = BeginOrDie(*store);
    REQUIRE(b->DeleteState("k1").ok());
    REQUIRE(b->PutState("k3", "v3").ok());
    REQUIRE(b->PutState("k3", "v3b").ok());  // overwrite
    CommitOrDie(*b);
  }
  store.reset();
  store = OpenStore(tmp.store_dir());
  {
    auto r = ReadOrDie(*store);
    CHECK(get(*r, "k1") == std::nullopt);
    CHECK(get(*r, "k3") == std::optional<Bytes>("v3b"));
    CHECK(r->size() == 1);
  }
  SECTION("key limits") {
    auto b = BeginOrDie(*store);
    CHECK(b->PutState("", "v").IsInvalidArgument());
    CHECK(b->PutState(Bytes(512, 'k'), "v").IsInvalidArgument());
    CHECK(b->GetState("").status().IsInvalidArgument());
    CHECK(b->DeleteState("").IsInvalidArgument());
    CHECK(b->DeleteState(Bytes(512, 'k')).IsInvalidArgument());
    CHECK(ReadOrDie(*store)->GetState("").status().IsInvalidArgument());
    // Refused keys do not spoil the batch.
    REQUIRE(b->PutState(Bytes(511, 'k'), "long key").ok());
    AppendOrDie(*b, "e1");
    CommitOrDie(*b);
    CHECK(get(*ReadOrDie(*store), Bytes(511, 'k')) == std::optional<Bytes>("long key"));
    CHECK(store->size() == 2);
  }
}

TEST_CASE("a snapshot keeps seeing its tree size", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  std::vector<Hash> leaves;
  auto append = [&](int from, int to) {
    auto b = BeginOrDie(*store);
    for (int i = from; i < to; i++) {
      Bytes e = "snap-" + std::to_string(i);
      AppendOrDie(*b, e);
      leaves.push_back(HashLeaf(e));
    }
    REQUIRE(b->PutState("count", std::to_string(to)).ok());
    CommitOrDie(*b);
  };
  append(0, 5);
  const Hash root5 = store->root();
  auto old = ReadOrDie(*store);
  REQUIRE(old->size() == 5);
  append(5, 40);
  REQUIRE(store->size() == 40);
  // Also a batch in flight while the old snapshot reads.
  auto pending = BeginOrDie(*store);
  AppendOrDie(*pending, "pending");

  CHECK(old->size() == 5);
  CHECK(old->root() == root5);
  CHECK(old->GetEntry(5).status().IsNotFound());
  auto e4 = old->GetEntry(4);
  REQUIRE(e4.ok());
  CHECK(*e4 == "snap-4");
  CHECK(old->GetEntries(0, 6).status().IsNotFound());
  CHECK(old->FindLeaf(leaves[7]).status().IsNotFound());
  auto f3 = old->FindLeaf(leaves[3]);
  REQUIRE(f3.ok());
  CHECK(*f3 == 3);
  auto st = old->GetState("count");
  REQUIRE(st.ok());
  CHECK(*st == std::optional<Bytes>("5"));
  auto root = TreeRoot(5, *old);
  REQUIRE(root.ok());
  CHECK(*root == root5);
  auto proof = InclusionProof(2, 5, *old);
  REQUIRE(proof.ok());
  CHECK(VerifyInclusion(leaves[2], 2, 5, *proof, root5).ok());

  auto now = ReadOrDie(*store);
  CHECK(now->size() == 40);
  CHECK(now->root() == RefRoot(leaves, 0, 40));
  auto cp = ConsistencyProof(5, 40, *now);
  REQUIRE(cp.ok());
  CHECK(VerifyConsistency(5, 40, *cp, root5, now->root()).ok());
}

TEST_CASE("a snapshot reads any sequence of nodes, forward, backward and across groups", "[store]") {
  // 70,000 leaves: chunks of groups 0-4 interleave in the hashes database,
  // which a snapshot walks with one cursor; every read must still return
  // exactly the reference tree's node, whatever the order of the requests.
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  std::mt19937_64 rng(0xc0c0);
  std::vector<Hash> leaves;
  const uint64_t kSize = 70000;
  while (leaves.size() < kSize) {
    auto b = BeginOrDie(*store);
    uint64_t n = std::min<uint64_t>(1 + rng() % 5000, kSize - leaves.size());
    for (uint64_t j = 0; j < n; j++) leaves.push_back(AppendOrDie(*b, MakeEntry(leaves.size(), rng)).leaf_hash);
    CommitOrDie(*b);
  }
  const ledger_test::MemoryReader ref(leaves);
  auto snap = ReadOrDie(*store);
  REQUIRE(snap->size() == kSize);

  auto check = [&](const std::vector<NodeId>& ids) {
    std::vector<Hash> got, want;
    REQUIRE(snap->ReadHashes(ids, &got).ok());
    REQUIRE(ref.ReadHashes(ids, &want).ok());
    REQUIRE(got == want);
  };
  // Whole tiles of levels 0, 8 and 16 (the level-0 and level-1 tiles' nodes).
  for (uint8_t level : {0, 8, 16}) {
    const uint64_t width = kSize >> level;
    for (uint64_t start = 0; start < width; start += 256) {
      std::vector<NodeId> ids;
      for (uint64_t i = start; i < std::min(width, start + 256); i++) ids.push_back(NodeId{level, i});
      check(ids);
    }
  }
  // Random nodes in random order, one call each and in long mixed calls.
  auto random_node = [&] {
    uint8_t level = static_cast<uint8_t>(rng() % 17);
    return NodeId{level, rng() % (kSize >> level)};
  };
  for (int i = 0; i < 2000; i++) check({random_node()});
  for (int i = 0; i < 50; i++) {
    std::vector<NodeId> ids;
    for (int j = 0; j < 100; j++) {
      NodeId id = random_node();
      ids.push_back(id);
      if (rng() % 3 == 0) ids.push_back(id);  // the same node again
      if (rng() % 3 == 0 && id.index + 1 < (kSize >> id.level)) ids.push_back(NodeId{id.level, id.index + 1});
    }
    check(ids);
  }
  // Proofs against the reference root.
  for (int i = 0; i < 300; i++) {
    uint64_t size = 1 + rng() % kSize, index = rng() % size, from = 1 + rng() % size;
    auto p = InclusionProof(index, size, *snap);
    REQUIRE(p.ok());
    auto root = TreeRoot(size, ref), old_root = TreeRoot(from, ref);
    REQUIRE((root.ok() && old_root.ok()));
    CHECK(VerifyInclusion(leaves[index], index, size, *p, *root).ok());
    auto c = ConsistencyProof(from, size, *snap);
    REQUIRE(c.ok());
    CHECK(VerifyConsistency(from, size, *c, *old_root, *root).ok());
  }
  // A node beyond the tree is still NotFound.
  std::vector<Hash> out;
  CHECK(snap->ReadHashes({NodeId{0, kSize}}, &out).IsNotFound());
}

TEST_CASE("origin and checkpoint are stored", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  {
    auto b = BeginOrDie(*store);
    REQUIRE(b->SetOrigin("example.com/log").ok());
    AppendOrDie(*b, "e");
    REQUIRE(b->SetCheckpoint("fake checkpoint\n").ok());
    REQUIRE(b->Commit().ok());
  }
  CHECK(store->origin() == "example.com/log");
  CHECK(ReadOrDie(*store)->checkpoint() == "fake checkpoint\n");
  store.reset();
  store = OpenStore(tmp.store_dir());
  CHECK(store->origin() == "example.com/log");
  CHECK(ReadOrDie(*store)->checkpoint() == "fake checkpoint\n");
  auto b = BeginOrDie(*store);
  CHECK(b->SetOrigin("example.com/other").code() == Status::Code::kFailedPrecondition);
  REQUIRE(b->SetOrigin("example.com/log").ok());
}

TEST_CASE("the start-up check catches a damaged store", "[store]") {
  TempDir tmp;
  const std::string dir = tmp.store_dir();
  const uint64_t N = 600;  // frontier: 512 + 64 + 16 + 8
  std::vector<Bytes> entries;
  std::vector<Hash> leaves;
  {
    auto store = OpenStore(dir);
    std::mt19937_64 rng(99);
    auto b = BeginOrDie(*store);
    for (uint64_t i = 0; i < N; i++) {
      entries.push_back(MakeEntry(i, rng));
      leaves.push_back(AppendOrDie(*b, entries.back()).leaf_hash);
    }
    REQUIRE(b->SetCheckpoint("checkpoint\n").ok());
    CommitOrDie(*b);
    REQUIRE(store->root() == RefRoot(leaves, 0, N));
  }
  // The undamaged store opens.
  REQUIRE(Store::Open(Options(dir)).ok());

  std::string expect_in_message = "start-up check";
  {
    RawEnv env(dir);
    SECTION("meta root overwritten") {
      env.Mutate("meta", [](MDB_txn* t, MDB_dbi d) { RawPut(t, d, "root", std::string(32, '\x42')); });
      expect_in_message = "root";
    }
    SECTION("meta root overwritten with the root of a smaller tree") {
      Hash older = RefRoot(leaves, 0, N - 1);
      env.Mutate("meta", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, "root", std::string(HashView(older))); });
      expect_in_message = "root";
    }
    SECTION("meta size changed") {
      env.Mutate("meta", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, "size", U64Key(N - 1)); });
    }
    SECTION("last entry deleted") {
      env.Mutate("entries", [&](MDB_txn* t, MDB_dbi d) { RawDel(t, d, U64Key(N - 1)); });
      expect_in_message = "entr";
    }
    SECTION("last entry replaced") {
      env.Mutate("entries", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, U64Key(N - 1), "forged"); });
      expect_in_message = "last entry";
    }
    SECTION("an entry beyond the tree size") {
      env.Mutate("entries", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, U64Key(N), "extra"); });
      expect_in_message = "size-1";
    }
    SECTION("a byte of the last leaf hash flipped") {
      // Leaf N-1 is in group 0, chunk (N-1)/16, slot (N-1)%16.
      std::string key = TreeKey(0, (N - 1) / 16), v;
      REQUIRE(env.Get("tree", key, &v));
      REQUIRE(v.size() == 512);  // stored at full width; slots beyond the size are zero
      CHECK(v.substr((N % 16) * 32) == std::string(512 - (N % 16) * 32, '\0'));
      v[((N - 1) % 16) * 32 + 5] ^= 0x01;
      env.Mutate("tree", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, key, v); });
    }
    SECTION("a byte of a stored level-8 hash flipped") {
      // The 512-leaf subtree root is read from level 8 (group 2, chunk 0).
      std::string key = TreeKey(2, 0), v;
      REQUIRE(env.Get("tree", key, &v));
      REQUIRE(v.size() == 512);  // 2 level-8 nodes at size 600
      v[40] ^= 0x10;
      env.Mutate("tree", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, key, v); });
      expect_in_message = "root";
    }
    SECTION("a byte of a completed level-4 chunk flipped") {
      // Node (4, 36) (leaves 576..591) sits in group 1, chunk 2, slot 4.
      std::string key = TreeKey(1, 2), v;
      REQUIRE(env.Get("tree", key, &v));
      REQUIRE(v.size() == 512);  // 600 >> 4 = 37 level-4 nodes: chunk 2 holds 32..36
      v[4 * 32 + 31] ^= 0xff;
      env.Mutate("tree", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, key, v); });
      expect_in_message = "root";
    }
    SECTION("a partial hash chunk truncated") {
      std::string key = TreeKey(0, (N - 1) / 16), v;
      REQUIRE(env.Get("tree", key, &v));
      v.resize(v.size() - 32);
      env.Mutate("tree", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, key, v); });
    }
    SECTION("a hash chunk with a bad length") {
      std::string key = TreeKey(2, 0), v;
      REQUIRE(env.Get("tree", key, &v));
      v.push_back('x');
      env.Mutate("tree", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, key, v); });
    }
    SECTION("a hash chunk deleted") {
      env.Mutate("tree", [&](MDB_txn* t, MDB_dbi d) { RawDel(t, d, TreeKey(2, 0)); });
    }
    SECTION("the last full entry bundle deleted") {
      // 600 entries: bundles 0 and 1 are full, 512..599 are single entries.
      env.Mutate("bundles", [&](MDB_txn* t, MDB_dbi d) { RawDel(t, d, U64Key(1)); });
      expect_in_message = "bundle";
    }
    SECTION("an entry bundle beyond the tree size") {
      env.Mutate("bundles", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, U64Key(2), std::string(2, '\0')); });
      expect_in_message = "bundle";
    }
    SECTION("a bundled entry also left as a single entry") {
      env.Mutate("entries", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, U64Key(3), "stale"); });
      expect_in_message = "size-1";
    }
    SECTION("checkpoint missing") {
      env.Mutate("meta", [&](MDB_txn* t, MDB_dbi d) { RawDel(t, d, "checkpoint"); });
      expect_in_message = "checkpoint";
    }
  }
  auto s = Store::Open(Options(dir));
  REQUIRE(!s.ok());
  INFO("status: " << s.status().ToString());
  CHECK(s.status().IsCorruption());
  CHECK_THAT(s.status().message(), Catch::Contains("start-up check"));
  CHECK_THAT(s.status().message(), Catch::Contains(expect_in_message));
}

TEST_CASE("a full map refuses the batch and keeps the store consistent", "[store]") {
  TempDir tmp;
  const std::string dir = tmp.store_dir();
  const uint64_t kSmall = uint64_t{1} << 20;  // 1 MiB
  std::mt19937_64 rng(1234);
  std::vector<Bytes> entries;
  std::vector<Hash> leaves;
  // Two shapes: small batches of ~1 KiB entries fill the map while Commit
  // writes the hashes; large batches of 3 KiB entries fill it inside Append.
  // Either way Commit reports ResourceExhausted and nothing is written.
  struct Shape {
    size_t entry_min, entry_spread;
    int per_batch;
  };
  const Shape shape = GENERATE(Shape{900, 400, 8}, Shape{3000, 1, 50});
  {
    auto store = OpenStore(dir, kSmall);
    Status append_failure, commit_status;
    for (int iter = 0; iter < 10000; iter++) {
      auto b = BeginOrDie(*store);
      std::vector<Bytes> batch;
      for (int j = 0; j < shape.per_batch; j++) {
        Bytes e = RandomBytes(shape.entry_min + rng() % shape.entry_spread, rng);
        auto leaf = b->Append(e);
        if (!leaf.ok()) {
          append_failure = leaf.status();
          break;
        }
        batch.push_back(e);
      }
      if (append_failure.ok()) {
        Status cs = b->SetCheckpoint("checkpoint " + std::to_string(b->size()) + "\n");
        if (!cs.ok()) append_failure = cs;
      }
      commit_status = b->Commit();
      if (!commit_status.ok()) break;
      REQUIRE(append_failure.ok());  // a failed batch never commits
      for (auto& e : batch) {
        entries.push_back(e);
        leaves.push_back(HashLeaf(e));
      }
    }
    INFO("append: " << append_failure.ToString() << "; commit: " << commit_status.ToString());
    if (shape.per_batch == 50) CHECK(!append_failure.ok());  // this shape fills the map in Append
    if (!append_failure.ok()) CHECK(append_failure.code() == Status::Code::kResourceExhausted);
    REQUIRE(commit_status.code() == Status::Code::kResourceExhausted);
    CHECK_THAT(commit_status.message(), Catch::Contains("map is full"));
    REQUIRE(entries.size() > 100);  // the map did hold something first
    // The in-memory state is unchanged by the failed batch.
    CHECK(store->size() == entries.size());
    CHECK(store->root() == RefRoot(leaves, 0, leaves.size()));
    auto r = ReadOrDie(*store);
    CHECK(r->size() == entries.size());
    // The writer was released.
    auto b = store->BeginWrite();
    CHECK(b.ok());
  }
  auto verify_all = [&](const Store& store) {
    REQUIRE(store.size() == entries.size());
    REQUIRE(store.root() == RefRoot(leaves, 0, leaves.size()));
    auto r = ReadOrDie(store);
    auto all = r->GetEntries(0, entries.size());
    REQUIRE(all.ok());
    for (size_t i = 0; i < entries.size(); i++) REQUIRE((*all)[i] == entries[i]);
    uint64_t n = entries.size();
    for (uint64_t m : {uint64_t{1}, n / 3, n - 1, n}) {
      auto root = TreeRoot(m, *r);
      REQUIRE(root.ok());
      REQUIRE(*root == RefRoot(leaves, 0, m));
    }
  };
  {
    // Reopens with the same small map, consistent with what was committed.
    auto store = OpenStore(dir, kSmall);
    verify_all(*store);
  }
  {
    // With a bigger map, more appends succeed.
    auto store = OpenStore(dir, uint64_t{16} << 20);
    verify_all(*store);
    for (int k = 0; k < 4; k++) {
      auto b = BeginOrDie(*store);
      for (int j = 0; j < 50; j++) {
        Bytes e = RandomBytes(900 + rng() % 400, rng);
        AppendedLeaf leaf = AppendOrDie(*b, e);
        REQUIRE(leaf.index == entries.size());
        entries.push_back(e);
        leaves.push_back(leaf.leaf_hash);
      }
      CommitOrDie(*b);
    }
    verify_all(*store);
  }
  auto store = OpenStore(dir, uint64_t{16} << 20);
  verify_all(*store);
}

TEST_CASE("ForEachState visits keys with a prefix in key order", "[store]") {
  TempDir tmp;
  auto store = OpenStore(tmp.store_dir());
  const std::vector<Bytes> keys{"a", "a/1", "a/2", "a\xff", "b", Bytes("a/\0z", 4)};
  {
    auto b = BeginOrDie(*store);
    for (const Bytes& k : keys) REQUIRE(b->PutState(k, "v:" + k).ok());
    CommitOrDie(*b);
  }
  {
    auto b = BeginOrDie(*store);  // uncommitted state is not visited
    REQUIRE(b->PutState("a/3", "pending").ok());
  }
  auto r = ReadOrDie(*store);
  auto visit = [&](ByteView prefix) {
    std::vector<Bytes> got;
    Status s = r->ForEachState(prefix, [&](ByteView k, ByteView v) {
      CHECK(v == "v:" + Bytes(k));
      got.emplace_back(k);
    });
    INFO("ForEachState: " << s.ToString());
    REQUIRE(s.ok());
    return got;
  };
  CHECK(visit("a/") == std::vector<Bytes>{Bytes("a/\0z", 4), "a/1", "a/2"});
  CHECK(visit("a") == std::vector<Bytes>{"a", Bytes("a/\0z", 4), "a/1", "a/2", "a\xff"});
  CHECK(visit("") == std::vector<Bytes>{"a", Bytes("a/\0z", 4), "a/1", "a/2", "a\xff", "b"});
  CHECK(visit("b") == std::vector<Bytes>{"b"});
  CHECK(visit("c").empty());
  CHECK(visit("a/1/x").empty());
}

TEST_CASE("a store of an unknown format is refused", "[store]") {
  TempDir tmp;
  { auto store = OpenStore(tmp.store_dir()); }
  {
    RawEnv env(tmp.store_dir());
    env.Mutate("meta", [](MDB_txn* t, MDB_dbi d) { RawPut(t, d, "format", "6"); });
  }
  auto s = Store::Open(Options(tmp.store_dir()));
  REQUIRE(!s.ok());
  CHECK(s.status().code() == Status::Code::kFailedPrecondition);
  CHECK_THAT(s.status().message(), Catch::Contains("format"));
}

TEST_CASE("the leaf index merges pending leaves and survives reopen at every stage", "[store]") {
  TempDir tmp;
  StoreOptions o = Options(tmp.store_dir());
  o.leaf_index_merge_threshold = 37;  // merge often, at odd sizes
  // 4096: each merge ends in the commit that starts it; 3: merges span
  // several commits, and reopening (as after a crash) interrupts some.
  o.leaf_index_merge_min_step = GENERATE(as<uint64_t>(), 4096, 3);
  INFO("leaf_index_merge_min_step " << o.leaf_index_merge_min_step);
  std::vector<std::string> entries;
  std::vector<std::unique_ptr<LogReader>> old_snapshots;
  uint64_t commits_mid_merge = 0;
  for (int round = 0; round < 12; round++) {
    auto store = OpenStore(o);
    for (int batch = 0; batch < 3; batch++) {
      auto w = BeginOrDie(*store);
      int n = 5 + (round * 7 + batch * 3) % 17;
      for (int i = 0; i < n; i++) {
        entries.push_back("leaf-index entry " + std::to_string(entries.size()));
        auto leaf = w->Append(entries.back());
        REQUIRE(leaf.ok());
        REQUIRE(leaf->index == entries.size() - 1);
        REQUIRE_FALSE(leaf->duplicate);
      }
      // Within the batch, across pending and merged leaves: exact dedup.
      auto again = w->Append(entries[entries.size() / 2]);
      REQUIRE(again.ok());
      CHECK(again->duplicate);
      CHECK(again->index == entries.size() / 2);
      REQUIRE(w->SetCheckpoint("checkpoint at " + std::to_string(entries.size())).ok());
      REQUIRE(w->Commit().ok());
      old_snapshots.push_back(ReadOrDie(*store));
      auto stats = store->Stats();
      REQUIRE(stats.ok());
      if (stats->merging_leaves > 0) commits_mid_merge++;
      // Every stored block belongs to a published run, the merge in
      // progress, or one interrupted by a reopen (deleted by the next).
      for (const auto& db : stats->dbs)
        if (db.name == "leafruns") CHECK(db.items <= 3 * (stats->leaf_index_runs + 2) + entries.size() / 100);
    }
    // Every leaf is found, whether merged into LMDB or pending in memory,
    // and old snapshots (taken before later merges) still find theirs.
    auto r = ReadOrDie(*store);
    for (size_t i = 0; i < entries.size(); i++) {
      auto found = r->FindLeaf(HashLeaf(entries[i]));
      REQUIRE(found.ok());
      CHECK(*found == i);
    }
    for (auto& snap : old_snapshots) {
      uint64_t last = snap->size() - 1;
      auto found = snap->FindLeaf(HashLeaf(entries[last]));
      REQUIRE(found.ok());
      CHECK(*found == last);
      CHECK(snap->FindLeaf(HashLeaf("never appended")).status().IsNotFound());
    }
    old_snapshots.clear();
  }
  if (o.leaf_index_merge_min_step < 37) CHECK(commits_mid_merge > 0);
  else CHECK(commits_mid_merge == 0);
}

TEST_CASE("recorded keys are found through merges, reopens and old snapshots", "[store]") {
  TempDir tmp;
  StoreOptions o = Options(tmp.store_dir());
  o.leaf_index_merge_threshold = 41;
  o.leaf_index_merge_min_step = GENERATE(as<uint64_t>(), 4096, 3);
  INFO("leaf_index_merge_min_step " << o.leaf_index_merge_min_step);
  auto key_of = [](uint64_t i) { return Sha256("recorded key " + std::to_string(i)); };
  std::vector<uint64_t> keyed;  // indexes with a key: every third entry
  uint64_t size = 0;
  std::vector<std::unique_ptr<LogReader>> old_snapshots;
  for (int round = 0; round < 10; round++) {
    auto store = OpenStore(o);
    for (int batch = 0; batch < 3; batch++) {
      auto w = BeginOrDie(*store);
      const int n = 4 + (round * 5 + batch * 7) % 19;
      for (int i = 0; i < n; i++) {
        auto leaf = w->Append("keyed entry " + std::to_string(size));
        REQUIRE(leaf.ok());
        REQUIRE(leaf->index == size);
        if (size % 3 == 0) {
          REQUIRE(w->RecordKey(key_of(size), size).ok());
          keyed.push_back(size);
          // Found in the batch that records it.
          auto found = w->FindKey(key_of(size));
          REQUIRE(found.ok());
          CHECK(std::count(found->begin(), found->end(), size) == 1);
        }
        size++;
      }
      // One key per entry, and only for this batch's entries.
      if (size % 3 == 1) CHECK(w->RecordKey(key_of(size + 1000), size - 1).IsInvalidArgument());
      if (size > 100) CHECK(w->RecordKey(key_of(size + 1000), 5).IsInvalidArgument());
      CHECK(w->RecordKey(key_of(size + 1000), size).IsInvalidArgument());
      REQUIRE(w->SetCheckpoint("checkpoint at " + std::to_string(size)).ok());
      REQUIRE(w->Commit().ok());
      old_snapshots.push_back(ReadOrDie(*store));
    }
    {
      // A batch that is dropped records nothing.
      auto w = BeginOrDie(*store);
      auto leaf = w->Append("dropped entry " + std::to_string(round));
      REQUIRE(leaf.ok());
      REQUIRE(w->RecordKey(Sha256("dropped key " + std::to_string(round)), leaf->index).ok());
    }
    auto r = ReadOrDie(*store);
    for (uint64_t i : keyed) {
      auto found = r->FindKey(key_of(i));
      REQUIRE(found.ok());
      CHECK(std::count(found->begin(), found->end(), i) == 1);
    }
    for (int d = 0; d <= round; d++) {
      auto found = r->FindKey(Sha256("dropped key " + std::to_string(d)));
      REQUIRE(found.ok());
      CHECK(found->empty());
    }
    for (auto& snap : old_snapshots) {
      const uint64_t last = keyed.back() < snap->size() ? keyed.back() : (snap->size() - 1) / 3 * 3;
      auto found = snap->FindKey(key_of(last));
      REQUIRE(found.ok());
      CHECK(std::count(found->begin(), found->end(), last) == 1);
      // A key recorded after the snapshot is not in it.
      found = snap->FindKey(key_of(keyed.back()));
      REQUIRE(found.ok());
      if (keyed.back() >= snap->size()) CHECK(found->empty());
    }
    old_snapshots.clear();
    // `keys` holds only the keys of entries not yet merged into a run.
    auto stats = store->Stats();
    REQUIRE(stats.ok());
    for (const auto& db : stats->dbs)
      if (db.name == "keys") CHECK(db.items <= stats->pending_leaves + stats->merging_leaves);
  }
}

// --- scale: leaf-index runs and the format-1 migration (#7) ---

TEST_CASE("a leaf-index merge spread over many commits keeps every leaf findable", "[store]") {
  TempDir tmp;
  StoreOptions o = Options(tmp.store_dir());
  o.leaf_index_merge_threshold = 800;  // level 1: 6400 leaves, level 2: 51200
  o.leaf_index_merge_min_step = 10;    // runs of many blocks, written over many commits
  std::vector<std::string> entries;
  std::mt19937_64 rng(7);
  uint64_t commits_mid_merge = 0, max_merging = 0;
  bool reopened = false;
  auto opened = Store::Open(o);
  REQUIRE(opened.ok());
  std::unique_ptr<Store> store = std::move(*opened);
  for (int batch = 0; batch < 130; batch++) {
    auto before = ReadOrDie(*store);
    auto w = BeginOrDie(*store);
    for (int i = 0; i < 97; i++) {
      entries.push_back("spread merge entry " + std::to_string(entries.size()));
      auto leaf = w->Append(entries.back());
      REQUIRE(leaf.ok());
      REQUIRE_FALSE(leaf->duplicate);
    }
    // Old leaves appended again are duplicates, wherever they are indexed.
    for (int i = 0; i < 5; i++) {
      uint64_t old = rng() % entries.size();
      auto dup = w->Append(entries[old]);
      REQUIRE(dup.ok());
      CHECK(dup->duplicate);
      CHECK(dup->index == old);
    }
    REQUIRE(w->SetCheckpoint("checkpoint at " + std::to_string(entries.size())).ok());
    REQUIRE(w->Commit().ok());
    auto stats = store->Stats();
    REQUIRE(stats.ok());
    if (stats->merging_leaves > 0) commits_mid_merge++;
    max_merging = std::max(max_merging, stats->merging_leaves);

    // Both the snapshot from before the commit and a new one find a sample.
    auto after = ReadOrDie(*store);
    for (int i = 0; i < 50; i++) {
      uint64_t old = rng() % entries.size();
      auto found = after->FindLeaf(HashLeaf(entries[old]));
      REQUIRE(found.ok());
      CHECK(*found == old);
      if (old < before->size()) {
        auto was = before->FindLeaf(HashLeaf(entries[old]));
        REQUIRE(was.ok());
        CHECK(*was == old);
      }
    }
    if (!reopened && batch >= 60 && stats->merging_leaves > 0) {
      // Reopen in the middle of a merge (as after a crash): its blocks so
      // far are unreferenced, and the next merge deletes and redoes them.
      before.reset();
      after.reset();
      w.reset();
      store.reset();
      auto again = Store::Open(o);
      INFO("Store::Open: " << again.status().ToString());
      REQUIRE(again.ok());
      store = std::move(*again);
      reopened = true;
    }
  }
  CHECK(reopened);
  CHECK(commits_mid_merge >= 20);
  CHECK(max_merging >= 800);
  auto r = ReadOrDie(*store);
  for (size_t i = 0; i < entries.size(); i++) {
    auto found = r->FindLeaf(HashLeaf(entries[i]));
    REQUIRE(found.ok());
    CHECK(*found == i);
  }
  CHECK(r->FindLeaf(HashLeaf("spread merge entry absent")).status().IsNotFound());
}

TEST_CASE("the leaf index keeps a bounded number of runs as the log grows", "[store]") {
  TempDir tmp;
  StoreOptions o = Options(tmp.store_dir());
  o.leaf_index_merge_threshold = 8;  // runs of level L hold up to 8 * 8^L leaves
  auto opened = Store::Open(o);
  REQUIRE(opened.ok());
  auto& store = *opened;
  std::vector<std::string> entries;
  uint64_t max_runs = 0;
  for (int batch = 0; batch < 400; batch++) {
    auto w = BeginOrDie(*store);
    for (int i = 0; i < 5; i++) {
      entries.push_back("run entry " + std::to_string(entries.size()));
      REQUIRE(w->Append(entries.back()).ok());
    }
    REQUIRE(w->Commit().ok());
    auto stats = store->Stats();
    REQUIRE(stats.ok());
    max_runs = std::max(max_runs, stats->leaf_index_runs);
    CHECK(stats->pending_leaves < 8 + 5);
  }
  // 2000 leaves: levels 1 (64), 2 (512), 3 (4096): at most one run each.
  CHECK(max_runs >= 2);
  CHECK(max_runs <= 3);
  auto r = ReadOrDie(*store);
  for (size_t i = 0; i < entries.size(); i++) {
    auto found = r->FindLeaf(HashLeaf(entries[i]));
    REQUIRE(found.ok());
    CHECK(*found == i);
  }
  CHECK(r->FindLeaf(HashLeaf("run entry absent")).status().IsNotFound());
}

TEST_CASE("a format-1 store is migrated to the current format on open", "[store]") {
  TempDir tmp;
  StoreOptions o = Options(tmp.store_dir());
  o.leaf_index_merge_threshold = 16;
  std::vector<std::string> entries;
  {
    auto store = OpenStore(tmp.store_dir());
    for (int batch = 0; batch < 10; batch++) {
      auto w = BeginOrDie(*store);
      for (int i = 0; i < 7; i++) {
        entries.push_back("format-1 entry " + std::to_string(entries.size()));
        REQUIRE(w->Append(entries.back()).ok());
      }
      REQUIRE(w->SetCheckpoint("cp").ok());
      REQUIRE(w->Commit().ok());
    }
  }
  // Format 1 is format 2 (hashes and entries) with another leaf index.
  DowngradeToFormat2(tmp.store_dir());
  // Rewrite the leaf index as format 1 wrote it: leafidx (DUPSORT) with the
  // first 8 bytes of each leaf hash -> u64be index for leaves below
  // indexed_size (here 50; the other 20 are rebuilt from the hashes).
  const uint64_t indexed = 50;
  {
    RawEnv env(tmp.store_dir());
    env.Mutate("leafruns", [](MDB_txn* t, MDB_dbi d) { REQUIRE(mdb_drop(t, d, 1) == 0); });
    env.Mutate("meta", [&](MDB_txn* t, MDB_dbi d) {
      RawPut(t, d, "format", "1");
      RawPut(t, d, "indexed_size", U64Key(indexed));
      MDB_val k{8, const_cast<char*>("leafruns")};
      mdb_del(t, d, &k, nullptr);
      MDB_dbi old;
      REQUIRE(mdb_dbi_open(t, "leafidx", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &old) == 0);
      for (uint64_t i = 0; i < indexed; i++) {
        Hash h = HashLeaf(entries[i]);
        RawPut(t, old, std::string(reinterpret_cast<const char*>(h.data()), 8), U64Key(i));
      }
    });
  }
  {
    auto opened = Store::Open(o);
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    auto r = ReadOrDie(**opened);
    for (size_t i = 0; i < entries.size(); i++) {
      auto found = r->FindLeaf(HashLeaf(entries[i]));
      REQUIRE(found.ok());
      CHECK(*found == i);
    }
    auto w = BeginOrDie(**opened);
    auto dup = w->Append(entries[3]);
    REQUIRE(dup.ok());
    CHECK(dup->duplicate);
    CHECK(dup->index == 3);
  }
  RawEnv env(tmp.store_dir());
  std::string format;
  REQUIRE(env.Get("meta", "format", &format));
  CHECK(format == "5");
  env.Mutate("meta", [](MDB_txn* t, MDB_dbi) {
    MDB_dbi old;
    CHECK(mdb_dbi_open(t, "leafidx", 0, &old) == MDB_NOTFOUND);
    CHECK(mdb_dbi_open(t, "hashes", 0, &old) == MDB_NOTFOUND);
  });
}

TEST_CASE("a format-2 store is migrated to the current format on open", "[store]") {
  // Sizes with a partial last bundle (and partial chunks in several
  // groups) and with the last bundle exactly full.
  const uint64_t N = GENERATE(uint64_t{3 * 256 + 77}, uint64_t{2 * 256});
  TempDir tmp;
  StoreOptions o = Options(tmp.store_dir());
  o.leaf_index_merge_threshold = 100;  // leaf-index runs and pending leaves both present
  std::vector<std::string> entries;
  std::vector<Hash> leaves;
  std::mt19937_64 rng(N);
  {
    auto opened = Store::Open(o);
    REQUIRE(opened.ok());
    while (entries.size() < N) {
      auto w = BeginOrDie(**opened);
      uint64_t n = std::min<uint64_t>(N - entries.size(), 1 + rng() % 90);
      for (uint64_t i = 0; i < n; i++) {
        entries.push_back("format-2 entry " + std::to_string(entries.size()) + std::string(rng() % 300, 'x'));
        leaves.push_back(AppendOrDie(*w, entries.back()).leaf_hash);
      }
      CommitOrDie(*w);
    }
  }
  DowngradeToFormat2(tmp.store_dir());
  {
    // What a format-2 build wrote: every entry under its own key, 16-slot
    // chunks only as long as they are filled.
    RawEnv env(tmp.store_dir());
    std::string v;
    REQUIRE(env.Get("entries", U64Key(0), &v));
    CHECK(v == entries[0]);
    REQUIRE(env.Get("hashes", ChunkKey(0, (N - 1) / 16), &v));
    CHECK(v.size() == (N % 16 == 0 ? 16 : N % 16) * 32);
  }
  for (int reopen = 0; reopen < 2; reopen++) {
    auto opened = Store::Open(o);
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    auto& store = *opened;
    REQUIRE(store->size() == N);
    CHECK(store->root() == RefRoot(leaves, 0, N));
    auto r = ReadOrDie(*store);
    CHECK(r->checkpoint() == "test checkpoint " + std::to_string(N) + "\n");
    for (uint64_t i = 0; i < N; i++) {
      auto e = r->GetEntry(i);
      REQUIRE(e.ok());
      CHECK(*e == entries[i]);
      auto found = r->FindLeaf(leaves[i]);
      REQUIRE(found.ok());
      CHECK(*found == i);
    }
    auto all = r->GetEntries(0, N);
    REQUIRE(all.ok());
    REQUIRE(all->size() == N);
    for (uint64_t i = 0; i < N; i++) CHECK((*all)[i] == entries[i]);
    for (uint64_t size : {uint64_t{1}, uint64_t{255}, uint64_t{256}, uint64_t{257}, N / 2, N}) {
      uint64_t index = size / 3;
      auto proof = InclusionProof(index, size, *r);
      REQUIRE(proof.ok());
      CHECK(VerifyInclusion(leaves[index], index, size, *proof, RefRoot(leaves, 0, size)).ok());
    }
  }
  {
    RawEnv env(tmp.store_dir());
    std::string v;
    REQUIRE(env.Get("meta", "format", &v));
    CHECK(v == "5");
    env.Mutate("meta", [](MDB_txn* t, MDB_dbi) {
      MDB_dbi old;
      CHECK(mdb_dbi_open(t, "hashes", 0, &old) == MDB_NOTFOUND);
    });
    // Only the partial bundle's entries remain single; chunks are 16 slots.
    CHECK(env.Get("entries", U64Key(N - 1), &v) == (N % 256 != 0));
    CHECK_FALSE(env.Get("entries", U64Key(0), &v));
    REQUIRE(env.Get("bundles", U64Key(0), &v));
    REQUIRE(env.Get("tree", TreeKey(0, (N - 1) / 16), &v));
    CHECK(v.size() == 512);
  }
  // Appends go on after the migration, through bundle boundaries.
  auto opened = Store::Open(o);
  REQUIRE(opened.ok());
  auto w = BeginOrDie(**opened);
  for (int i = 0; i < 300; i++) {
    entries.push_back("after migration " + std::to_string(i));
    leaves.push_back(AppendOrDie(*w, entries.back()).leaf_hash);
  }
  auto dup = w->Append(entries[5]);
  REQUIRE(dup.ok());
  CHECK(dup->duplicate);
  CHECK(dup->index == 5);
  CommitOrDie(*w);
  CHECK((*opened)->root() == RefRoot(leaves, 0, entries.size()));
  auto r = ReadOrDie(**opened);
  auto all = r->GetEntries(0, entries.size());
  REQUIRE(all.ok());
  for (size_t i = 0; i < entries.size(); i++) CHECK((*all)[i] == entries[i]);
}

TEST_CASE("a damaged entry bundle is reported as corruption, not served", "[store]") {
  TempDir tmp;
  std::vector<std::string> entries;
  {
    auto store = OpenStore(tmp.store_dir());
    auto w = BeginOrDie(*store);
    for (int i = 0; i < 600; i++) {
      entries.push_back("bundled entry " + std::to_string(i));
      AppendOrDie(*w, entries.back());
    }
    REQUIRE(w->SetCheckpoint("cp").ok());
    CommitOrDie(*w);
  }
  {
    RawEnv env(tmp.store_dir());
    std::string v;
    REQUIRE(env.Get("bundles", U64Key(0), &v));
    // u16be length || bytes, 256 times.
    REQUIRE(v.size() == 256 * 2 + [&] { size_t n = 0; for (int i = 0; i < 256; i++) n += entries[i].size(); return n; }());
    CHECK(v.substr(2, entries[0].size()) == entries[0]);
    v.resize(v.size() - 1);
    env.Mutate("bundles", [&](MDB_txn* t, MDB_dbi d) { RawPut(t, d, U64Key(0), v); });
  }
  auto store = OpenStore(tmp.store_dir());  // the start-up check reads only the last entry
  auto r = ReadOrDie(*store);
  CHECK(r->GetEntry(255).status().IsCorruption());
  CHECK(r->GetEntries(0, 10).status().IsCorruption());
  auto ok = r->GetEntry(254);  // slots before the damage still parse
  REQUIRE(ok.ok());
  CHECK(*ok == entries[254]);
  auto tail = r->GetEntries(256, 344);
  REQUIRE(tail.ok());
  CHECK((*tail)[343] == entries[599]);
}
