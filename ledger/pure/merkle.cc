#include "ledger/merkle.h"

#include <algorithm>
#include <string>
#include <utility>

namespace ledger {

namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

// LargestPowerOfTwoBelow returns the k of RFC 9162 §2.1.1: the largest power
// of two strictly smaller than n. Requires n >= 2.
uint64_t LargestPowerOfTwoBelow(uint64_t n) {
  return uint64_t{1} << (63 - __builtin_clzll(n - 1));
}

std::string U(uint64_t v) { return std::to_string(v); }

// A proof element is MTH(D[begin, end)) for a range that is aligned the way
// RFC 6962's recursion produces them: |begin| is a multiple of a power of two
// >= end - begin. Such a range splits into perfect subtrees, one per set bit
// of its length, largest (leftmost) first; AppendRangeNodes lists them.
void AppendRangeNodes(uint64_t begin, uint64_t end, std::vector<NodeId>* out) {
  uint64_t n = end - begin;
  while (n != 0) {
    int level = 63 - __builtin_clzll(n);
    uint64_t width = uint64_t{1} << level;
    out->push_back(NodeId{static_cast<uint8_t>(level), begin >> level});
    begin += width;
    n -= width;
  }
}

// FoldRange combines the perfect subtrees of one range, largest first, into
// the range's hash. MTH splits at the largest power of two, so the right part
// is folded first: h = H(f[0], H(f[1], ... H(f[n-2], f[n-1]))).
Hash FoldRange(const Hash* first, size_t count) {
  Hash acc = first[count - 1];
  for (size_t i = count - 1; i-- > 0;) acc = HashChildren(first[i], acc);
  return acc;
}

// ProofPlan collects the ranges of a proof so all their nodes are fetched in
// one ReadHashes call (the reader is typically a database).
class ProofPlan {
 public:
  void AddRange(uint64_t begin, uint64_t end) {
    size_t before = ids_.size();
    AppendRangeNodes(begin, end, &ids_);
    counts_.push_back(ids_.size() - before);
  }
  size_t size() const { return counts_.size(); }

  // Resolve reads every node and returns one hash per range, in the order the
  // ranges were added.
  StatusOr<std::vector<Hash>> Resolve(const HashReader& reader) const {
    std::vector<Hash> hashes;
    if (ids_.empty()) return hashes;
    LEDGER_RETURN_IF_ERROR(reader.ReadHashes(ids_, &hashes));
    if (hashes.size() != ids_.size()) {
      return Status::Internal("hash reader returned " + U(hashes.size()) + " hashes for " +
                              U(ids_.size()) + " nodes");
    }
    std::vector<Hash> out;
    out.reserve(counts_.size());
    size_t pos = 0;
    for (size_t c : counts_) {
      out.push_back(FoldRange(hashes.data() + pos, c));
      pos += c;
    }
    return out;
  }

 private:
  std::vector<NodeId> ids_;
  std::vector<size_t> counts_;
};

// PlanInclusion adds, top-down, the ranges whose hashes form PATH(index,
// D[0:size)) (RFC 6962 §2.1.1); the proof is their reverse.
void PlanInclusion(uint64_t index, uint64_t size, ProofPlan* plan) {
  uint64_t lo = 0, m = index, n = size;
  while (n > 1) {
    uint64_t k = LargestPowerOfTwoBelow(n);
    if (m < k) {
      plan->AddRange(lo + k, lo + n);
      n = k;
    } else {
      plan->AddRange(lo, lo + k);
      lo += k;
      m -= k;
      n -= k;
    }
  }
}

// PlanConsistency adds, top-down, the ranges of SUBPROOF(from, D[0:to), true)
// (RFC 6962 §2.1.2); the proof is their reverse. Requires 0 < from <= to.
void PlanConsistency(uint64_t from, uint64_t to, ProofPlan* plan) {
  uint64_t lo = 0, m = from, n = to;
  bool whole = true;  // the "b" flag: true while D[lo, lo+m) is the old tree
  while (m != n) {
    uint64_t k = LargestPowerOfTwoBelow(n);
    if (m <= k) {
      plan->AddRange(lo + k, lo + n);
      n = k;
    } else {
      plan->AddRange(lo, lo + k);
      lo += k;
      m -= k;
      n -= k;
      whole = false;
    }
  }
  if (!whole) plan->AddRange(lo, lo + n);
}

// InclusionProofLength is the number of hashes in PATH(index, D[0:size)).
size_t InclusionProofLength(uint64_t index, uint64_t size) {
  ProofPlan plan;
  PlanInclusion(index, size, &plan);
  return plan.size();
}

size_t ConsistencyProofLength(uint64_t from, uint64_t to) {
  ProofPlan plan;
  PlanConsistency(from, to, &plan);
  return plan.size();
}

}  // namespace

Hash HashLeaf(ByteView data) { return Sha256Prefixed(kLeafPrefix, data); }

Hash HashChildren(const Hash& left, const Hash& right) {
  return Sha256Prefixed(kNodePrefix, HashView(left), HashView(right));
}

Hash EmptyTreeRoot() { return Sha256(ByteView()); }

StatusOr<Hash> TreeRoot(uint64_t size, const HashReader& reader) {
  if (size == 0) return EmptyTreeRoot();
  ProofPlan plan;
  plan.AddRange(0, size);
  LEDGER_ASSIGN_OR_RETURN(std::vector<Hash> h, plan.Resolve(reader));
  return h[0];
}

StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size, const HashReader& reader) {
  if (index >= size) {
    return Status::OutOfRange("leaf index " + U(index) + " is not in a tree of size " + U(size));
  }
  ProofPlan plan;
  PlanInclusion(index, size, &plan);
  LEDGER_ASSIGN_OR_RETURN(std::vector<Hash> proof, plan.Resolve(reader));
  std::reverse(proof.begin(), proof.end());  // planned top-down, proofs are bottom-up
  return proof;
}

StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to, const HashReader& reader) {
  if (from > to) {
    return Status::OutOfRange("consistency from size " + U(from) + " to smaller size " + U(to));
  }
  if (from == 0 || from == to) return std::vector<Hash>();
  ProofPlan plan;
  PlanConsistency(from, to, &plan);
  LEDGER_ASSIGN_OR_RETURN(std::vector<Hash> proof, plan.Resolve(reader));
  std::reverse(proof.begin(), proof.end());
  return proof;
}

StatusOr<Hash> RootFromInclusionProof(const Hash& leaf, uint64_t index, uint64_t size,
                                      const std::vector<Hash>& proof) {
  if (index >= size) {
    return Status::InvalidArgument("inclusion proof: leaf index " + U(index) +
                                   " is not in a tree of size " + U(size));
  }
  // Checking the length up front gives a precise reason; the RFC loop below
  // would also reject it.
  size_t want = InclusionProofLength(index, size);
  if (proof.size() != want) {
    return Status::InvalidArgument("inclusion proof has " + U(proof.size()) + " hashes, want " +
                                   U(want) + " for index " + U(index) + " in size " + U(size));
  }
  // RFC 9162 §2.1.3.2.
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) return Status::InvalidArgument("inclusion proof is too long");
    if ((fn & 1) || fn == sn) {
      r = HashChildren(p, r);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::InvalidArgument("inclusion proof is too short");
  return r;
}

Status VerifyInclusion(const Hash& leaf, uint64_t index, uint64_t size,
                       const std::vector<Hash>& proof, const Hash& root) {
  LEDGER_ASSIGN_OR_RETURN(Hash r, RootFromInclusionProof(leaf, index, size, proof));
  if (r != root) {
    return Status::InvalidArgument("inclusion proof for index " + U(index) + " in size " + U(size) +
                                   " does not lead to the given root");
  }
  return Status::OK();
}

Status VerifyConsistency(uint64_t from, uint64_t to, const std::vector<Hash>& proof,
                         const Hash& from_root, const Hash& to_root) {
  if (from > to) {
    return Status::InvalidArgument("consistency proof: old size " + U(from) + " exceeds new size " +
                                   U(to));
  }
  if (from == to) {
    if (!proof.empty()) return Status::InvalidArgument("consistency proof between equal sizes must be empty");
    if (from_root != to_root) return Status::InvalidArgument("trees of equal size have different roots");
    return Status::OK();
  }
  if (from == 0) {
    // Every tree extends the empty tree, but the claimed old root must still
    // be the empty tree's, or the caller holds a bogus "size 0" checkpoint.
    if (!proof.empty()) return Status::InvalidArgument("consistency proof from size 0 must be empty");
    if (from_root != EmptyTreeRoot()) return Status::InvalidArgument("root of size 0 is not the empty tree hash");
    return Status::OK();
  }
  size_t want = ConsistencyProofLength(from, to);
  if (proof.size() != want) {
    return Status::InvalidArgument("consistency proof has " + U(proof.size()) + " hashes, want " +
                                   U(want) + " from size " + U(from) + " to " + U(to));
  }
  // RFC 9162 §2.1.4.2. When |from| is a power of two the old root is itself
  // the first node of the path, so it is prepended rather than sent.
  std::vector<Hash> c;
  c.reserve(proof.size() + 1);
  if ((from & (from - 1)) == 0) c.push_back(from_root);
  c.insert(c.end(), proof.begin(), proof.end());
  uint64_t fn = from - 1, sn = to - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = c[0], sr = c[0];
  for (size_t i = 1; i < c.size(); i++) {
    if (sn == 0) return Status::InvalidArgument("consistency proof is too long");
    if ((fn & 1) || fn == sn) {
      fr = HashChildren(c[i], fr);
      sr = HashChildren(c[i], sr);
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = HashChildren(sr, c[i]);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::InvalidArgument("consistency proof is too short");
  if (fr != from_root) {
    return Status::InvalidArgument("consistency proof does not lead to the root of size " + U(from));
  }
  if (sr != to_root) {
    return Status::InvalidArgument("consistency proof does not lead to the root of size " + U(to));
  }
  return Status::OK();
}

StatusOr<CompactRange> CompactRange::FromReader(uint64_t size, const HashReader& reader) {
  CompactRange cr;
  cr.size_ = size;
  if (size == 0) return cr;
  // The frontier is exactly the perfect-subtree split of [0, size).
  std::vector<NodeId> ids;
  AppendRangeNodes(0, size, &ids);
  LEDGER_RETURN_IF_ERROR(reader.ReadHashes(ids, &cr.frontier_));
  if (cr.frontier_.size() != ids.size()) {
    return Status::Internal("hash reader returned " + U(cr.frontier_.size()) + " hashes for " +
                            U(ids.size()) + " nodes");
  }
  return cr;
}

Hash CompactRange::Root() const {
  if (frontier_.empty()) return EmptyTreeRoot();
  return FoldRange(frontier_.data(), frontier_.size());
}

Status CachingHashReader::ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const {
  out->resize(ids.size());
  std::vector<NodeId> missing;
  std::vector<size_t> where;
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i].level >= 64) return Status::InvalidArgument("node level out of range");
    auto it = cache_[ids[i].level].find(ids[i].index);
    if (it != cache_[ids[i].level].end()) {
      (*out)[i] = it->second;
    } else {
      missing.push_back(ids[i]);
      where.push_back(i);
    }
  }
  if (missing.empty()) return Status::OK();
  std::vector<Hash> got;
  LEDGER_RETURN_IF_ERROR(base_.ReadHashes(missing, &got));
  if (got.size() != missing.size()) return Status::Internal("hash reader returned the wrong number of hashes");
  for (size_t j = 0; j < missing.size(); j++) {
    (*out)[where[j]] = got[j];
    cache_[missing[j].level].emplace(missing[j].index, got[j]);
  }
  return Status::OK();
}

}  // namespace ledger
