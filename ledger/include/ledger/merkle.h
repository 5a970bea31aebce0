// RFC 6962 / RFC 9162 Merkle tree maths over SHA-256: hashing, roots,
// inclusion and consistency proofs and their verification. Pure: no storage,
// no network. Proofs are built from a HashReader that serves the hashes of
// complete subtrees, so callers decide how hashes are stored.
//
// Terminology: the node at (level L, index N) is the root of the complete
// subtree over leaves [N * 2^L, (N + 1) * 2^L). Level 0 nodes are leaf hashes.
//
// Thread-safety: all functions are pure; a HashReader's thread-safety is its
// implementation's.
#ifndef LEDGER_MERKLE_H_
#define LEDGER_MERKLE_H_

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {

// HashLeaf returns SHA-256(0x00 || data).
Hash HashLeaf(ByteView data);
// HashChildren returns SHA-256(0x01 || left || right).
Hash HashChildren(const Hash& left, const Hash& right);
// EmptyTreeRoot returns SHA-256 of the empty string, the root of size 0.
Hash EmptyTreeRoot();

struct NodeId {
  uint8_t level;
  uint64_t index;
  bool operator==(const NodeId& o) const { return level == o.level && index == o.index; }
};

// HashReader serves hashes of complete subtrees.
class HashReader {
 public:
  virtual ~HashReader() = default;
  // ReadHashes fills |out| (resized to ids.size()) with the hash of each
  // node in |ids|, in order. Every requested node is complete in the tree
  // the reader represents. Returns NotFound if a node is not stored,
  // Corruption/IOError on storage failures.
  virtual Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const = 0;
};

// TreeRoot returns the root of the tree of |size| leaves read through
// |reader| (EmptyTreeRoot() for size 0).
StatusOr<Hash> TreeRoot(uint64_t size, const HashReader& reader);

// InclusionProof returns the RFC 9162 §2.1.3.1 audit path for leaf |index|
// in the tree of |size| leaves, bottom-up. OutOfRange if index >= size.
StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, const HashReader& reader);

// ConsistencyProof returns the RFC 9162 §2.1.4.1 proof that the tree of size
// |from| is a prefix of the tree of size |to|. Empty when from == to or
// from == 0. OutOfRange if from > to.
StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to, const HashReader& reader);

// VerifyInclusion checks |proof| per RFC 9162 §2.1.3.2. OK if the leaf hash
// |leaf| is at |index| in the tree of |size| with root |root|;
// InvalidArgument (with the reason) otherwise, including index >= size and
// a proof of the wrong length.
Status VerifyInclusion(const Hash& leaf, uint64_t index, uint64_t size,
                       const std::vector<Hash>& proof, const Hash& root);

// RootFromInclusionProof computes the root implied by a proof; same errors.
StatusOr<Hash> RootFromInclusionProof(const Hash& leaf, uint64_t index, uint64_t size,
                                      const std::vector<Hash>& proof);

// VerifyConsistency checks |proof| per RFC 9162 §2.1.4.2 between trees of
// sizes |from| <= |to| with the given roots. Equal sizes require an empty
// proof and equal roots; from == 0 requires an empty proof.
Status VerifyConsistency(uint64_t from, uint64_t to, const std::vector<Hash>& proof,
                         const Hash& from_root, const Hash& to_root);

// CachingHashReader memoises the nodes read through it, for building many
// proofs against one tree (the receipts of a batch share most of their
// nodes). Not thread-safe; the wrapped reader must outlive it.
class CachingHashReader : public HashReader {
 public:
  explicit CachingHashReader(const HashReader& base) : base_(base) {}
  Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const override;

 private:
  const HashReader& base_;
  mutable std::unordered_map<uint64_t, Hash> cache_[64];  // per level, by index
};

// CompactRange is the right frontier of a tree: the roots of the maximal
// complete subtrees covering [0, size), largest first. It lets a sequencer
// append leaves and learn every newly completed node without reading storage.
// Not thread-safe; owned by one writer.
class CompactRange {
 public:
  CompactRange() = default;
  // FromReader loads the frontier of a tree of |size| leaves.
  static StatusOr<CompactRange> FromReader(uint64_t size, const HashReader& reader);

  uint64_t size() const { return size_; }
  // Append adds one leaf hash. For each node completed by it (the leaf itself
  // at level 0 and every parent finished by it, bottom-up), calls
  // visit(NodeId, Hash).
  template <typename Visitor>
  void Append(const Hash& leaf, Visitor&& visit) {
    NodeId id{0, size_};
    Hash h = leaf;
    visit(id, h);
    // Each trailing one bit of size_ marks a left sibling to merge with.
    uint64_t s = size_;
    while (s & 1) {
      h = HashChildren(frontier_.back(), h);
      frontier_.pop_back();
      id = NodeId{static_cast<uint8_t>(id.level + 1), id.index >> 1};
      visit(id, h);
      s >>= 1;
    }
    frontier_.push_back(h);
    size_++;
  }
  // Root returns the tree root of the current size.
  Hash Root() const;
  // Frontier hashes, largest subtree first.
  const std::vector<Hash>& frontier() const { return frontier_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> frontier_;
};

}  // namespace ledger

#endif  // LEDGER_MERKLE_H_
