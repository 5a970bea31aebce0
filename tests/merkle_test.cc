#include "ledger/merkle.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

using namespace ledger;
using json = nlohmann::json;

namespace {

using ledger_test::MemoryReader;

// BoundedReader serves only nodes complete in a tree of |size| leaves, so a
// proof that peeks past its tree size fails loudly.
class BoundedReader : public HashReader {
 public:
  BoundedReader(const HashReader& inner, uint64_t size) : inner_(inner), size_(size) {}
  Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const override {
    for (const NodeId& id : ids) {
      if (id.level >= 64 || id.index >= (size_ >> id.level)) {
        return Status::Internal("node " + std::to_string(id.level) + "/" + std::to_string(id.index) +
                                " is not complete at size " + std::to_string(size_));
      }
    }
    return inner_.ReadHashes(ids, out);
  }

 private:
  const HashReader& inner_;
  uint64_t size_;
};

// ShortReader violates the ReadHashes contract by returning one hash too few.
class ShortReader : public HashReader {
 public:
  Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const override {
    out->assign(ids.empty() ? 0 : ids.size() - 1, Hash{});
    return Status::OK();
  }
};

// Reference implementation straight from RFC 6962 §2.1, recursive and slow.
uint64_t K(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
Hash RefMTH(const std::vector<Hash>& d, uint64_t lo, uint64_t hi) {
  uint64_t n = hi - lo;
  if (n == 0) return EmptyTreeRoot();
  if (n == 1) return d[lo];
  uint64_t k = K(n);
  return HashChildren(RefMTH(d, lo, lo + k), RefMTH(d, lo + k, hi));
}
std::vector<Hash> RefPath(uint64_t m, const std::vector<Hash>& d, uint64_t lo, uint64_t hi) {
  uint64_t n = hi - lo;
  if (n <= 1) return {};
  uint64_t k = K(n);
  std::vector<Hash> p;
  if (m < k) {
    p = RefPath(m, d, lo, lo + k);
    p.push_back(RefMTH(d, lo + k, hi));
  } else {
    p = RefPath(m - k, d, lo + k, hi);
    p.push_back(RefMTH(d, lo, lo + k));
  }
  return p;
}
std::vector<Hash> RefSubproof(uint64_t m, const std::vector<Hash>& d, uint64_t lo, uint64_t hi, bool b) {
  uint64_t n = hi - lo;
  if (m == n) {
    if (b) return {};
    return {RefMTH(d, lo, hi)};
  }
  uint64_t k = K(n);
  std::vector<Hash> p;
  if (m <= k) {
    p = RefSubproof(m, d, lo, lo + k, b);
    p.push_back(RefMTH(d, lo + k, hi));
  } else {
    p = RefSubproof(m - k, d, lo + k, hi, false);
    p.push_back(RefMTH(d, lo, lo + k));
  }
  return p;
}

Hash B64Hash(const std::string& s) {
  auto b = Base64Decode(s);
  REQUIRE(b.ok());
  auto h = HashFromBytes(*b);
  REQUIRE(h.ok());
  return *h;
}
std::vector<Hash> B64Hashes(const json& arr) {
  std::vector<Hash> out;
  for (const auto& s : arr) out.push_back(B64Hash(s.get<std::string>()));
  return out;
}

struct Vectors {
  json j;
  std::vector<Hash> leaves;
  std::vector<Hash> roots;
};

const Vectors& LoadVectors() {
  static const Vectors v = [] {
    Vectors v;
    v.j = json::parse(ledger_test::ReadFileOrDie(ledger_test::VectorPath("tlog.json")), nullptr, false);
    REQUIRE_FALSE(v.j.is_discarded());
    for (const auto& hex : v.j["leaves_hex"]) {
      auto data = HexDecode(hex.get<std::string>());
      REQUIRE(data.ok());
      v.leaves.push_back(HashLeaf(*data));
    }
    v.roots = B64Hashes(v.j["roots"]);
    return v;
  }();
  return v;
}

Hash Flip(Hash h, size_t byte) {
  h[byte % 32] ^= 0x01;
  return h;
}

std::vector<Hash> RandomLeaves(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Hash> leaves;
  for (size_t i = 0; i < n; i++) leaves.push_back(HashLeaf(std::to_string(rng()) + "/" + std::to_string(i)));
  return leaves;
}

}  // namespace

TEST_CASE("leaf and node hashing use RFC 6962 prefixes") {
  CHECK(HexEncode(HashView(EmptyTreeRoot())) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // SHA-256(0x00): the leaf hash of empty data.
  CHECK(HexEncode(HashView(HashLeaf(""))) ==
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  Hash a = HashLeaf("a"), b = HashLeaf("b");
  CHECK(HashChildren(a, b) == Sha256Prefixed(0x01, HashView(a), HashView(b)));
  CHECK(HashChildren(a, b) != HashChildren(b, a));
}

TEST_CASE("tree roots match the Go tlog vectors for sizes 0..1000") {
  const Vectors& v = LoadVectors();
  REQUIRE(v.leaves.size() == 1000);
  REQUIRE(v.roots.size() == 1001);
  MemoryReader reader(v.leaves);
  CHECK(v.roots[0] == EmptyTreeRoot());
  for (uint64_t size = 0; size <= 1000; size++) {
    reader.calls = 0;
    auto root = TreeRoot(size, reader);
    REQUIRE(root.ok());
    INFO("size " << size);
    CHECK(*root == v.roots[size]);
    CHECK(reader.calls == (size == 0 ? 0 : 1));
  }
}

TEST_CASE("inclusion proofs match the Go tlog vectors and verify") {
  const Vectors& v = LoadVectors();
  MemoryReader reader(v.leaves);
  const json& cases = v.j["inclusion"];
  REQUIRE(cases.size() > 100);
  int checked = 0;
  for (const auto& c : cases) {
    uint64_t index = c["index"].get<uint64_t>(), size = c["size"].get<uint64_t>();
    std::vector<Hash> want = B64Hashes(c["hashes"]);
    INFO("index " << index << " size " << size);
    reader.calls = 0;
    auto proof = InclusionProof(index, size, reader);
    REQUIRE(proof.ok());
    CHECK(*proof == want);
    CHECK(reader.calls <= 1);
    const Hash& leaf = v.leaves[index];
    const Hash& root = v.roots[size];
    REQUIRE(VerifyInclusion(leaf, index, size, want, root).ok());
    auto r = RootFromInclusionProof(leaf, index, size, want);
    REQUIRE(r.ok());
    CHECK(*r == root);

    // One flipped byte anywhere (each hash, a few byte positions).
    for (size_t i = 0; i < want.size(); i++) {
      for (size_t byte : {size_t{0}, size_t{17}, size_t{31}}) {
        auto bad = want;
        bad[i] = Flip(bad[i], byte);
        CHECK(VerifyInclusion(leaf, index, size, bad, root).IsInvalidArgument());
      }
    }
    CHECK(VerifyInclusion(Flip(leaf, 5), index, size, want, root).IsInvalidArgument());
    CHECK(VerifyInclusion(leaf, index, size, want, Flip(root, 9)).IsInvalidArgument());
    // Wrong index or size, each with the leaf/root that index/size really
    // has, so only the binding of the proof to its position can fail. (The
    // same root with a different size can legitimately verify: the root is
    // what binds the size.)
    if (size > 1) {
      uint64_t j = (index + 1) % size;
      CHECK_FALSE(VerifyInclusion(v.leaves[j], j, size, want, root).ok());
      CHECK_FALSE(VerifyInclusion(leaf, j, size, want, root).ok());
    }
    if (size < 1000) CHECK_FALSE(VerifyInclusion(leaf, index, size + 1, want, v.roots[size + 1]).ok());
    if (size - 1 > index) CHECK_FALSE(VerifyInclusion(leaf, index, size - 1, want, v.roots[size - 1]).ok());
    CHECK(VerifyInclusion(leaf, size, size, want, root).IsInvalidArgument());
    // Added or removed hashes.
    auto longer = want;
    longer.push_back(root);
    CHECK(VerifyInclusion(leaf, index, size, longer, root).IsInvalidArgument());
    auto front = want;
    front.insert(front.begin(), leaf);
    CHECK(VerifyInclusion(leaf, index, size, front, root).IsInvalidArgument());
    if (!want.empty()) {
      auto shorter = want;
      shorter.pop_back();
      CHECK(VerifyInclusion(leaf, index, size, shorter, root).IsInvalidArgument());
      shorter = want;
      shorter.erase(shorter.begin());
      CHECK(VerifyInclusion(leaf, index, size, shorter, root).IsInvalidArgument());
    }
    checked++;
  }
  CHECK(checked == static_cast<int>(cases.size()));
}

TEST_CASE("consistency proofs match the Go tlog vectors and verify") {
  const Vectors& v = LoadVectors();
  MemoryReader reader(v.leaves);
  const json& cases = v.j["consistency"];
  REQUIRE(cases.size() > 100);
  for (const auto& c : cases) {
    uint64_t from = c["from"].get<uint64_t>(), to = c["to"].get<uint64_t>();
    std::vector<Hash> want = B64Hashes(c["hashes"]);
    INFO("from " << from << " to " << to);
    reader.calls = 0;
    auto proof = ConsistencyProof(from, to, reader);
    REQUIRE(proof.ok());
    CHECK(*proof == want);
    CHECK(reader.calls <= 1);
    const Hash& r1 = v.roots[from];
    const Hash& r2 = v.roots[to];
    REQUIRE(VerifyConsistency(from, to, want, r1, r2).ok());

    for (size_t i = 0; i < want.size(); i++) {
      for (size_t byte : {size_t{0}, size_t{13}, size_t{31}}) {
        auto bad = want;
        bad[i] = Flip(bad[i], byte);
        CHECK(VerifyConsistency(from, to, bad, r1, r2).IsInvalidArgument());
      }
    }
    CHECK(VerifyConsistency(from, to, want, Flip(r1, 3), r2).IsInvalidArgument());
    CHECK(VerifyConsistency(from, to, want, r1, Flip(r2, 30)).IsInvalidArgument());
    // Changed sizes (with the roots of the changed sizes, so only the proof
    // can make it fail).
    if (to < 1000) CHECK_FALSE(VerifyConsistency(from, to + 1, want, r1, v.roots[to + 1]).ok());
    if (from > 1 && from != to) CHECK_FALSE(VerifyConsistency(from - 1, to, want, v.roots[from - 1], r2).ok());
    if (from + 1 < to) CHECK_FALSE(VerifyConsistency(from + 1, to, want, v.roots[from + 1], r2).ok());
    // Added or removed hashes.
    auto longer = want;
    longer.push_back(r2);
    CHECK(VerifyConsistency(from, to, longer, r1, r2).IsInvalidArgument());
    auto front = want;
    front.insert(front.begin(), r1);
    CHECK(VerifyConsistency(from, to, front, r1, r2).IsInvalidArgument());
    if (!want.empty()) {
      auto shorter = want;
      shorter.pop_back();
      CHECK(VerifyConsistency(from, to, shorter, r1, r2).IsInvalidArgument());
      shorter = want;
      shorter.erase(shorter.begin());
      CHECK(VerifyConsistency(from, to, shorter, r1, r2).IsInvalidArgument());
    }
  }
}

TEST_CASE("proof edge cases") {
  const Vectors& v = LoadVectors();
  MemoryReader reader(v.leaves);
  const Hash& leaf = v.leaves[0];

  SECTION("inclusion: index >= size and size 0") {
    CHECK(InclusionProof(0, 0, reader).status().code() == Status::Code::kOutOfRange);
    CHECK(InclusionProof(5, 5, reader).status().code() == Status::Code::kOutOfRange);
    CHECK(InclusionProof(6, 5, reader).status().code() == Status::Code::kOutOfRange);
    CHECK(VerifyInclusion(leaf, 0, 0, {}, EmptyTreeRoot()).IsInvalidArgument());
    CHECK(RootFromInclusionProof(leaf, 0, 0, {}).status().IsInvalidArgument());
    CHECK(VerifyInclusion(leaf, 7, 7, {}, v.roots[7]).IsInvalidArgument());
    CHECK(VerifyInclusion(leaf, UINT64_MAX, 3, {}, v.roots[3]).IsInvalidArgument());
  }
  SECTION("inclusion: size 1 needs an empty proof and root == leaf") {
    CHECK(VerifyInclusion(leaf, 0, 1, {}, leaf).ok());
    CHECK(VerifyInclusion(leaf, 0, 1, {leaf}, leaf).IsInvalidArgument());
    CHECK(VerifyInclusion(leaf, 0, 1, {}, v.leaves[1]).IsInvalidArgument());
  }
  SECTION("inclusion: wrong length names the reason") {
    Status st = VerifyInclusion(leaf, 0, 8, {leaf, leaf}, v.roots[8]);
    CHECK(st.IsInvalidArgument());
    CHECK(st.message().find("want 3") != std::string::npos);
  }
  SECTION("consistency: from > to") {
    CHECK(ConsistencyProof(5, 4, reader).status().code() == Status::Code::kOutOfRange);
    CHECK(VerifyConsistency(5, 4, {}, v.roots[5], v.roots[4]).IsInvalidArgument());
  }
  SECTION("consistency: from == to needs an empty proof and equal roots") {
    for (uint64_t n : {0, 1, 7, 8, 1000}) {
      auto p = ConsistencyProof(n, n, reader);
      REQUIRE(p.ok());
      CHECK(p->empty());
      CHECK(VerifyConsistency(n, n, {}, v.roots[n], v.roots[n]).ok());
      CHECK(VerifyConsistency(n, n, {v.roots[n]}, v.roots[n], v.roots[n]).IsInvalidArgument());
      CHECK(VerifyConsistency(n, n, {}, v.roots[n], Flip(v.roots[n], 0)).IsInvalidArgument());
    }
  }
  SECTION("consistency: from == 0 needs an empty proof and the empty root") {
    auto p = ConsistencyProof(0, 10, reader);
    REQUIRE(p.ok());
    CHECK(p->empty());
    CHECK(VerifyConsistency(0, 10, {}, EmptyTreeRoot(), v.roots[10]).ok());
    CHECK(VerifyConsistency(0, 10, {v.roots[10]}, EmptyTreeRoot(), v.roots[10]).IsInvalidArgument());
    CHECK(VerifyConsistency(0, 10, {}, v.roots[1], v.roots[10]).IsInvalidArgument());
  }
  SECTION("consistency: an empty proof for from < to is rejected") {
    CHECK(VerifyConsistency(3, 4, {}, v.roots[3], v.roots[4]).IsInvalidArgument());
    // Power-of-two old size still needs the sibling hashes.
    CHECK(VerifyConsistency(4, 8, {}, v.roots[4], v.roots[8]).IsInvalidArgument());
  }
  SECTION("consistency: wrong length names the reason") {
    Status st = VerifyConsistency(3, 7, {leaf}, v.roots[3], v.roots[7]);
    CHECK(st.IsInvalidArgument());
    CHECK(st.message().find("want") != std::string::npos);
  }
  SECTION("a reader returning the wrong number of hashes is an internal error") {
    ShortReader bad;
    CHECK(TreeRoot(5, bad).status().code() == Status::Code::kInternal);
    CHECK(InclusionProof(1, 5, bad).status().code() == Status::Code::kInternal);
    CHECK(ConsistencyProof(3, 5, bad).status().code() == Status::Code::kInternal);
    CHECK(CompactRange::FromReader(5, bad).status().code() == Status::Code::kInternal);
  }
  SECTION("reader errors propagate") {
    MemoryReader small(std::vector<Hash>(v.leaves.begin(), v.leaves.begin() + 10));
    CHECK(TreeRoot(11, small).status().IsNotFound());
    CHECK(InclusionProof(3, 20, small).status().IsNotFound());
    CHECK(ConsistencyProof(3, 20, small).status().IsNotFound());
    CHECK(CompactRange::FromReader(12, small).status().IsNotFound());
  }
}

TEST_CASE("fast proofs agree with a recursive RFC 6962 reference on random trees") {
  constexpr size_t kMax = 5000;
  std::vector<Hash> leaves = RandomLeaves(kMax, 1);
  MemoryReader reader(leaves);
  std::mt19937_64 rng(42);
  auto uniform = [&](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); };

  for (int iter = 0; iter < 1000; iter++) {
    uint64_t size = iter < 20 ? kMax - static_cast<uint64_t>(iter) : uniform(1, kMax);
    INFO("size " << size);
    BoundedReader bounded(reader, size);
    Hash root = RefMTH(leaves, 0, size);
    auto got = TreeRoot(size, bounded);
    REQUIRE(got.ok());
    REQUIRE(*got == root);

    for (int k = 0; k < 3; k++) {
      uint64_t index = k == 0 ? size - 1 : uniform(0, size - 1);
      INFO("index " << index);
      auto proof = InclusionProof(index, size, bounded);
      REQUIRE(proof.ok());
      REQUIRE(*proof == RefPath(index, leaves, 0, size));
      CHECK(VerifyInclusion(leaves[index], index, size, *proof, root).ok());
    }

    uint64_t from = uniform(1, size);
    INFO("from " << from);
    auto cproof = ConsistencyProof(from, size, bounded);
    REQUIRE(cproof.ok());
    std::vector<Hash> ref = from == size ? std::vector<Hash>() : RefSubproof(from, leaves, 0, size, true);
    REQUIRE(*cproof == ref);
    Hash old_root = RefMTH(leaves, 0, from);
    CHECK(VerifyConsistency(from, size, *cproof, old_root, root).ok());
    if (!cproof->empty()) {
      auto bad = *cproof;
      bad[uniform(0, bad.size() - 1)][uniform(0, 31)] ^= 0x80;
      CHECK(VerifyConsistency(from, size, bad, old_root, root).IsInvalidArgument());
    }
  }
}

TEST_CASE("exhaustive small trees: every proof verifies against the reference") {
  std::vector<Hash> leaves = RandomLeaves(70, 7);
  MemoryReader reader(leaves);
  for (uint64_t size = 1; size <= 70; size++) {
    Hash root = RefMTH(leaves, 0, size);
    for (uint64_t i = 0; i < size; i++) {
      auto p = InclusionProof(i, size, reader);
      REQUIRE(p.ok());
      REQUIRE(*p == RefPath(i, leaves, 0, size));
      REQUIRE(VerifyInclusion(leaves[i], i, size, *p, root).ok());
      // A proof for one index never verifies another leaf at another index.
      uint64_t j = (i + 1) % size;
      if (j != i) CHECK_FALSE(VerifyInclusion(leaves[j], j, size, *p, root).ok());
    }
    for (uint64_t from = 1; from < size; from++) {
      auto p = ConsistencyProof(from, size, reader);
      REQUIRE(p.ok());
      REQUIRE(*p == RefSubproof(from, leaves, 0, size, true));
      REQUIRE(VerifyConsistency(from, size, *p, RefMTH(leaves, 0, from), root).ok());
    }
  }
}

TEST_CASE("CompactRange appends reproduce every root and newly completed node") {
  std::vector<Hash> leaves = RandomLeaves(3000, 3);
  MemoryReader reader(leaves);
  CompactRange cr;
  CHECK(cr.size() == 0);
  CHECK(cr.Root() == EmptyTreeRoot());
  for (uint64_t n = 0; n < leaves.size(); n++) {
    std::vector<std::pair<NodeId, Hash>> visited;
    cr.Append(leaves[n], [&](NodeId id, const Hash& h) { visited.emplace_back(id, h); });
    uint64_t size = n + 1;
    // Nodes completed by leaf n: (l, size/2^l - 1) for each 2^l dividing size.
    std::vector<NodeId> want;
    for (uint8_t l = 0; (size & ((uint64_t{1} << l) - 1)) == 0 && (uint64_t{1} << l) <= size; l++) {
      want.push_back(NodeId{l, (size >> l) - 1});
    }
    REQUIRE(visited.size() == want.size());
    for (size_t i = 0; i < want.size(); i++) {
      REQUIRE(visited[i].first == want[i]);
      REQUIRE(visited[i].second == reader.Node(want[i].level, want[i].index));
    }
    REQUIRE(cr.size() == size);
    REQUIRE(cr.frontier().size() == static_cast<size_t>(__builtin_popcountll(size)));
    auto root = TreeRoot(size, reader);
    REQUIRE(root.ok());
    REQUIRE(cr.Root() == *root);
  }
}

TEST_CASE("CompactRange::FromReader equals the incrementally built frontier") {
  std::vector<Hash> leaves = RandomLeaves(4100, 5);
  MemoryReader reader(leaves);
  std::mt19937_64 rng(9);
  std::set<uint64_t> sizes = {0, 1, 2, 3, 255, 256, 257, 1023, 1024, 4095, 4096, 4100};
  while (sizes.size() < 60) sizes.insert(rng() % 4101);
  CompactRange inc;
  auto noop = [](NodeId, const Hash&) {};
  for (uint64_t size : sizes) {
    while (inc.size() < size) inc.Append(leaves[inc.size()], noop);
    INFO("size " << size);
    reader.calls = 0;
    auto loaded = CompactRange::FromReader(size, reader);
    REQUIRE(loaded.ok());
    CHECK(reader.calls == (size == 0 ? 0 : 1));
    CHECK(loaded->size() == size);
    CHECK(loaded->frontier() == inc.frontier());
    CHECK(loaded->Root() == inc.Root());
    // A loaded range keeps appending correctly.
    if (size < leaves.size()) {
      CompactRange next = *loaded;
      next.Append(leaves[size], noop);
      auto root = TreeRoot(size + 1, reader);
      REQUIRE(root.ok());
      CHECK(next.Root() == *root);
    }
  }
}

namespace {
// CountingReader serves every complete node of a tree of leaf hashes and
// counts the nodes requested from it.
class CountingReader : public ledger::HashReader {
 public:
  explicit CountingReader(std::vector<ledger::Hash> leaves) : leaves_(std::move(leaves)) {}
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<ledger::Hash>* out) const override {
    out->clear();
    for (const auto& id : ids) {
      requested++;
      out->push_back(Node(id.level, id.index));
    }
    return ledger::Status::OK();
  }
  mutable size_t requested = 0;

 private:
  ledger::Hash Node(uint8_t level, uint64_t index) const {
    if (level == 0) return leaves_.at(index);
    return ledger::HashChildren(Node(level - 1, 2 * index), Node(level - 1, 2 * index + 1));
  }
  std::vector<ledger::Hash> leaves_;
};
}  // namespace

TEST_CASE("CachingHashReader gives the same proofs and reads each node once") {
  std::vector<ledger::Hash> leaves;
  for (int i = 0; i < 300; i++) leaves.push_back(ledger::HashLeaf("caching " + std::to_string(i)));
  CountingReader direct(leaves), behind_cache(leaves);
  ledger::CachingHashReader cache(behind_cache);
  for (uint64_t i = 200; i < 300; i++) {
    auto want = ledger::InclusionProof(i, 300, direct);
    auto got = ledger::InclusionProof(i, 300, cache);
    REQUIRE(want.ok());
    REQUIRE(got.ok());
    CHECK(*want == *got);
  }
  auto root_direct = ledger::TreeRoot(300, direct);
  auto root_cached = ledger::TreeRoot(300, cache);
  REQUIRE(root_direct.ok());
  REQUIRE(root_cached.ok());
  CHECK(*root_direct == *root_cached);
  // 100 proofs of ~9 nodes each, but adjacent leaves share most of them.
  CHECK(behind_cache.requested < direct.requested / 3);
}
