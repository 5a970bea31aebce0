// Subject index (SPEC.md §14): hashing, the tree algorithms fuzzed against
// the recursive reference, proofs and their tampering, and the in-memory
// node store.
#include "ledger/subject_index.h"

#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <vector>

using namespace ledger;

namespace {

SubjectTag RandomTag(std::mt19937_64& rng) {
  SubjectTag t;
  for (auto& b : t) b = static_cast<uint8_t>(rng());
  return t;
}

SubjectTag FlipBit(SubjectTag t, unsigned bit) {
  t[bit / 8] ^= static_cast<uint8_t>(0x80u >> (bit % 8));
  return t;
}

Bytes Concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) out.append(p);
  return out;
}

// CheckProofs proves every tag in |probe| against |store| and checks the
// result agrees with |model| and verifies against |root|.
void CheckProofs(SubjectNodeStore& store, const Hash& root, const std::map<SubjectTag, SubjectValue>& model,
                 const std::vector<SubjectTag>& probe) {
  for (const SubjectTag& t : probe) {
    auto look = ProveSubject(store, t);
    REQUIRE(look.ok());
    auto it = model.find(t);
    if (it == model.end()) {
      REQUIRE_FALSE(look->value.has_value());
      REQUIRE(look->proof.end != SubjectIndexProof::End::kMember);
    } else {
      REQUIRE(look->value.has_value());
      REQUIRE(*look->value == it->second);
      REQUIRE(look->proof.end == SubjectIndexProof::End::kMember);
    }
    Status st = VerifySubjectIndexProof(root, t, look->value, look->proof);
    INFO(st.ToString());
    REQUIRE(st.ok());
  }
}

}  // namespace

TEST_CASE("subject index: value chain and hashes are the SPEC §14 formulas") {
  SubjectValue v0;
  CHECK(v0.count == 0);
  CHECK(v0.chain == Hash{});
  SubjectValue v1 = ExtendSubjectValue(v0, 12);
  Bytes idx;
  AppendU64(&idx, 12);
  CHECK(v1.count == 1);
  CHECK(v1.chain == Sha256(Concat({Bytes(1, '\x04'), HashView(v0.chain), idx})));
  SubjectValue v2 = ExtendSubjectValue(v1, 507);
  CHECK(SubjectValueOf({12, 507}) == v2);
  CHECK(SubjectValueOf({507, 12}) != v2);  // order matters

  Bytes enc = EncodeSubjectValue(v2);
  REQUIRE(enc.size() == kSubjectValueSize);
  CHECK(LoadU64(enc.data()) == 2);
  auto dec = DecodeSubjectValue(enc);
  REQUIRE(dec.ok());
  CHECK(*dec == v2);
  CHECK_FALSE(DecodeSubjectValue(enc.substr(1)).ok());
  CHECK_FALSE(DecodeSubjectValue(enc + "x").ok());

  std::mt19937_64 rng(1);
  SubjectTag t = RandomTag(rng);
  CHECK(SubjectLeafHash(t, v2) == Sha256(Concat({Bytes(1, '\x02'), HashView(t), enc})));
  Hash a = SubjectLeafHash(t, v1), b = SubjectLeafHash(t, v2);
  CHECK(SubjectNodeHash(a, b) == Sha256(Concat({Bytes(1, '\x03'), HashView(a), HashView(b)})));
  CHECK(SubjectEmptyHash() == Hash{});

  SubjectTag bits{};
  bits[0] = 0x80;
  bits[31] = 0x01;
  CHECK(SubjectTagBit(bits, 0) == 1);
  CHECK(SubjectTagBit(bits, 1) == 0);
  CHECK(SubjectTagBit(bits, 255) == 1);
  SubjectTag ones;
  ones.fill(0xFF);
  SubjectTag p = SubjectPrefix(ones, 9);
  CHECK(p[0] == 0xFF);
  CHECK(p[1] == 0x80);
  CHECK(p[2] == 0);
  CHECK(SubjectPrefix(ones, 256) == ones);
  CHECK(SubjectPrefix(ones, 0) == SubjectTag{});

  CHECK(std::string(SubjectIndexProofEndName(SubjectIndexProof::End::kLeaf)) == "leaf");
  for (auto e : {SubjectIndexProof::End::kMember, SubjectIndexProof::End::kEmpty, SubjectIndexProof::End::kLeaf}) {
    auto back = ParseSubjectIndexProofEnd(SubjectIndexProofEndName(e));
    REQUIRE(back.ok());
    CHECK(*back == e);
  }
  CHECK_FALSE(ParseSubjectIndexProofEnd("Member").ok());
  CHECK_FALSE(ParseSubjectIndexProofEnd("").ok());
}

TEST_CASE("subject index: empty tree and a single tag") {
  MemorySubjectNodeStore store;
  std::mt19937_64 rng(2);
  SubjectTag t = RandomTag(rng), u = RandomTag(rng);
  auto root = SubjectIndexRoot(store);
  REQUIRE(root.ok());
  CHECK(*root == Hash{});
  CHECK(SubjectIndexReferenceRoot({}) == Hash{});
  auto look = ProveSubject(store, t);
  REQUIRE(look.ok());
  CHECK(look->proof.end == SubjectIndexProof::End::kEmpty);
  CHECK(look->proof.siblings.empty());
  CHECK(VerifySubjectIndexProof(*root, t, std::nullopt, look->proof).ok());
  // An empty tree proves nothing is a member.
  CHECK_FALSE(VerifySubjectIndexProof(*root, t, SubjectValue{}, SubjectIndexProof{SubjectIndexProof::End::kMember, {}, {}, {}}).ok());

  SubjectValue v = SubjectValueOf({3});
  auto r1 = ApplySubjectUpdates(store, {{t, v}});
  REQUIRE(r1.ok());
  CHECK(*r1 == SubjectLeafHash(t, v));  // a lone tag is its leaf at depth 0
  CHECK(*r1 == SubjectIndexReferenceRoot({{t, v}}));
  CHECK(store.node_count() == 1);
  look = ProveSubject(store, t);
  REQUIRE(look.ok());
  CHECK(look->proof.end == SubjectIndexProof::End::kMember);
  CHECK(look->proof.siblings.empty());
  CHECK(VerifySubjectIndexProof(*r1, t, v, look->proof).ok());
  CHECK(VerifySubjectIndexProof(*r1, t, SubjectValueOf({4}), look->proof).code() == Status::Code::kPermissionDenied);
  look = ProveSubject(store, u);
  REQUIRE(look.ok());
  CHECK(look->proof.end == SubjectIndexProof::End::kLeaf);
  CHECK(look->proof.other_tag == t);
  CHECK(VerifySubjectIndexProof(*r1, u, std::nullopt, look->proof).ok());

  // Updating the lone tag's value in place.
  SubjectValue v2 = ExtendSubjectValue(v, 9);
  auto r2 = ApplySubjectUpdates(store, {{t, v2}});
  REQUIRE(r2.ok());
  CHECK(*r2 == SubjectLeafHash(t, v2));
  CHECK(store.node_count() == 1);

  // A tag twice in one update is refused.
  CHECK(ApplySubjectUpdates(store, {{u, v}, {u, v2}}).status().IsInvalidArgument());
}

TEST_CASE("subject index: randomised updates agree with the recursive reference") {
  for (uint64_t seed = 10; seed < 16; ++seed) {
    std::mt19937_64 rng(seed);
    MemorySubjectNodeStore store;
    std::map<SubjectTag, SubjectValue> model;
    std::vector<SubjectTag> known;
    uint64_t next_index = 0;
    for (int round = 0; round < 60; ++round) {
      // One batch: some new random tags, some tags sharing long prefixes
      // with known ones (down to 255 common bits), some existing tags
      // getting one more access.
      std::map<SubjectTag, SubjectValue> batch;
      int n = 1 + static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) {
        SubjectTag t;
        unsigned kind = rng() % 4;
        if (known.empty() || kind == 0) {
          t = RandomTag(rng);
        } else if (kind == 1) {
          static const unsigned kBits[] = {255, 254, 200, 128, 57, 56, 55, 31, 8, 1, 0};
          t = FlipBit(known[rng() % known.size()], kBits[rng() % (sizeof(kBits) / sizeof(kBits[0]))]);
        } else {
          t = known[rng() % known.size()];
        }
        auto cur = batch.count(t) ? batch[t] : (model.count(t) ? model[t] : SubjectValue{});
        batch[t] = ExtendSubjectValue(cur, next_index++);
      }
      std::vector<std::pair<SubjectTag, SubjectValue>> updates(batch.begin(), batch.end());
      std::shuffle(updates.begin(), updates.end(), rng);
      for (const auto& [t, v] : updates) {
        if (!model.count(t)) known.push_back(t);
        model[t] = v;
      }
      auto root = ApplySubjectUpdates(store, updates);
      REQUIRE(root.ok());
      REQUIRE(*root == SubjectIndexReferenceRoot(model));
      auto again = SubjectIndexRoot(store);
      REQUIRE(again.ok());
      REQUIRE(*again == *root);
      if (round % 10 == 9) {
        std::vector<SubjectTag> probe;
        for (int i = 0; i < 8; ++i) probe.push_back(known[rng() % known.size()]);
        for (int i = 0; i < 4; ++i) probe.push_back(RandomTag(rng));
        for (int i = 0; i < 4; ++i) probe.push_back(FlipBit(known[rng() % known.size()], 255 - (rng() % 3)));
        CheckProofs(store, *root, model, probe);
      }
    }
    // The same set of values inserted one tag at a time in another order
    // gives the same root: the tree is canonical.
    MemorySubjectNodeStore one_by_one;
    std::vector<std::pair<SubjectTag, SubjectValue>> all(model.begin(), model.end());
    std::shuffle(all.begin(), all.end(), rng);
    Hash last{};
    for (const auto& u : all) {
      auto r = ApplySubjectUpdates(one_by_one, {u});
      REQUIRE(r.ok());
      last = *r;
    }
    CHECK(last == SubjectIndexReferenceRoot(model));
    CHECK(one_by_one.node_count() == store.node_count());
  }
}

TEST_CASE("subject index: tags sharing 255 bits and an absent neighbour") {
  std::mt19937_64 rng(3);
  SubjectTag a = RandomTag(rng);
  SubjectTag b = FlipBit(a, 255);
  SubjectTag c = FlipBit(a, 200);  // absent; shares 200 bits with a and b
  MemorySubjectNodeStore store;
  std::map<SubjectTag, SubjectValue> model{{a, SubjectValueOf({1})}, {b, SubjectValueOf({2, 5})}};
  auto root = ApplySubjectUpdates(store, {{a, model[a]}, {b, model[b]}});
  REQUIRE(root.ok());
  CHECK(*root == SubjectIndexReferenceRoot(model));
  CHECK(store.node_count() == 256 + 2);  // inner nodes at depths 0..255, leaves at 256
  auto look = ProveSubject(store, b);
  REQUIRE(look.ok());
  CHECK(look->proof.siblings.size() == 256);
  CHECK(VerifySubjectIndexProof(*root, b, model[b], look->proof).ok());
  look = ProveSubject(store, c);
  REQUIRE(look.ok());
  CHECK(look->proof.end == SubjectIndexProof::End::kEmpty);
  CHECK(look->proof.siblings.size() == 201);
  CHECK(VerifySubjectIndexProof(*root, c, std::nullopt, look->proof).ok());
  CheckProofs(store, *root, model, {a, b, c, FlipBit(a, 0), FlipBit(a, 100)});

  // A third tag splitting the long chain halfway up.
  SubjectTag d = FlipBit(a, 100);
  model[d] = SubjectValueOf({7});
  root = ApplySubjectUpdates(store, {{d, model[d]}});
  REQUIRE(root.ok());
  CHECK(*root == SubjectIndexReferenceRoot(model));
  CheckProofs(store, *root, model, {a, b, c, d, FlipBit(a, 101)});
}

TEST_CASE("subject index: every tampered proof is rejected") {
  std::mt19937_64 rng(4);
  MemorySubjectNodeStore store;
  std::map<SubjectTag, SubjectValue> model;
  for (int i = 0; i < 200; ++i) model[RandomTag(rng)] = SubjectValueOf({static_cast<uint64_t>(i)});
  auto root = ApplySubjectUpdates(store, {model.begin(), model.end()});
  REQUIRE(root.ok());
  const SubjectTag member = model.begin()->first;
  const SubjectValue value = model.begin()->second;

  auto mlook = ProveSubject(store, member);
  REQUIRE(mlook.ok());
  const SubjectIndexProof mp = mlook->proof;
  REQUIRE(mp.end == SubjectIndexProof::End::kMember);
  REQUIRE(mp.siblings.size() >= 5);
  REQUIRE(VerifySubjectIndexProof(*root, member, value, mp).ok());

  SECTION("flipped sibling byte, at every depth") {
    for (size_t d = 0; d < mp.siblings.size(); ++d) {
      SubjectIndexProof p = mp;
      p.siblings[d][d % 32] ^= 1;
      CHECK(VerifySubjectIndexProof(*root, member, value, p).code() == Status::Code::kPermissionDenied);
    }
  }
  SECTION("wrong value: one index missing, extra, reordered, wrong count") {
    CHECK_FALSE(VerifySubjectIndexProof(*root, member, SubjectValue{}, mp).ok());
    CHECK_FALSE(VerifySubjectIndexProof(*root, member, ExtendSubjectValue(value, 999), mp).ok());
    SubjectValue wrong_count = value;
    wrong_count.count++;
    CHECK_FALSE(VerifySubjectIndexProof(*root, member, wrong_count, mp).ok());
    CHECK(VerifySubjectIndexProof(*root, member, std::nullopt, mp).IsInvalidArgument());
  }
  SECTION("wrong end or wrong depth") {
    SubjectIndexProof p = mp;
    p.end = SubjectIndexProof::End::kEmpty;
    CHECK(VerifySubjectIndexProof(*root, member, std::nullopt, p).code() == Status::Code::kPermissionDenied);
    CHECK(VerifySubjectIndexProof(*root, member, value, p).IsInvalidArgument());
    p = mp;
    p.siblings.pop_back();
    CHECK_FALSE(VerifySubjectIndexProof(*root, member, value, p).ok());
    p = mp;
    p.siblings.push_back(Hash{});
    CHECK_FALSE(VerifySubjectIndexProof(*root, member, value, p).ok());
    p = mp;
    std::swap(p.siblings[0], p.siblings[1]);
    CHECK_FALSE(VerifySubjectIndexProof(*root, member, value, p).ok());
    // The member proof for another tag.
    CHECK_FALSE(VerifySubjectIndexProof(*root, FlipBit(member, 255), value, mp).ok());
  }
  SECTION("more than 256 siblings") {
    SubjectIndexProof p = mp;
    p.siblings.resize(257);
    CHECK(VerifySubjectIndexProof(*root, member, value, p).IsInvalidArgument());
  }
  SECTION("non-membership proofs: empty and leaf ends and their tampering") {
    int leaf_ends = 0, empty_ends = 0;
    for (int i = 0; i < 64; ++i) {
      SubjectTag absent = RandomTag(rng);
      auto look = ProveSubject(store, absent);
      REQUIRE(look.ok());
      REQUIRE_FALSE(look->value.has_value());
      const SubjectIndexProof p0 = look->proof;
      REQUIRE(VerifySubjectIndexProof(*root, absent, std::nullopt, p0).ok());
      // Claiming membership with any value fails.
      SubjectIndexProof as_member = p0;
      as_member.end = SubjectIndexProof::End::kMember;
      CHECK_FALSE(VerifySubjectIndexProof(*root, absent, SubjectValue{}, as_member).ok());
      CHECK(VerifySubjectIndexProof(*root, absent, SubjectValue{}, p0).IsInvalidArgument());
      if (p0.end == SubjectIndexProof::End::kLeaf) {
        ++leaf_ends;
        const size_t k = p0.siblings.size();
        SubjectIndexProof p = p0;
        p.other_tag = absent;  // other tag == tag
        CHECK(VerifySubjectIndexProof(*root, absent, std::nullopt, p).IsInvalidArgument());
        if (k > 0) {
          p = p0;
          p.other_tag = FlipBit(p0.other_tag, static_cast<unsigned>(k - 1));  // off the path
          CHECK(VerifySubjectIndexProof(*root, absent, std::nullopt, p).IsInvalidArgument());
        }
        p = p0;
        p.other_value.count++;
        CHECK(VerifySubjectIndexProof(*root, absent, std::nullopt, p).code() == Status::Code::kPermissionDenied);
        p = p0;
        p.other_tag = FlipBit(p0.other_tag, 255);  // on the path, but not the stored leaf
        if (p.other_tag != absent) {
          CHECK_FALSE(VerifySubjectIndexProof(*root, absent, std::nullopt, p).ok());
        }
        // Presenting the other leaf as empty fails.
        p = p0;
        p.end = SubjectIndexProof::End::kEmpty;
        CHECK_FALSE(VerifySubjectIndexProof(*root, absent, std::nullopt, p).ok());
      } else {
        ++empty_ends;
        REQUIRE(p0.end == SubjectIndexProof::End::kEmpty);
        SubjectIndexProof p = p0;
        if (!p.siblings.empty()) {
          p.siblings.back()[0] ^= 0x40;
          CHECK_FALSE(VerifySubjectIndexProof(*root, absent, std::nullopt, p).ok());
        }
      }
    }
    CHECK(leaf_ends > 0);
    CHECK(empty_ends > 0);
  }
}

TEST_CASE("subject index: memory store put, get and delete against a model") {
  std::mt19937_64 rng(5);
  MemorySubjectNodeStore store;
  std::map<std::pair<unsigned, SubjectTag>, SubjectNode> model;
  std::vector<std::pair<unsigned, SubjectTag>> keys;
  for (int i = 0; i < 20000; ++i) {
    unsigned op = rng() % 10;
    if (op < 6 || keys.empty()) {
      unsigned depth = static_cast<unsigned>(rng() % 258);  // 257 is refused
      SubjectTag prefix = SubjectPrefix(RandomTag(rng), depth > 256 ? 256 : depth);
      if (rng() % 3 == 0) depth = static_cast<unsigned>(rng() % 12);  // crowd the small depths
      prefix = SubjectPrefix(prefix, depth > 256 ? 256 : depth);
      SubjectNode n;
      n.leaf = rng() % 2;
      if (n.leaf) {
        n.tag = RandomTag(rng);
        n.value = SubjectValueOf({rng() % 100});
        n.hash = SubjectLeafHash(n.tag, n.value);
      } else {
        n.hash = RandomTag(rng);
      }
      Status st = store.PutNode(depth, prefix, n);
      if (depth > 256) {
        CHECK_FALSE(st.ok());
        continue;
      }
      REQUIRE(st.ok());
      if (!model.count({depth, prefix})) keys.emplace_back(depth, prefix);
      model[{depth, prefix}] = n;
    } else if (op < 8) {
      auto k = keys[rng() % keys.size()];
      REQUIRE(store.DeleteNode(k.first, k.second).ok());
      model.erase(k);
    } else {
      auto k = keys[rng() % keys.size()];
      auto got = store.GetNode(k.first, k.second);
      REQUIRE(got.ok());
      auto it = model.find(k);
      REQUIRE(got->has_value() == (it != model.end()));
      if (it != model.end()) {
        CHECK((*got)->leaf == it->second.leaf);
        CHECK((*got)->hash == it->second.hash);
        if (it->second.leaf) {
          CHECK((*got)->tag == it->second.tag);
          CHECK((*got)->value == it->second.value);
        }
      }
    }
  }
  REQUIRE(store.node_count() == model.size());
  for (const auto& [k, n] : model) {
    auto got = store.GetNode(k.first, k.second);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK((*got)->hash == n.hash);
  }
}
