// Subject index: a sparse Merkle tree keyed by 32-byte subject tag whose
// leaf values commit to the ordered list of leaf indices of that tag's
// access entries (SPEC.md §14). Pure: the hashing, the proofs and the tree
// algorithms; the tree's nodes live behind SubjectNodeStore (in memory for
// the verifier and tests, in LMDB's state database for ledgerd).
//
// Thread-safety: the free functions are pure and thread-safe. A
// SubjectNodeStore, and the algorithms running over one, must not be used
// from several threads at once.
#ifndef LEDGER_SUBJECT_INDEX_H_
#define LEDGER_SUBJECT_INDEX_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {

using SubjectTag = Hash;  // 32 bytes

// SubjectValue is what the index holds for one tag: the number of its
// access entries and the hash chain over their leaf indices.
struct SubjectValue {
  uint64_t count = 0;
  Hash chain{};  // chain_0: 32 zero bytes

  bool operator==(const SubjectValue& other) const { return count == other.count && chain == other.chain; }
  bool operator!=(const SubjectValue& other) const { return !(*this == other); }
};

constexpr size_t kSubjectValueSize = 40;  // u64be(count) || chain

// ExtendSubjectValue returns |value| with one more access entry at leaf
// |index|: count + 1 and SHA-256(0x04 || chain || u64be(index)).
SubjectValue ExtendSubjectValue(const SubjectValue& value, uint64_t index);

// SubjectValueOf folds ExtendSubjectValue over |indices| in order, from the
// empty value. It does not check that they increase.
SubjectValue SubjectValueOf(const std::vector<uint64_t>& indices);

// EncodeSubjectValue returns the 40-byte form u64be(count) || chain.
Bytes EncodeSubjectValue(const SubjectValue& value);
// DecodeSubjectValue parses the 40-byte form; InvalidArgument otherwise.
StatusOr<SubjectValue> DecodeSubjectValue(ByteView bytes);

// SubjectLeafHash returns SHA-256(0x02 || tag || value).
Hash SubjectLeafHash(const SubjectTag& tag, const SubjectValue& value);
// SubjectNodeHash returns SHA-256(0x03 || left || right).
Hash SubjectNodeHash(const Hash& left, const Hash& right);
// SubjectEmptyHash returns the hash of an empty subtree: 32 zero bytes.
// It is also the root of an empty index.
Hash SubjectEmptyHash();

// SubjectTagBit returns bit |depth| (0..255) of |tag|, 0 being the most
// significant bit of byte 0: the child that |tag| descends into below
// depth |depth|.
int SubjectTagBit(const SubjectTag& tag, unsigned depth);

// SubjectIndexProof is an index proof (SPEC.md §14) for one tag.
struct SubjectIndexProof {
  enum class End { kMember, kEmpty, kLeaf };
  End end = End::kEmpty;
  std::vector<Hash> siblings;     // depth 1 first; siblings.size() is the end's depth
  SubjectTag other_tag{};         // kLeaf only
  SubjectValue other_value{};     // kLeaf only
};

// SubjectIndexProofEndName returns "member", "empty" or "leaf";
// ParseSubjectIndexProofEnd is its inverse (InvalidArgument otherwise).
const char* SubjectIndexProofEndName(SubjectIndexProof::End end);
StatusOr<SubjectIndexProof::End> ParseSubjectIndexProofEnd(std::string_view name);

// VerifySubjectIndexProof checks |proof| for |tag| against |root|. For
// kMember, |value| is the tag's value (recomputed by the caller from the
// listed indices) and must be set; for kEmpty and kLeaf, |value| must be
// nullopt (the tag is absent). OK if the proof recomputes |root|;
// InvalidArgument for a malformed proof (more than 256 siblings, a kLeaf
// whose other tag equals |tag| or does not share the path's prefix, a
// value given or missing against the end); PermissionDenied (the error
// message says which) if the recomputed root differs.
Status VerifySubjectIndexProof(const Hash& root, const SubjectTag& tag, const std::optional<SubjectValue>& value,
                               const SubjectIndexProof& proof);

// SubjectNode is one stored node of the tree: a leaf (one tag and its
// value) or an inner node (two or more tags below; only its hash is kept).
// Empty subtrees are not stored.
struct SubjectNode {
  bool leaf = false;
  Hash hash{};            // leaf: SubjectLeafHash(tag, value); inner: SubjectNodeHash(children)
  SubjectTag tag{};       // leaf only
  SubjectValue value{};   // leaf only
  // last_index is a store's note on a leaf, not part of the tree or its
  // hashes: ledgerd's state keeps the tag's greatest access index here, so
  // that the tag's list can be walked back from it (SPEC.md §10). The
  // algorithms below carry it with a leaf they move;
  // MemorySubjectNodeStore drops it (reads give 0).
  uint64_t last_index = 0;
};

// SubjectNodeStore holds the nodes of one tree, addressed by depth (0 for
// the root, up to 256) and the path's prefix: a tag whose bits at and after
// |depth| are zero. Implementations report storage failures as non-OK
// statuses; the algorithms below pass them on unchanged.
class SubjectNodeStore {
 public:
  virtual ~SubjectNodeStore() = default;
  // GetNode returns the node at (depth, prefix), or nullopt for an empty
  // subtree.
  virtual StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) = 0;
  virtual Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) = 0;
  virtual Status DeleteNode(unsigned depth, const SubjectTag& prefix) = 0;
};

// MemorySubjectNodeStore keeps the nodes in memory (the verifier's audit
// and tests).
class MemorySubjectNodeStore : public SubjectNodeStore {
 public:
  MemorySubjectNodeStore();
  ~MemorySubjectNodeStore() override;
  StatusOr<std::optional<SubjectNode>> GetNode(unsigned depth, const SubjectTag& prefix) override;
  Status PutNode(unsigned depth, const SubjectTag& prefix, const SubjectNode& node) override;
  Status DeleteNode(unsigned depth, const SubjectTag& prefix) override;
  size_t node_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// SubjectPrefix returns |tag| with the bits at and after |depth| cleared.
SubjectTag SubjectPrefix(const SubjectTag& tag, unsigned depth);

// SubjectIndexRoot returns the root hash of the tree in |store|.
StatusOr<Hash> SubjectIndexRoot(SubjectNodeStore& store);

// ApplySubjectUpdates sets the value of each tag in |updates| (inserting
// new tags), restructures the tree and recomputes each changed inner node's
// hash once, however many updates share it. Returns the new root. A tag
// may appear at most once in |updates| (InvalidArgument otherwise).
StatusOr<Hash> ApplySubjectUpdates(SubjectNodeStore& store, const std::vector<std::pair<SubjectTag, SubjectValue>>& updates);

// SubjectValueUpdate returns the new value of tags[i] given its current one
// (nullopt for a tag not yet in the index).
using SubjectValueUpdate = std::function<SubjectValue(size_t i, const std::optional<SubjectValue>& current)>;

// UpdateSubjectValues sets each of |tags| (sorted ascending and distinct;
// InvalidArgument otherwise, nothing written) to fn(i, its current value),
// in one depth-first pass that reads and writes each node on the tags'
// paths once (ApplySubjectUpdates is this with fixed values). Returns the
// new root. On a storage error some nodes may have been written: the
// caller's transaction must then be dropped.
StatusOr<Hash> UpdateSubjectValues(SubjectNodeStore& store, const std::vector<SubjectTag>& tags, const SubjectValueUpdate& fn);

// SubjectLookup is a tag's value (nullopt if absent) and its index proof.
struct SubjectLookup {
  std::optional<SubjectValue> value;
  SubjectIndexProof proof;
};

// ProveSubject looks |tag| up in |store| and returns its value and proof
// against SubjectIndexRoot(store).
StatusOr<SubjectLookup> ProveSubject(SubjectNodeStore& store, const SubjectTag& tag);

// LookupSubjectValue returns |tag|'s value in |store|, nullopt if absent:
// ProveSubject's walk without reading siblings.
StatusOr<std::optional<SubjectValue>> LookupSubjectValue(SubjectNodeStore& store, const SubjectTag& tag);

// SubjectIndexReferenceRoot computes the root of the tree holding exactly
// |values| by the recursive definition of SPEC.md §14, with no stored
// nodes. Slow; for tests and fuzzing against the tree algorithms.
Hash SubjectIndexReferenceRoot(const std::map<SubjectTag, SubjectValue>& values);

}  // namespace ledger

#endif  // LEDGER_SUBJECT_INDEX_H_
