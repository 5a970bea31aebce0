#include "ledger/subject_state.h"

#include <algorithm>
#include <cstring>

#include "ledger/ledger_hook.h"
#include "ledger/merkle.h"

namespace ledger {

const char kLastCommitmentKey[] = "i/last";
const char kPendingAccessPrefix[] = "y/";
const char kSubjectChainPrefix[] = "c/";
const char kLegacySubjectAccessPrefix[] = "x/";

Bytes SubjectNodeKey(unsigned depth, const SubjectTag& prefix) {
  // Nodes are grouped in tiles of 8 levels: depths 8b..8b+7 under the same
  // first b bytes share the key prefix "t/" u8(b) || those bytes, and within
  // a tile a node sorts by (its bits of byte b, depth): after its ancestors
  // in the tile, before its subtree. The nodes of one path are then in one
  // tile per 8 levels, so a commitment dirties a few LMDB pages per access
  // instead of one per level (SPEC.md section 10).
  depth = std::min(depth, 256u);
  const unsigned band = depth / 8, within = depth % 8;
  Bytes k = "t/";
  k.push_back(static_cast<char>(band));
  k.append(reinterpret_cast<const char*>(prefix.data()), band);
  const uint8_t mask = static_cast<uint8_t>(0xff00u >> within);  // the top |within| bits
  k.push_back(static_cast<char>(band < 32 ? (prefix[band] & mask) : 0));
  k.push_back(static_cast<char>(within));
  return k;
}

namespace {

// kMigrationStep is how many nodes (or tags) a migration moves per write
// transaction. Small transactions because the new keys land on random
// pages and LMDB keeps a buffer for every page of its largest transaction
// until ledgerd exits (about 8 MiB here instead of tens); each step reads
// through a snapshot of its own, because a snapshot held across the steps
// would keep LMDB from reusing the pages they free (a migration of a
// million subjects grew a 1.3 GB file to 4.7 GB that way).
constexpr size_t kMigrationStep = 2048;

// MigrateSubjectNodes moves the subject tree's nodes from the layout before
// tiles ("s/" u16be(depth) || the first ceil(depth/8) bytes of the prefix)
// to SubjectNodeKey, kMigrationStep nodes per transaction: each moves
// whole nodes, so a crash leaves every node in one place and the next
// start goes on. The tree is read only after this returns.
Status MigrateSubjectNodes(Store& store) {
  while (true) {
    std::vector<std::pair<Bytes, Bytes>> nodes;  // old key, value
    {
      LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
      LEDGER_RETURN_IF_ERROR(reader->ScanState("s/", [&](ByteView key, ByteView value) {
        nodes.emplace_back(key, value);
        return nodes.size() < kMigrationStep;
      }));
    }
    if (nodes.empty()) return Status::OK();
    LEDGER_ASSIGN_OR_RETURN(auto batch, store.BeginWrite());
    for (const auto& [key, value] : nodes) {
      if (key.size() < 4) return Status::Corruption("subject node key of the old layout is malformed");
      const unsigned depth = static_cast<uint8_t>(key[2]) << 8 | static_cast<uint8_t>(key[3]);
      if (depth > 256 || key.size() != 4 + (depth + 7) / 8)
        return Status::Corruption("subject node key of the old layout is malformed");
      SubjectTag prefix{};
      std::memcpy(prefix.data(), key.data() + 4, key.size() - 4);
      LEDGER_RETURN_IF_ERROR(batch->PutState(SubjectNodeKey(depth, prefix), value));
      LEDGER_RETURN_IF_ERROR(batch->DeleteState(key));
    }
    LEDGER_RETURN_IF_ERROR(batch->Commit());
  }
}

}  // namespace

Bytes EncodeSubjectNode(const SubjectNode& node) {
  Bytes v;
  if (node.leaf) {
    v.push_back('\x01');
    v.append(HashView(node.tag));
    v.append(EncodeSubjectValue(node.value));
    AppendU64(&v, node.last_index);
  } else {
    v.push_back('\x00');
    v.append(HashView(node.hash));
  }
  return v;
}

StatusOr<SubjectNode> DecodeSubjectNode(ByteView value) {
  SubjectNode n;
  if (value.size() == 33 && value[0] == '\x00') {
    std::memcpy(n.hash.data(), value.data() + 1, 32);
    return n;
  }
  // A leaf: with its last index, or without (the layout before 2026-12-02).
  constexpr size_t kLegacyLeafSize = 1 + 32 + kSubjectValueSize;
  if ((value.size() == kLegacyLeafSize || value.size() == kLegacyLeafSize + 8) && value[0] == '\x01') {
    n.leaf = true;
    std::memcpy(n.tag.data(), value.data() + 1, 32);
    auto v = DecodeSubjectValue(value.substr(33, kSubjectValueSize));
    if (!v.ok()) return Status::Corruption("subject index node value is malformed");
    n.value = *v;
    n.hash = SubjectLeafHash(n.tag, n.value);
    n.last_index = value.size() == kLegacyLeafSize ? kUnknownLastIndex : LoadU64(value.data() + kLegacyLeafSize);
    return n;
  }
  return Status::Corruption("subject index node value is malformed");
}

Bytes SubjectChainKey(uint64_t index) {
  Bytes k = kSubjectChainPrefix;
  AppendU64(&k, index);
  return k;
}

Bytes LegacySubjectAccessKey(const SubjectTag& tag, uint64_t index) {
  Bytes k = kLegacySubjectAccessPrefix;
  k.append(HashView(tag));
  AppendU64(&k, index);
  return k;
}

Bytes PendingAccessKey(uint64_t index) {
  Bytes k = kPendingAccessPrefix;
  AppendU64(&k, index);
  return k;
}

Bytes PolicyHistoryPrefix(const std::string& holder, const std::string& accessor) {
  return "q/" + holder + "/" + accessor + "/";
}

Bytes PolicyHistoryKey(const std::string& holder, const std::string& accessor, uint64_t index) {
  Bytes k = PolicyHistoryPrefix(holder, accessor);
  AppendU64(&k, index);
  return k;
}

StatusOr<std::optional<LastCommitment>> ReadLastCommitment(StateStore& state) {
  LEDGER_ASSIGN_OR_RETURN(auto v, state.Get(kLastCommitmentKey));
  if (!v) return std::optional<LastCommitment>();
  auto bad = [] { return Status::Corruption("derived state value for i/last is malformed"); };
  size_t a = v->find(' ');
  if (a == std::string::npos) return bad();
  size_t b = v->find(' ', a + 1);
  if (b == std::string::npos) return bad();
  auto index = ParseUint64(std::string_view(*v).substr(0, a));
  auto subjects = ParseUint64(std::string_view(*v).substr(a + 1, b - a - 1));
  auto accesses = ParseUint64(std::string_view(*v).substr(b + 1));
  if (!index.ok() || !subjects.ok() || !accesses.ok()) return bad();
  return std::optional<LastCommitment>(LastCommitment{*index, *subjects, *accesses});
}

// --- node stores ------------------------------------------------------------

StatusOr<std::optional<SubjectNode>> BatchSubjectNodeStore::GetNode(unsigned depth, const SubjectTag& prefix) {
  LEDGER_ASSIGN_OR_RETURN(auto v, batch_.GetState(SubjectNodeKey(depth, prefix)));
  if (!v) return std::optional<SubjectNode>();
  LEDGER_ASSIGN_OR_RETURN(SubjectNode n, DecodeSubjectNode(*v));
  return std::optional<SubjectNode>(n);
}

Status BatchSubjectNodeStore::PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) {
  return batch_.PutState(SubjectNodeKey(depth, prefix), EncodeSubjectNode(node));
}

Status BatchSubjectNodeStore::DeleteNode(unsigned depth, const SubjectTag& prefix) {
  return batch_.DeleteState(SubjectNodeKey(depth, prefix));
}

StatusOr<std::optional<SubjectNode>> StateSubjectNodeStore::GetNode(unsigned depth, const SubjectTag& prefix) {
  LEDGER_ASSIGN_OR_RETURN(auto v, state_.Get(SubjectNodeKey(depth, prefix)));
  if (!v) return std::optional<SubjectNode>();
  LEDGER_ASSIGN_OR_RETURN(SubjectNode n, DecodeSubjectNode(*v));
  return std::optional<SubjectNode>(n);
}

Status StateSubjectNodeStore::PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) {
  return state_.Put(SubjectNodeKey(depth, prefix), EncodeSubjectNode(node));
}

Status StateSubjectNodeStore::DeleteNode(unsigned depth, const SubjectTag& prefix) {
  return state_.Delete(SubjectNodeKey(depth, prefix));
}

namespace {

// FoundLeaf is a tag's leaf and where it is stored.
struct FoundLeaf {
  unsigned depth;
  SubjectNode node;
};

// FindSubjectLeaf returns |tag|'s leaf in |store|, or nullopt if the tag is
// not in the tree. Along a tag's path the nodes are inner down to the
// path's end (the tag's leaf, another tag's leaf, or an empty subtree) and
// absent from there on, so a binary search over the depth finds the end in
// about 9 reads instead of one per level.
StatusOr<std::optional<FoundLeaf>> FindSubjectLeaf(SubjectNodeStore& store, const SubjectTag& tag) {
  // Inner above |lo|; the end is at a depth in [lo, hi]; absent at hi + 1.
  unsigned lo = 0, hi = 256;
  while (lo <= hi) {
    const unsigned d = lo + (hi - lo) / 2;
    LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> node, store.GetNode(d, SubjectPrefix(tag, d)));
    if (node && node->leaf) {
      if (node->tag != tag) return std::optional<FoundLeaf>();
      return std::optional<FoundLeaf>(FoundLeaf{d, *node});
    }
    if (node) {
      if (d == 256) return Status::Corruption("subject index has an inner node at depth 256");
      lo = d + 1;  // inner: the end is deeper
    } else {
      if (d == lo) return std::optional<FoundLeaf>();  // an empty subtree ends the path here
      hi = d - 1;  // absent: the end is at or above d
    }
  }
  return std::optional<FoundLeaf>();  // inner down to lo - 1, absent at lo: an empty end
}

// ListHeadNodeStore passes a commitment's tree updates through to |nodes|,
// writing each leaf of a |pending| tag with its new last index (the last
// of its pending indices) and noting, for each such leaf it reads, the
// last index stored before. A leaf it moves unchanged keeps its own.
class ListHeadNodeStore : public SubjectNodeStore {
 public:
  ListHeadNodeStore(SubjectNodeStore& nodes, const std::map<SubjectTag, std::vector<uint64_t>>& pending)
      : nodes_(nodes), pending_(pending) {}

  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override {
    LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> node, nodes_.GetNode(depth, prefix));
    if (node && node->leaf && pending_.count(node->tag) != 0) read_last_[node->tag] = node->last_index;
    return node;
  }
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override {
    if (!node.leaf) return nodes_.PutNode(depth, prefix, node);
    auto it = pending_.find(node.tag);
    if (it == pending_.end()) {
      if (node.last_index == kUnknownLastIndex) return NotMigrated();
      return nodes_.PutNode(depth, prefix, node);
    }
    if (it->second.empty()) return Status::InvalidArgument("a pending subject tag has no accesses");
    SubjectNode updated = node;
    updated.last_index = it->second.back();
    return nodes_.PutNode(depth, prefix, updated);
  }
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override { return nodes_.DeleteNode(depth, prefix); }

  // LastBefore returns the last index that |tag|'s leaf held when read.
  StatusOr<uint64_t> LastBefore(const SubjectTag& tag) const {
    auto it = read_last_.find(tag);
    if (it == read_last_.end()) return Status::Internal("a subject tag's leaf was updated without being read");
    if (it->second == kUnknownLastIndex) return NotMigrated();
    return it->second;
  }

 private:
  static Status NotMigrated() {
    return Status::Corruption("a subject index leaf has no last index (the layout before 2026-12-02, not migrated)");
  }

  SubjectNodeStore& nodes_;
  const std::map<SubjectTag, std::vector<uint64_t>>& pending_;
  std::map<SubjectTag, uint64_t> read_last_;
};

// ChainValue is a c/ key's value: "" for a tag's first access, else the
// previous one's index.
Bytes ChainValue(const std::optional<uint64_t>& previous) {
  Bytes v;
  if (previous) AppendU64(&v, *previous);
  return v;
}

}  // namespace

StatusOr<SubjectTreeChange> UpdateSubjectTree(SubjectNodeStore& tree,
                                              const std::map<SubjectTag, std::vector<uint64_t>>& pending) {
  ListHeadNodeStore store(tree, pending);
  // One depth-first pass over the pending tags (sorted: a map), reading
  // each tag's current value where the walk reaches its leaf.
  std::vector<SubjectTag> tags;
  std::vector<const std::vector<uint64_t>*> lists;
  tags.reserve(pending.size());
  lists.reserve(pending.size());
  for (const auto& [tag, indices] : pending) {
    tags.push_back(tag);
    lists.push_back(&indices);
  }
  SubjectTreeChange change;
  std::vector<bool> existed(tags.size(), false);
  auto extend = [&](size_t i, const std::optional<SubjectValue>& current) {
    SubjectValue value = current ? *current : SubjectValue{};
    if (!current) change.new_subjects++;
    existed[i] = current.has_value();
    for (uint64_t index : *lists[i]) value = ExtendSubjectValue(value, index);
    change.new_accesses += lists[i]->size();
    return value;
  };
  LEDGER_ASSIGN_OR_RETURN(change.root, UpdateSubjectValues(store, tags, extend));
  change.last_before.resize(tags.size());
  for (size_t t = 0; t < tags.size(); t++) {
    if (!existed[t]) continue;
    LEDGER_ASSIGN_OR_RETURN(uint64_t last_before, store.LastBefore(tags[t]));
    if (!lists[t]->empty() && last_before >= lists[t]->front())
      return Status::InvalidArgument("subject accesses are not above those in the index");
    change.last_before[t] = last_before;
  }
  return change;
}

StatusOr<IndexRecord> CommitSubjectAccesses(SubjectNodeStore& tree, StateStore& state,
                                            const std::map<SubjectTag, std::vector<uint64_t>>& pending,
                                            uint64_t position) {
  LEDGER_ASSIGN_OR_RETURN(auto last, ReadLastCommitment(state));
  LEDGER_ASSIGN_OR_RETURN(SubjectTreeChange change, UpdateSubjectTree(tree, pending));
  IndexRecord r;
  r.size = position;
  r.root = change.root;
  r.subjects = (last ? last->subjects : 0) + change.new_subjects;
  r.accesses = (last ? last->accesses : 0) + change.new_accesses;
  // The covered accesses: each one's c/ key links it to its tag's previous
  // access (the leaf's last index before, for the first), and its y/ key
  // goes; both in index order, so they land at the ends of their ranges.
  std::vector<std::pair<uint64_t, std::optional<uint64_t>>> links;  // index, previous
  links.reserve(change.new_accesses);
  size_t t = 0;
  for (const auto& [tag, indices] : pending) {
    std::optional<uint64_t> previous = change.last_before[t++];
    for (uint64_t i : indices) {
      if (previous && *previous >= i) return Status::InvalidArgument("subject accesses are not above those in the index");
      links.emplace_back(i, previous);
      previous = i;
    }
  }
  std::sort(links.begin(), links.end());
  for (const auto& [i, previous] : links) LEDGER_RETURN_IF_ERROR(state.Put(SubjectChainKey(i), ChainValue(previous)));
  for (const auto& link : links) LEDGER_RETURN_IF_ERROR(state.Delete(PendingAccessKey(link.first)));
  LEDGER_RETURN_IF_ERROR(state.Put(kLastCommitmentKey, std::to_string(position) + " " + std::to_string(r.subjects) + " " +
                                                           std::to_string(r.accesses)));
  return r;
}

Status SubjectIndexReplay::Add(const ParsedEntry& entry, uint64_t index) {
  switch (entry.kind) {
    case EntryKind::kPolicy: {
      const PolicyRecord& r = entry.policy();
      return state_.Put(PolicyHistoryKey(r.holder, r.accessor, index), std::to_string(r.version));
    }
    case EntryKind::kAccess: {
      LEDGER_ASSIGN_OR_RETURN(SubjectTag tag, HashFromBytes(entry.access().subject));
      pending_[tag].push_back(index);
      return state_.Put(PendingAccessKey(index), HashView(tag));
    }
    case EntryKind::kIndex: {
      StateSubjectNodeStore nodes(state_);
      LEDGER_ASSIGN_OR_RETURN(IndexRecord rebuilt, CommitSubjectAccesses(nodes, state_, pending_, index));
      pending_.clear();
      const IndexRecord& got = entry.index();
      if (got.size != rebuilt.size || got.root != rebuilt.root || got.subjects != rebuilt.subjects ||
          got.accesses != rebuilt.accesses)
        return Status::Corruption("index commitment " + std::to_string(index) + " differs from the index rebuilt by replay");
      return Status::OK();
    }
    default:
      return Status::OK();
  }
}

StatusOr<std::vector<uint64_t>> CoveredSubjectAccesses(const LogReader& reader, SubjectNodeStore& tree,
                                                       const SubjectTag& tag) {
  LEDGER_ASSIGN_OR_RETURN(std::optional<FoundLeaf> found, FindSubjectLeaf(tree, tag));
  std::vector<uint64_t> out;
  if (!found) return out;
  const SubjectNode& leaf = found->node;
  if (leaf.last_index == kUnknownLastIndex)
    return Status::Corruption("a subject index leaf has no last index (the layout before 2026-12-02, not migrated)");
  const uint64_t count = leaf.value.count;
  auto bad = [](const std::string& why) { return Status::Corruption("a subject's list of accesses is broken: " + why); };
  std::optional<uint64_t> at = leaf.last_index;
  while (at) {
    if (out.size() >= count) return bad("longer than its count " + std::to_string(count));
    out.push_back(*at);
    LEDGER_ASSIGN_OR_RETURN(std::optional<Bytes> link, reader.GetState(SubjectChainKey(*at)));
    if (!link) return bad("no c/ key for index " + std::to_string(*at));
    if (link->empty()) {
      at.reset();
    } else if (link->size() == 8 && LoadU64(link->data()) < *at) {
      at = LoadU64(link->data());
    } else {
      return bad("the c/ value of index " + std::to_string(*at) + " is malformed");
    }
  }
  if (out.size() != count) return bad(std::to_string(out.size()) + " listed, the index counts " + std::to_string(count));
  std::reverse(out.begin(), out.end());
  if (SubjectValueOf(out) != leaf.value) return bad("its hash chain differs from the index's value");
  return out;
}

Status SetSubjectTreeVersion(SubjectTreeView& view, const LogReader& reader) {
  ReaderStateStore state(reader);
  LEDGER_ASSIGN_OR_RETURN(auto last, ReadLastCommitment(state));
  return view.SetVersion(last ? last->index : 0);
}

StatusOr<std::vector<uint64_t>> PendingSubjectAccesses(const LogReader& reader, const SubjectTag& tag, size_t max) {
  const Bytes prefix = kPendingAccessPrefix;
  std::vector<uint64_t> out;
  bool malformed = false;
  LEDGER_RETURN_IF_ERROR(reader.ForEachState(prefix, [&](ByteView key, ByteView value) {
    if (key.size() != prefix.size() + 8 || value.size() != 32) {
      malformed = true;
      return;
    }
    if (out.size() < max && std::memcmp(value.data(), tag.data(), 32) == 0)
      out.push_back(LoadU64(key.data() + prefix.size()));
  }));
  if (malformed) return Status::Corruption("a pending subject access key is malformed");
  return out;
}

StatusOr<std::optional<uint64_t>> PolicyAt(const LogReader& reader, const std::string& holder,
                                           const std::string& accessor, uint64_t index) {
  Bytes prefix = PolicyHistoryPrefix(holder, accessor);
  std::optional<uint64_t> best;
  bool malformed = false;
  LEDGER_RETURN_IF_ERROR(reader.ForEachState(prefix, [&](ByteView key, ByteView) {
    if (key.size() != prefix.size() + 8) {
      malformed = true;
      return;
    }
    uint64_t p = LoadU64(key.data() + prefix.size());
    if (p < index && (!best || p > *best)) best = p;
  }));
  if (malformed) return Status::Corruption("derived state key under " + prefix + " is malformed");
  return best;
}

// --- SubjectIndexer ---------------------------------------------------------

namespace {

// AccessTag returns the subject tag of an access entry's payload.
StatusOr<SubjectTag> AccessTag(const AccessRecord& r) { return HashFromBytes(r.subject); }

}  // namespace

// NodeCache holds, for the committed tree, what is stored at each (depth,
// prefix) with depth <= max_depth: slot (2^depth - 1) + the prefix's first
// |depth| bits. A slot is unknown until read from the tree (or until the
// batch that writes it commits). A slot the batch in progress writes is
// marked written (read from the update again, never filled from a read,
// since the read sees the uncommitted write) and its new content is
// staged: kept when the batch commits, forgotten (unknown) when it does
// not. Only the sequencer thread makes new versions of the tree, all
// through this (Recover's replay runs before and resets the cache), so a
// known slot is what the latest committed version holds.
struct SubjectIndexer::NodeCache {
  enum : uint8_t { kUnknown = 0, kEmpty = 1, kInner = 2, kWritten = 3 };
  struct Staged {
    size_t slot;
    uint8_t state;
    Hash hash;
  };

  explicit NodeCache(unsigned max) : max_depth(max), state((size_t{2} << max) - 1), hash(state.size()) {}

  static size_t Slot(unsigned depth, const SubjectTag& prefix) {
    const uint32_t top = static_cast<uint32_t>(prefix[0]) << 24 | static_cast<uint32_t>(prefix[1]) << 16 |
                         static_cast<uint32_t>(prefix[2]) << 8 | prefix[3];
    return ((size_t{1} << depth) - 1) + (depth == 0 ? 0 : top >> (32 - depth));
  }
  void Stage(unsigned depth, const SubjectTag& prefix, uint8_t new_state, const Hash& h) {
    const size_t slot = Slot(depth, prefix);
    state[slot] = kWritten;
    staged.push_back(Staged{slot, new_state, h});
  }
  // Finish ends the batch: its staged slots become known if it committed.
  void Finish(bool committed) {
    for (const Staged& s : staged) {
      state[s.slot] = committed ? s.state : static_cast<uint8_t>(kUnknown);
      if (committed) hash[s.slot] = s.hash;
    }
    staged.clear();
  }

  const unsigned max_depth;
  std::vector<uint8_t> state;
  std::vector<Hash> hash;
  std::vector<Staged> staged;
};

// CachedNodeStore is a commitment's tree update through the NodeCache.
class SubjectIndexer::CachedNodeStore : public SubjectNodeStore {
 public:
  CachedNodeStore(SubjectNodeStore& inner, NodeCache& cache) : batch_(inner), cache_(cache) {}

  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override {
    if (depth > cache_.max_depth) return batch_.GetNode(depth, prefix);
    const size_t slot = NodeCache::Slot(depth, prefix);
    const uint8_t st = cache_.state[slot];
    if (st == NodeCache::kEmpty) return std::optional<SubjectNode>();
    if (st == NodeCache::kInner) {
      SubjectNode n;
      n.hash = cache_.hash[slot];
      return std::optional<SubjectNode>(n);
    }
    LEDGER_ASSIGN_OR_RETURN(std::optional<SubjectNode> node, batch_.GetNode(depth, prefix));
    if (st == NodeCache::kUnknown) {
      if (!node) {
        cache_.state[slot] = NodeCache::kEmpty;
      } else if (!node->leaf) {
        cache_.state[slot] = NodeCache::kInner;
        cache_.hash[slot] = node->hash;
      }
    }
    return node;
  }
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override {
    LEDGER_RETURN_IF_ERROR(batch_.PutNode(depth, prefix, node));
    if (depth <= cache_.max_depth)
      cache_.Stage(depth, prefix, node.leaf ? NodeCache::kUnknown : NodeCache::kInner, node.hash);
    return Status::OK();
  }
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override {
    LEDGER_RETURN_IF_ERROR(batch_.DeleteNode(depth, prefix));
    if (depth <= cache_.max_depth) cache_.Stage(depth, prefix, NodeCache::kEmpty, Hash{});
    return Status::OK();
  }

 private:
  SubjectNodeStore& batch_;
  NodeCache& cache_;
};

SubjectIndexer::SubjectIndexer(const NoteSigner* log_key, SubjectTreeStore* tree, SubjectIndexerOptions options)
    : log_key_(log_key),
      tree_(tree),
      interval_ms_(options.interval.count()),
      max_accesses_(std::max<size_t>(1, options.max_accesses)),
      node_cache_depth_(std::min(options.node_cache_depth, 20)) {}

SubjectIndexer::~SubjectIndexer() = default;

namespace {

// MigrateSubjectAccessLists moves the lists of the layout before 2026-12-02
// (x/ tag u64be(index) keys, leaves without a last index) to c/ keys and
// leaves with their last index, kMigrationStep whole tags per transaction:
// a crash leaves each tag in one layout, and the next start goes on with
// the x/ keys left. A tag's x/ keys at or above the latest commitment (a
// data directory from before y/ keys) are dropped: those accesses are
// pending and found again from the entries. Corruption if a tag's covered
// x/ keys are not exactly its leaf's list. Returns the number of tags
// moved.
StatusOr<uint64_t> MigrateSubjectAccessLists(Store& store) {
  const Bytes prefix = kLegacySubjectAccessPrefix;
  uint64_t covered = 0, moved = 0;
  while (true) {
    // The next tags' x/ keys (whole tags), through a snapshot of their own.
    std::vector<std::pair<SubjectTag, std::vector<uint64_t>>> tags;  // indices ascending (key order)
    {
      LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
      if (moved == 0) {
        ReaderStateStore committed(*reader);
        LEDGER_ASSIGN_OR_RETURN(auto last, ReadLastCommitment(committed));
        covered = last ? last->index : 0;
      }
      bool malformed = false;
      LEDGER_RETURN_IF_ERROR(reader->ScanState(prefix, [&](ByteView key, ByteView) {
        if (key.size() != prefix.size() + 32 + 8) {
          malformed = true;
          return false;
        }
        SubjectTag tag;
        std::memcpy(tag.data(), key.data() + prefix.size(), 32);
        if (tags.empty() || tags.back().first != tag) {
          if (tags.size() == kMigrationStep) return false;
          tags.emplace_back(tag, std::vector<uint64_t>());
        }
        tags.back().second.push_back(LoadU64(key.data() + prefix.size() + 32));
        return true;
      }));
      if (malformed) return Status::Corruption("a subject access key of the layout before 2026-12-02 is malformed");
    }
    if (tags.empty()) return moved;
    LEDGER_ASSIGN_OR_RETURN(auto batch, store.BeginWrite());
    BatchSubjectNodeStore nodes(*batch);
    for (const auto& [tag, indices] : tags) {
      std::vector<uint64_t> kept;
      for (uint64_t i : indices) {
        LEDGER_RETURN_IF_ERROR(batch->DeleteState(LegacySubjectAccessKey(tag, i)));
        if (i < covered) kept.push_back(i);
      }
      if (kept.empty()) continue;
      LEDGER_ASSIGN_OR_RETURN(std::optional<FoundLeaf> found, FindSubjectLeaf(nodes, tag));
      if (!found || found->node.value != SubjectValueOf(kept))
        return Status::Corruption("migrating the subject index: a tag's x/ keys are not its leaf's list of accesses");
      std::optional<uint64_t> previous;
      for (uint64_t i : kept) {
        LEDGER_RETURN_IF_ERROR(batch->PutState(SubjectChainKey(i), ChainValue(previous)));
        previous = i;
      }
      found->node.last_index = kept.back();
      LEDGER_RETURN_IF_ERROR(nodes.PutNode(found->depth, SubjectPrefix(tag, found->depth), found->node));
    }
    LEDGER_RETURN_IF_ERROR(batch->Commit());
    moved += tags.size();
  }
}

}  // namespace

namespace {

// MoveTreeOut moves the tree's t/ keys (storage format 4) out of the log's
// state into |tree| as the version of the latest commitment: imported
// first, then deleted from the state in steps (a crash in between leaves
// an imported tree, and the next start finishes the deletion). Returns the
// number of nodes moved.
StatusOr<uint64_t> MoveTreeOut(Store& store, SubjectTreeStore& tree) {
  const Bytes prefix = "t/";
  bool any = false;
  uint64_t version = 0;
  {
    LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
    LEDGER_RETURN_IF_ERROR(reader->ScanState(prefix, [&](ByteView, ByteView) {
      any = true;
      return false;
    }));
    if (!any) return uint64_t{0};
    ReaderStateStore state(*reader);
    LEDGER_ASSIGN_OR_RETURN(auto last, ReadLastCommitment(state));
    version = last ? last->index : 0;
  }
  uint64_t moved = 0;
  if (tree.persisted_version() == 0 && tree.committed_version() == 0) {
    LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
    LEDGER_RETURN_IF_ERROR(tree.Import(
        [&](const std::function<Status(ByteView, ByteView)>& put) {
          Status s;
          LEDGER_RETURN_IF_ERROR(reader->ScanState(prefix, [&](ByteView key, ByteView value) {
            s = put(key, value);
            moved++;
            return s.ok();
          }));
          return s;
        },
        version));
  }
  // Deleted in steps of sequential keys, each through a snapshot of its own.
  constexpr size_t kDeleteStep = 16384;
  while (true) {
    std::vector<Bytes> keys;
    {
      LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
      LEDGER_RETURN_IF_ERROR(reader->ScanState(prefix, [&](ByteView key, ByteView) {
        keys.emplace_back(key);
        return keys.size() < kDeleteStep;
      }));
    }
    if (keys.empty()) return moved;
    LEDGER_ASSIGN_OR_RETURN(auto batch, store.BeginWrite());
    for (const Bytes& key : keys) LEDGER_RETURN_IF_ERROR(batch->DeleteState(key));
    LEDGER_RETURN_IF_ERROR(batch->Commit());
  }
}

// ReplayTree recomputes, into |tree|, the versions of the commitments after
// its persisted one up to |latest| (the latest commitment's index) from the
// log's entries, checking each root against the commitment's.
Status ReplayTree(const LogReader& reader, SubjectTreeStore& tree, std::optional<uint64_t> latest) {
  const uint64_t from = tree.persisted_version();
  if (!latest) {
    if (from == 0) return Status::OK();
    return Status::Corruption("the persisted subject tree (commitment " + std::to_string(from) +
                              ") is ahead of the log, which has no commitment");
  }
  const uint64_t last = *latest;
  if (from > last)
    return Status::Corruption("the persisted subject tree (commitment " + std::to_string(from) +
                              ") is ahead of the log's latest commitment (" + std::to_string(last) + ")");
  if (from == last) return Status::OK();
  std::map<SubjectTag, std::vector<uint64_t>> pending;
  constexpr uint64_t kChunk = 1024;
  for (uint64_t i = from == 0 ? 0 : from + 1; i <= last; i += kChunk) {
    const uint64_t n = std::min(kChunk, last + 1 - i);
    LEDGER_ASSIGN_OR_RETURN(auto entries, reader.GetEntries(i, n));
    for (uint64_t j = 0; j < n; j++) {
      const uint64_t index = i + j;
      auto env = ParseEnvelope(entries[j]);
      if (!env.ok()) return Status::Corruption("entry " + std::to_string(index) + " does not parse: " + env.status().message());
      if (env->payload_type == kAccessPayloadType) {
        auto r = ParseAccess(env->payload);
        if (!r.ok()) return Status::Corruption("entry " + std::to_string(index) + " does not parse: " + r.status().message());
        LEDGER_ASSIGN_OR_RETURN(SubjectTag tag, AccessTag(*r));
        pending[tag].push_back(index);
      } else if (env->payload_type == kIndexPayloadType) {
        auto r = ParseIndex(env->payload);
        if (!r.ok()) return Status::Corruption("entry " + std::to_string(index) + " does not parse: " + r.status().message());
        LEDGER_ASSIGN_OR_RETURN(std::unique_ptr<SubjectTreeUpdate> update, tree.BeginUpdate(index));
        LEDGER_ASSIGN_OR_RETURN(SubjectTreeChange change, UpdateSubjectTree(*update, pending));
        if (change.root != r->root)
          return Status::Corruption("index commitment " + std::to_string(index) +
                                    " differs from the subject tree recomputed from the log");
        LEDGER_RETURN_IF_ERROR(update->Publish());
        tree.Commit(index);
        pending.clear();
      }
    }
  }
  return Status::OK();
}

}  // namespace

Status SubjectIndexer::Recover(Store& store) {
  LEDGER_RETURN_IF_ERROR(MigrateSubjectNodes(store));
  LEDGER_ASSIGN_OR_RETURN(migrated_lists_, MigrateSubjectAccessLists(store));
  LEDGER_ASSIGN_OR_RETURN(moved_nodes_, MoveTreeOut(store, *tree_));
  {
    LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
    ReaderStateStore state(*reader);
    LEDGER_ASSIGN_OR_RETURN(auto last, ReadLastCommitment(state));
    LEDGER_RETURN_IF_ERROR(ReplayTree(*reader, *tree_, last ? std::optional<uint64_t>(last->index) : std::nullopt));
  }
  pending_.clear();
  pending_count_ = 0;
  first_pending_.reset();
  batch_pending_.clear();
  batch_first_.reset();
  batch_commits_ = false;
  retry_at_.reset();
  node_cache_.reset();  // the migrations above wrote t/ keys

  LEDGER_ASSIGN_OR_RETURN(auto reader, store.Read());
  ReaderStateStore state(*reader);
  LEDGER_ASSIGN_OR_RETURN(auto last, ReadLastCommitment(state));
  const uint64_t start = last ? last->index + 1 : 0;
  const uint64_t size = reader->size();
  // The y/ keys of the pending accesses may be missing (a data directory
  // from before they existed), and without any commitment the q/ keys too
  // (a log from before the subject index): write them, idempotently, while
  // scanning; a y/ key present already is not rewritten.
  std::unique_ptr<WriteBatch> batch;
  bool wrote = false;
  if (start < size) {
    LEDGER_ASSIGN_OR_RETURN(batch, store.BeginWrite());
  }
  constexpr uint64_t kChunk = 1024;
  for (uint64_t i = start; i < size; i += kChunk) {
    uint64_t n = std::min(kChunk, size - i);
    LEDGER_ASSIGN_OR_RETURN(auto entries, reader->GetEntries(i, n));
    for (uint64_t j = 0; j < n; j++) {
      // Logged entries were checked when appended: parse, don't re-verify.
      auto env = ParseEnvelope(entries[j]);
      if (!env.ok()) return Status::Corruption("entry " + std::to_string(i + j) + " does not parse: " + env.status().message());
      if (env->payload_type == kAccessPayloadType) {
        auto r = ParseAccess(env->payload);
        if (!r.ok()) return Status::Corruption("entry " + std::to_string(i + j) + " does not parse: " + r.status().message());
        LEDGER_ASSIGN_OR_RETURN(SubjectTag tag, AccessTag(*r));
        pending_[tag].push_back(i + j);
        pending_count_++;
        Bytes key = PendingAccessKey(i + j);
        LEDGER_ASSIGN_OR_RETURN(auto have, batch->GetState(key));
        if (!have || *have != HashView(tag)) {
          LEDGER_RETURN_IF_ERROR(batch->PutState(key, HashView(tag)));
          wrote = true;
        }
      } else if (!last && env->payload_type == kPolicyPayloadType) {
        auto r = ParsePolicy(env->payload);
        if (!r.ok()) return Status::Corruption("entry " + std::to_string(i + j) + " does not parse: " + r.status().message());
        Bytes key = PolicyHistoryKey(r->holder, r->accessor, i + j);
        LEDGER_ASSIGN_OR_RETURN(auto have, batch->GetState(key));
        if (!have || *have != std::to_string(r->version)) {
          LEDGER_RETURN_IF_ERROR(batch->PutState(key, std::to_string(r->version)));
          wrote = true;
        }
      }
    }
  }
  // Nothing to write: abort (the batch's destructor) rather than commit.
  if (batch && wrote) LEDGER_RETURN_IF_ERROR(batch->Commit());
  if (pending_count_ > 0) first_pending_ = std::chrono::steady_clock::now();
  return Status::OK();
}

Status SubjectIndexer::Applied(WriteBatch& batch, const ParsedEntry& entry, uint64_t index) {
  if (entry.kind == EntryKind::kPolicy) {
    const PolicyRecord& r = entry.policy();
    return batch.PutState(PolicyHistoryKey(r.holder, r.accessor, index), std::to_string(r.version));
  }
  if (entry.kind != EntryKind::kAccess) return Status::OK();
  LEDGER_ASSIGN_OR_RETURN(SubjectTag tag, AccessTag(entry.access()));
  LEDGER_RETURN_IF_ERROR(batch.PutState(PendingAccessKey(index), HashView(tag)));
  if (batch_pending_.empty()) batch_first_ = std::chrono::steady_clock::now();
  batch_pending_.emplace_back(tag, index);
  return Status::OK();
}

std::optional<std::chrono::steady_clock::time_point> SubjectIndexer::NextWake() const {
  if (pending_count_ == 0 || !first_pending_) return std::nullopt;
  auto due = *first_pending_ + interval();
  if (pending_count_ >= max_accesses_) due = std::min(due, std::chrono::steady_clock::now());
  if (retry_at_ && *retry_at_ > due) due = *retry_at_;
  return due;
}

Status SubjectIndexer::BatchEnd(WriteBatch& batch, const LedgerRules& rules, int64_t now, uint64_t* appended) {
  *appended = 0;
  batch_commits_ = false;
  if (pending_count_ == 0 && batch_pending_.empty()) return Status::OK();
  auto clock = std::chrono::steady_clock::now();
  auto first = first_pending_ ? *first_pending_ : *batch_first_;
  if (clock < first + interval() && pending_count_ + batch_pending_.size() < max_accesses_) return Status::OK();
  if (retry_at_ && clock < *retry_at_) return Status::OK();
  // From here a failure (of this or of the batch) means retry later.
  batch_commits_ = true;

  // Every access not yet in the index, per tag in log order.
  std::map<SubjectTag, std::vector<uint64_t>> all = pending_;
  for (const auto& [tag, index] : batch_pending_) all[tag].push_back(index);

  BatchStateStore state(batch);
  // The commitment's index is the batch's size: version |position| of the
  // tree (SubjectTreeStore), published before the batch commits.
  const uint64_t position = batch.size();
  LEDGER_ASSIGN_OR_RETURN(std::unique_ptr<SubjectTreeUpdate> update, tree_->BeginUpdate(position));
  std::optional<CachedNodeStore> cached;
  if (node_cache_depth_ >= 0) {
    if (!node_cache_) node_cache_ = std::make_unique<NodeCache>(static_cast<unsigned>(node_cache_depth_));
    cached.emplace(*update, *node_cache_);
  }
  SubjectNodeStore& nodes = cached ? static_cast<SubjectNodeStore&>(*cached) : *update;
  LEDGER_ASSIGN_OR_RETURN(IndexRecord r, CommitSubjectAccesses(nodes, state, all, position));
  r.time = FormatTime(now);
  Bytes entry = SignEnvelopeWith(kIndexPayloadType, EncodeIndex(r), log_key_->verifier().public_key(),
                                 [&](ByteView m) { return log_key_->Sign(m); });
  LEDGER_ASSIGN_OR_RETURN(ParsedEntry parsed, ParseEntry(entry));
  LEDGER_ASSIGN_OR_RETURN(auto repeat, rules.Check(state, parsed, now, r.size));
  if (repeat) return Status::Internal("an index commitment was taken for a repeat");
  LEDGER_ASSIGN_OR_RETURN(AppendedLeaf leaf, batch.AppendNew(entry, HashLeaf(entry)));
  if (leaf.index != r.size) return Status::Internal("the index commitment landed at another index");
  LEDGER_RETURN_IF_ERROR(rules.Apply(state, parsed, leaf.index));
  LEDGER_RETURN_IF_ERROR(update->Publish());
  published_ = position;
  *appended = 1;
  return Status::OK();
}

void SubjectIndexer::BatchDone(bool committed) {
  if (node_cache_) node_cache_->Finish(committed);
  if (published_) {
    if (committed) {
      tree_->Commit(*published_);
    } else {
      tree_->Retract(*published_);
    }
    published_.reset();
  }
  if (committed) {
    if (batch_commits_) {
      pending_.clear();
      pending_count_ = 0;
      first_pending_.reset();
    } else {
      for (const auto& [tag, index] : batch_pending_) pending_[tag].push_back(index);
      pending_count_ += batch_pending_.size();
      if (!first_pending_ && batch_first_) first_pending_ = batch_first_;
    }
    retry_at_.reset();
  } else if (batch_commits_) {
    // The commitment's batch failed: try again an interval later rather
    // than at once, so a persistent failure does not spin.
    retry_at_ = std::chrono::steady_clock::now() + interval();
  }
  batch_pending_.clear();
  batch_first_.reset();
  batch_commits_ = false;
}

}  // namespace ledger
