// Shared pieces of the libFuzzer targets: a property check that aborts (so
// libFuzzer records the input as a finding), the fixed keys the seed
// corpora are signed with, and a small in-memory Merkle tree.
//
// The keys are derived from constant seeds on purpose: the corpora under
// fuzz/corpus/ carry notes, cosignatures, envelopes and VRF proofs made with
// them (fuzz/make_corpus.cc), so mutations start from inputs that get past
// every signature check. Never use these keys for anything else.
#ifndef LEDGER_FUZZ_FUZZ_COMMON_H_
#define LEDGER_FUZZ_FUZZ_COMMON_H_

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/vrf.h"

namespace fuzz {

// FUZZ_CHECK aborts with a message when a property does not hold.
#define FUZZ_CHECK(cond, what)                                                      \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", what, __FILE__, __LINE__); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

inline std::string Seed(char c) { return std::string(32, c); }

constexpr char kLogName[] = "fuzz.example/log";
constexpr char kWitness1Name[] = "w1.fuzz.example";
constexpr char kWitness2Name[] = "w2.fuzz.example";
constexpr char kHolderName[] = "fuzzbank";

template <typename T>
T Must(ledger::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "fuzz setup failed: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return std::move(*v);
}

// Keys are built once and never freed (fuzz targets never exit cleanly).
inline const ledger::NoteSigner& LogSigner() {
  static auto* s = Must(ledger::NoteSigner::FromSeed(kLogName, Seed('\x01'))).release();
  return *s;
}
inline const ledger::CosignatureSigner& Witness1() {
  static auto* s = Must(ledger::CosignatureSigner::FromSeed(kWitness1Name, Seed('\x02'))).release();
  return *s;
}
inline const ledger::CosignatureSigner& Witness2() {
  static auto* s = Must(ledger::CosignatureSigner::FromSeed(kWitness2Name, Seed('\x03'))).release();
  return *s;
}
inline const ledger::VrfSecretKey& VrfKey() {
  static auto* s = Must(ledger::VrfSecretKey::FromSeed(Seed('\x04'))).release();
  return *s;
}
inline const ledger::Ed25519Signer& AccessorKey() {
  static auto* s = Must(ledger::Ed25519Signer::FromSeed(Seed('\x05'))).release();
  return *s;
}

// LeafData is the i-th leaf of the fixed test tree.
inline std::string LeafData(uint64_t i) { return "fuzz leaf " + std::to_string(i); }

// MemTree is a Merkle tree held in memory, for proofs over small trees.
class MemTree : public ledger::HashReader {
 public:
  explicit MemTree(const std::vector<std::string>& leaves) {
    for (const auto& l : leaves)
      range_.Append(ledger::HashLeaf(l), [&](const ledger::NodeId& id, const ledger::Hash& h) {
        nodes_[{id.level, id.index}] = h;
      });
  }
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<ledger::Hash>* out) const override {
    out->clear();
    for (const auto& id : ids) {
      auto it = nodes_.find({id.level, id.index});
      if (it == nodes_.end()) return ledger::Status::NotFound("node not in the test tree");
      out->push_back(it->second);
    }
    return ledger::Status::OK();
  }
  uint64_t size() const { return range_.size(); }
  ledger::Hash Root() const { return range_.Root(); }

 private:
  ledger::CompactRange range_;
  std::map<std::pair<int, uint64_t>, ledger::Hash> nodes_;
};

// TestTree returns the tree of LeafData(0..n-1).
inline MemTree TestTree(uint64_t n) {
  std::vector<std::string> leaves;
  for (uint64_t i = 0; i < n; i++) leaves.push_back(LeafData(i));
  return MemTree(leaves);
}

// SignedCheckpoint returns the log's signed checkpoint for |size| and |root|.
inline std::string SignedCheckpoint(uint64_t size, const ledger::Hash& root) {
  ledger::Checkpoint cp;
  cp.origin = kLogName;
  cp.size = size;
  cp.root = root;
  return Must(LogSigner().SignNote(cp.Format()));
}

}  // namespace fuzz

#endif  // LEDGER_FUZZ_FUZZ_COMMON_H_
