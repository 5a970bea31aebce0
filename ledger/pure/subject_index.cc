// Subject index (SPEC.md §14): value chains, node hashes, proofs, the tree
// algorithms over a SubjectNodeStore, and a compact in-memory store.
#include "ledger/subject_index.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

namespace ledger {

namespace {

Bytes U64Be(uint64_t v) {
  Bytes b;
  AppendU64(&b, v);
  return b;
}

Hash HashOrEmpty(const std::optional<SubjectNode>& node) {
  return node ? node->hash : SubjectEmptyHash();
}

// FirstDifferingBit returns the first bit position (0..255) where |a| and
// |b| differ; 256 if they are equal.
unsigned FirstDifferingBit(const SubjectTag& a, const SubjectTag& b) {
  for (unsigned i = 0; i < 32; ++i) {
    uint8_t x = a[i] ^ b[i];
    if (x != 0) {
      unsigned bit = 0;
      while ((x & (0x80u >> bit)) == 0) ++bit;
      return i * 8 + bit;
    }
  }
  return 256;
}

SubjectTag WithBit(SubjectTag tag, unsigned depth) {
  tag[depth / 8] |= static_cast<uint8_t>(0x80u >> (depth % 8));
  return tag;
}

SubjectNode MakeLeaf(const SubjectTag& tag, const SubjectValue& value) {
  SubjectNode n;
  n.leaf = true;
  n.tag = tag;
  n.value = value;
  n.hash = SubjectLeafHash(tag, value);
  return n;
}

SubjectNode MakeInner(const Hash& hash) {
  SubjectNode n;
  n.leaf = false;
  n.hash = hash;
  return n;
}

}  // namespace

SubjectValue ExtendSubjectValue(const SubjectValue& value, uint64_t index) {
  SubjectValue out;
  out.count = value.count + 1;
  Bytes idx = U64Be(index);
  out.chain = Sha256Prefixed(0x04, HashView(value.chain), idx);
  return out;
}

SubjectValue SubjectValueOf(const std::vector<uint64_t>& indices) {
  SubjectValue v;
  for (uint64_t i : indices) v = ExtendSubjectValue(v, i);
  return v;
}

Bytes EncodeSubjectValue(const SubjectValue& value) {
  Bytes b;
  b.reserve(kSubjectValueSize);
  AppendU64(&b, value.count);
  b.append(HashView(value.chain));
  return b;
}

StatusOr<SubjectValue> DecodeSubjectValue(ByteView bytes) {
  if (bytes.size() != kSubjectValueSize) return Status::InvalidArgument("subject value is not 40 bytes");
  SubjectValue v;
  v.count = LoadU64(bytes.data());
  std::memcpy(v.chain.data(), bytes.data() + 8, 32);
  return v;
}

Hash SubjectLeafHash(const SubjectTag& tag, const SubjectValue& value) {
  // EncodeSubjectValue's bytes, on the stack: this runs for every leaf
  // read from a MemorySubjectNodeStore (the audit's rebuilt index).
  char encoded[kSubjectValueSize];
  for (int i = 0; i < 8; i++) encoded[i] = static_cast<char>(value.count >> (56 - 8 * i));
  std::memcpy(encoded + 8, value.chain.data(), 32);
  return Sha256Prefixed(0x02, HashView(tag), ByteView(encoded, sizeof encoded));
}

Hash SubjectNodeHash(const Hash& left, const Hash& right) {
  return Sha256Prefixed(0x03, HashView(left), HashView(right));
}

Hash SubjectEmptyHash() { return Hash{}; }

int SubjectTagBit(const SubjectTag& tag, unsigned depth) {
  return (tag[depth / 8] >> (7 - depth % 8)) & 1;
}

SubjectTag SubjectPrefix(const SubjectTag& tag, unsigned depth) {
  SubjectTag out{};
  if (depth >= 256) return tag;
  unsigned full = depth / 8;
  std::memcpy(out.data(), tag.data(), full);
  unsigned rest = depth % 8;
  if (rest != 0) out[full] = static_cast<uint8_t>(tag[full] & (0xFF00u >> rest));
  return out;
}

const char* SubjectIndexProofEndName(SubjectIndexProof::End end) {
  switch (end) {
    case SubjectIndexProof::End::kMember:
      return "member";
    case SubjectIndexProof::End::kEmpty:
      return "empty";
    case SubjectIndexProof::End::kLeaf:
      return "leaf";
  }
  return "empty";
}

StatusOr<SubjectIndexProof::End> ParseSubjectIndexProofEnd(std::string_view name) {
  if (name == "member") return SubjectIndexProof::End::kMember;
  if (name == "empty") return SubjectIndexProof::End::kEmpty;
  if (name == "leaf") return SubjectIndexProof::End::kLeaf;
  return Status::InvalidArgument("unknown index proof end: " + std::string(name));
}

Status VerifySubjectIndexProof(const Hash& root, const SubjectTag& tag, const std::optional<SubjectValue>& value,
                               const SubjectIndexProof& proof) {
  const size_t k = proof.siblings.size();
  if (k > 256) return Status::InvalidArgument("index proof has more than 256 siblings");
  Hash h;
  switch (proof.end) {
    case SubjectIndexProof::End::kMember:
      if (!value) return Status::InvalidArgument("member proof needs the tag's value");
      h = SubjectLeafHash(tag, *value);
      break;
    case SubjectIndexProof::End::kEmpty:
      if (value) return Status::InvalidArgument("empty proof is for an absent tag");
      h = SubjectEmptyHash();
      break;
    case SubjectIndexProof::End::kLeaf:
      if (value) return Status::InvalidArgument("leaf proof is for an absent tag");
      if (proof.other_tag == tag) return Status::InvalidArgument("leaf proof's other tag is the tag itself");
      if (FirstDifferingBit(proof.other_tag, tag) < k) {
        return Status::InvalidArgument("leaf proof's other tag is not on the tag's path");
      }
      h = SubjectLeafHash(proof.other_tag, proof.other_value);
      break;
  }
  for (size_t d = k; d >= 1; --d) {
    const Hash& sib = proof.siblings[d - 1];
    h = SubjectTagBit(tag, static_cast<unsigned>(d - 1)) == 0 ? SubjectNodeHash(h, sib) : SubjectNodeHash(sib, h);
  }
  if (h != root) return Status::PermissionDenied("index proof does not lead to the commitment's root");
  return Status::OK();
}

// ---------------------------------------------------------------------------
// MemorySubjectNodeStore
//
// Nodes at depth <= 56 are found through an open-addressing (linear
// probing) table of 16-byte slots keyed by (first 7 prefix bytes, depth);
// a slot refers into one of two arenas: 32-byte inner hashes, or 72-byte
// leaves (tag, count, chain; the leaf hash is recomputed on read, one
// SHA-256, to save 32 bytes per subject). Deeper nodes (only tags sharing
// more than 56 bits, i.e. chosen to collide) live in a std::map.

struct MemorySubjectNodeStore::Impl {
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};
  static constexpr uint32_t kLeafBit = 0x80000000u;
  static constexpr unsigned kMaxPackedDepth = 56;

  struct Slot {
    uint64_t key = kEmptyKey;
    uint32_t ref = 0;
  };
  struct LeafRec {
    SubjectTag tag;
    uint64_t count;
    Hash chain;
  };

  std::vector<Slot> slots = std::vector<Slot>(64);
  size_t used = 0;
  std::vector<Hash> inner;
  std::vector<uint32_t> inner_free;
  std::vector<LeafRec> leaves;
  std::vector<uint32_t> leaf_free;
  std::map<std::pair<unsigned, SubjectTag>, uint32_t> deep;

  static uint64_t PackKey(unsigned depth, const SubjectTag& prefix) {
    uint64_t k = 0;
    for (int i = 0; i < 7; ++i) k = (k << 8) | prefix[i];
    return (k << 8) | depth;
  }
  size_t mask() const { return slots.size() - 1; }

  // Find returns the slot holding |key|, or the empty slot ending its probe.
  size_t Find(uint64_t key) const {
    size_t i = Mix64(key) & mask();
    while (slots[i].key != kEmptyKey && slots[i].key != key) i = (i + 1) & mask();
    return i;
  }

  void Grow() {
    std::vector<Slot> old;
    old.swap(slots);
    slots.assign(old.size() * 2, Slot{});
    for (const Slot& s : old) {
      if (s.key == kEmptyKey) continue;
      slots[Find(s.key)] = s;
    }
  }

  // EraseSlot removes slot |i| with backward-shift deletion, so probes
  // never need tombstones.
  void EraseSlot(size_t i) {
    size_t j = i;
    for (;;) {
      slots[i].key = kEmptyKey;
      for (;;) {
        j = (j + 1) & mask();
        if (slots[j].key == kEmptyKey) return;
        size_t home = Mix64(slots[j].key) & mask();
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) break;
      }
      slots[i] = slots[j];
      i = j;
    }
  }

  void Release(uint32_t ref) {
    if (ref & kLeafBit) {
      leaf_free.push_back(ref & ~kLeafBit);
    } else {
      inner_free.push_back(ref);
    }
  }

  uint32_t Store(const SubjectNode& node) {
    if (node.leaf) {
      LeafRec rec{node.tag, node.value.count, node.value.chain};
      uint32_t i;
      if (!leaf_free.empty()) {
        i = leaf_free.back();
        leaf_free.pop_back();
        leaves[i] = rec;
      } else {
        i = static_cast<uint32_t>(leaves.size());
        leaves.push_back(rec);
      }
      return i | kLeafBit;
    }
    uint32_t i;
    if (!inner_free.empty()) {
      i = inner_free.back();
      inner_free.pop_back();
      inner[i] = node.hash;
    } else {
      i = static_cast<uint32_t>(inner.size());
      inner.push_back(node.hash);
    }
    return i;
  }

  // Overwrite replaces the node behind |ref| in place when the kind is
  // unchanged; otherwise releases it and stores anew.
  uint32_t Overwrite(uint32_t ref, const SubjectNode& node) {
    bool was_leaf = (ref & kLeafBit) != 0;
    if (was_leaf == node.leaf) {
      if (node.leaf) {
        leaves[ref & ~kLeafBit] = LeafRec{node.tag, node.value.count, node.value.chain};
      } else {
        inner[ref] = node.hash;
      }
      return ref;
    }
    Release(ref);
    return Store(node);
  }

  SubjectNode Load(uint32_t ref) const {
    if (ref & kLeafBit) {
      const LeafRec& r = leaves[ref & ~kLeafBit];
      SubjectValue v;
      v.count = r.count;
      v.chain = r.chain;
      return MakeLeaf(r.tag, v);
    }
    return MakeInner(inner[ref]);
  }
};

MemorySubjectNodeStore::MemorySubjectNodeStore() : impl_(std::make_unique<Impl>()) {}
MemorySubjectNodeStore::~MemorySubjectNodeStore() = default;

StatusOr<std::optional<SubjectNode>> MemorySubjectNodeStore::GetNode(unsigned depth, const SubjectTag& prefix) {
  if (depth > 256) return Status::InvalidArgument("subject node depth above 256");
  if (depth > Impl::kMaxPackedDepth) {
    auto it = impl_->deep.find({depth, prefix});
    if (it == impl_->deep.end()) return std::optional<SubjectNode>();
    return std::optional<SubjectNode>(impl_->Load(it->second));
  }
  const Impl::Slot& s = impl_->slots[impl_->Find(Impl::PackKey(depth, prefix))];
  if (s.key == Impl::kEmptyKey) return std::optional<SubjectNode>();
  return std::optional<SubjectNode>(impl_->Load(s.ref));
}

Status MemorySubjectNodeStore::PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) {
  if (depth > 256) return Status::InvalidArgument("subject node depth above 256");
  if (depth > Impl::kMaxPackedDepth) {
    auto it = impl_->deep.find({depth, prefix});
    if (it == impl_->deep.end()) {
      impl_->deep.emplace(std::make_pair(depth, prefix), impl_->Store(node));
    } else {
      it->second = impl_->Overwrite(it->second, node);
    }
    return Status::OK();
  }
  uint64_t key = Impl::PackKey(depth, prefix);
  size_t i = impl_->Find(key);
  if (impl_->slots[i].key == key) {
    impl_->slots[i].ref = impl_->Overwrite(impl_->slots[i].ref, node);
    return Status::OK();
  }
  if ((impl_->used + 1) * 10 > impl_->slots.size() * 7) {
    impl_->Grow();
    i = impl_->Find(key);
  }
  impl_->slots[i].key = key;
  impl_->slots[i].ref = impl_->Store(node);
  impl_->used++;
  return Status::OK();
}

Status MemorySubjectNodeStore::DeleteNode(unsigned depth, const SubjectTag& prefix) {
  if (depth > 256) return Status::InvalidArgument("subject node depth above 256");
  if (depth > Impl::kMaxPackedDepth) {
    auto it = impl_->deep.find({depth, prefix});
    if (it != impl_->deep.end()) {
      impl_->Release(it->second);
      impl_->deep.erase(it);
    }
    return Status::OK();
  }
  size_t i = impl_->Find(Impl::PackKey(depth, prefix));
  if (impl_->slots[i].key == Impl::kEmptyKey) return Status::OK();
  impl_->Release(impl_->slots[i].ref);
  impl_->EraseSlot(i);
  impl_->used--;
  return Status::OK();
}

size_t MemorySubjectNodeStore::node_count() const { return impl_->used + impl_->deep.size(); }

// ---------------------------------------------------------------------------
// Tree algorithms

StatusOr<Hash> SubjectIndexRoot(SubjectNodeStore& store) {
  LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> root, store.GetNode(0, SubjectTag{}));
  return HashOrEmpty(root);
}

namespace {

// SubjectUpdater rewrites the subtrees that |tags| (sorted, distinct) fall
// into, depth first, visiting each node on their paths once: it reads a
// node, recurses into the children that receive tags, reads the hash of a
// child that receives none, and writes the node once with its final hash.
// Below a stored leaf or an empty subtree nothing is stored, so those
// subtrees are filled without reading. The nodes written are exactly those
// of the canonical tree (§14): a leaf where a tag is alone, inner nodes
// where two or more tags share the prefix.
class SubjectUpdater {
 public:
  SubjectUpdater(SubjectNodeStore& store, const std::vector<SubjectTag>& tags, const SubjectValueUpdate& fn)
      : store_(store), tags_(tags), fn_(fn) {}

  StatusOr<Hash> Run() {
    if (tags_.empty()) return SubjectIndexRoot(store_);
    LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> root, store_.GetNode(0, SubjectTag{}));
    return Update(0, SubjectTag{}, root, 0, tags_.size());
  }

 private:
  // Old is one of tags_[lo, hi) with the value its stored leaf held.
  struct Old {
    size_t i;
    SubjectValue value;
  };

  // Split returns the first position in [lo, hi) whose tag has bit |d| set.
  size_t Split(unsigned d, size_t lo, size_t hi) const {
    return static_cast<size_t>(
        std::partition_point(tags_.begin() + lo, tags_.begin() + hi, [d](const SubjectTag& t) { return SubjectTagBit(t, d) == 0; }) -
        tags_.begin());
  }

  // Update sets tags_[lo, hi) (lo < hi) in the subtree at (d, prefix), which
  // holds |node| as stored; returns its new hash.
  StatusOr<Hash> Update(unsigned d, const SubjectTag& prefix, const std::optional<SubjectNode>& node, size_t lo, size_t hi) {
    if (!node) return Fill(d, prefix, lo, hi, nullptr, std::nullopt);
    if (node->leaf) {
      // The stored leaf's tag stays in the subtree: updated if it is among
      // the tags, carried down unchanged otherwise.
      auto it = std::lower_bound(tags_.begin() + lo, tags_.begin() + hi, node->tag);
      if (it != tags_.begin() + hi && *it == node->tag)
        return Fill(d, prefix, lo, hi, nullptr, Old{static_cast<size_t>(it - tags_.begin()), node->value});
      return Fill(d, prefix, lo, hi, &*node, std::nullopt);
    }
    if (d >= 256) return Status::Corruption("subject index has an inner node at depth 256");
    size_t mid = Split(d, lo, hi);
    const SubjectTag right_prefix = WithBit(prefix, d);
    LEDGER_ASSIGN_OR_RETURN(Hash left, Child(d + 1, prefix, lo, mid));
    LEDGER_ASSIGN_OR_RETURN(Hash right, Child(d + 1, right_prefix, mid, hi));
    Hash h = SubjectNodeHash(left, right);
    LEDGER_RETURN_IF_ERROR(store_.PutNode(d, prefix, MakeInner(h)));
    return h;
  }

  // Child returns the new hash of a stored inner node's child.
  StatusOr<Hash> Child(unsigned d, const SubjectTag& prefix, size_t lo, size_t hi) {
    LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> node, store_.GetNode(d, prefix));
    if (lo == hi) return HashOrEmpty(node);
    return Update(d, prefix, node, lo, hi);
  }

  // Fill builds the subtree at (d, prefix), stored as empty (nothing is
  // stored there or below), from tags_[lo, hi) plus |carry| (a leaf kept
  // as it is); |old| is the previous value of one of the tags.
  StatusOr<Hash> Fill(unsigned d, const SubjectTag& prefix, size_t lo, size_t hi, const SubjectNode* carry,
                      const std::optional<Old>& old) {
    const size_t n = (hi - lo) + (carry ? 1 : 0);
    if (n == 0) return SubjectEmptyHash();
    if (n == 1) {
      SubjectNode leaf;
      if (carry) {
        leaf = *carry;
      } else {
        std::optional<SubjectValue> before;
        if (old && old->i == lo) before = old->value;
        leaf = MakeLeaf(tags_[lo], fn_(lo, before));
      }
      LEDGER_RETURN_IF_ERROR(store_.PutNode(d, prefix, leaf));
      return leaf.hash;
    }
    if (d >= 256) return Status::Corruption("two subject tags share all 256 bits");
    size_t mid = Split(d, lo, hi);
    const bool carry_right = carry && SubjectTagBit(carry->tag, d) == 1;
    const bool old_right = old && old->i >= mid;
    LEDGER_ASSIGN_OR_RETURN(Hash left, Fill(d + 1, prefix, lo, mid, carry_right ? nullptr : carry,
                                            old_right ? std::nullopt : old));
    LEDGER_ASSIGN_OR_RETURN(Hash right, Fill(d + 1, WithBit(prefix, d), mid, hi, carry_right ? carry : nullptr,
                                             old_right ? old : std::nullopt));
    Hash h = SubjectNodeHash(left, right);
    LEDGER_RETURN_IF_ERROR(store_.PutNode(d, prefix, MakeInner(h)));
    return h;
  }

  SubjectNodeStore& store_;
  const std::vector<SubjectTag>& tags_;
  const SubjectValueUpdate& fn_;
};

}  // namespace

StatusOr<Hash> UpdateSubjectValues(SubjectNodeStore& store, const std::vector<SubjectTag>& tags, const SubjectValueUpdate& fn) {
  for (size_t i = 1; i < tags.size(); ++i) {
    if (!(tags[i - 1] < tags[i])) return Status::InvalidArgument("subject index update tags are not sorted and distinct");
  }
  return SubjectUpdater(store, tags, fn).Run();
}

StatusOr<Hash> ApplySubjectUpdates(SubjectNodeStore& store,
                                   const std::vector<std::pair<SubjectTag, SubjectValue>>& updates) {
  std::vector<size_t> order(updates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return updates[a].first < updates[b].first; });
  std::vector<SubjectTag> tags;
  tags.reserve(updates.size());
  for (size_t i : order) {
    if (!tags.empty() && tags.back() == updates[i].first) {
      return Status::InvalidArgument("a tag appears twice in one subject index update");
    }
    tags.push_back(updates[i].first);
  }
  return UpdateSubjectValues(store, tags, [&](size_t i, const std::optional<SubjectValue>&) { return updates[order[i]].second; });
}

StatusOr<SubjectLookup> ProveSubject(SubjectNodeStore& store, const SubjectTag& tag) {
  SubjectLookup out;
  out.proof.end = SubjectIndexProof::End::kEmpty;
  unsigned d = 0;
  LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> node, store.GetNode(0, SubjectTag{}));
  for (;;) {
    if (!node) {
      out.proof.end = SubjectIndexProof::End::kEmpty;
      return out;
    }
    if (node->leaf) {
      if (node->tag == tag) {
        out.proof.end = SubjectIndexProof::End::kMember;
        out.value = node->value;
      } else {
        out.proof.end = SubjectIndexProof::End::kLeaf;
        out.proof.other_tag = node->tag;
        out.proof.other_value = node->value;
      }
      return out;
    }
    if (d >= 256) return Status::Corruption("subject index has an inner node at depth 256");
    SubjectTag child = SubjectPrefix(tag, d + 1);
    SubjectTag sibling = child;
    sibling[d / 8] ^= static_cast<uint8_t>(0x80u >> (d % 8));
    LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> sib, store.GetNode(d + 1, sibling));
    out.proof.siblings.push_back(HashOrEmpty(sib));
    ++d;
    LEDGER_ASSIGN_OR_RETURN(node, store.GetNode(d, child));
  }
}

StatusOr<std::optional<SubjectValue>> LookupSubjectValue(SubjectNodeStore& store, const SubjectTag& tag) {
  unsigned d = 0;
  LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> node, store.GetNode(0, SubjectTag{}));
  for (;;) {
    if (!node) return std::optional<SubjectValue>();
    if (node->leaf) return node->tag == tag ? std::optional<SubjectValue>(node->value) : std::optional<SubjectValue>();
    if (d >= 256) return Status::Corruption("subject index has an inner node at depth 256");
    ++d;
    LEDGER_ASSIGN_OR_RETURN(node, store.GetNode(d, SubjectPrefix(tag, d)));
  }
}

Hash SubjectIndexReferenceRoot(const std::map<SubjectTag, SubjectValue>& values) {
  std::vector<std::pair<SubjectTag, SubjectValue>> all(values.begin(), values.end());
  // Sorted by tag, so each subtree is a contiguous range [lo, hi).
  std::function<Hash(unsigned, size_t, size_t)> rec = [&](unsigned depth, size_t lo, size_t hi) -> Hash {
    if (lo == hi) return SubjectEmptyHash();
    if (hi - lo == 1) return SubjectLeafHash(all[lo].first, all[lo].second);
    size_t mid = lo;
    while (mid < hi && SubjectTagBit(all[mid].first, depth) == 0) ++mid;
    return SubjectNodeHash(rec(depth + 1, lo, mid), rec(depth + 1, mid, hi));
  };
  return rec(0, 0, all.size());
}

}  // namespace ledger
