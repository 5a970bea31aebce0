// Fuzz target: proofs as they arrive from outside: C2SP tlog-proof receipts
// (ledger/tlog_proof.h) and the gate's CheckReceipt over them, bare or
// wrapped in a JSON receipt {"tlog_proof": "..."} as ledger-verify receipt
// and ledgerctl receipt accept; and inclusion/consistency proofs in the
// JSON form of GET /v1/proof/inclusion and /v1/proof/consistency, checked
// against a fixed tree (ledger/merkle.h).
// Properties: ParseTlogProof∘FormatTlogProof is the identity on accepted
// text; an allowed receipt really proves its entry in a checkpoint the log
// signed; an accepted inclusion or consistency proof is the true proof of
// the fixed tree (RFC 9162 proofs are unique without a hash collision).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_common.h"
#include "ledger/gate.h"
#include "ledger/merkle.h"
#include "ledger/tlog_proof.h"

namespace {

using json = nlohmann::json;
constexpr uint64_t kTreeSize = 40;

bool HashList(const json& arr, std::vector<ledger::Hash>* out) {
  if (!arr.is_array() || arr.size() > 64) return false;
  for (const auto& h : arr) {
    if (!h.is_string()) return false;
    auto raw = ledger::Base64Decode(h.get_ref<const std::string&>());
    if (!raw.ok() || raw->size() != 32) return false;
    out->push_back(*ledger::HashFromBytes(*raw));
  }
  return true;
}

void CheckReceiptText(const std::string& text) {
  const ledger::NoteVerifier& log_key = fuzz::LogSigner().verifier();
  auto proof = ledger::ParseTlogProof(text);
  if (proof.ok()) FUZZ_CHECK(ledger::FormatTlogProof(*proof) == text, "ParseTlogProof accepted non-canonical text");
  ledger::GateDecision d = ledger::CheckReceipt(text, std::nullopt, log_key, ledger::GateExpectation{});
  if (!d.allowed) return;
  FUZZ_CHECK(proof.ok() && !proof->extra.empty(), "receipt allowed without a parsable proof carrying its entry");
  auto cp = ledger::OpenCheckpoint(proof->checkpoint, log_key);
  FUZZ_CHECK(cp.ok(), "receipt allowed with a checkpoint the log did not sign");
  FUZZ_CHECK(d.index == proof->index && d.tree_size == cp->size, "receipt decision reports other coordinates");
  FUZZ_CHECK(ledger::VerifyInclusion(ledger::HashLeaf(proof->extra), proof->index, cp->size, proof->inclusion, cp->root).ok(),
             "receipt allowed with an inclusion proof that does not verify");
  auto entry = ledger::ParseEntry(proof->extra);
  FUZZ_CHECK(entry.ok() && entry->kind == ledger::EntryKind::kAccess, "receipt allowed for something not a signed access");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  static const fuzz::MemTree tree = fuzz::TestTree(kTreeSize);

  CheckReceiptText(in);

  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  if (j.contains("tlog_proof") && j["tlog_proof"].is_string()) CheckReceiptText(j["tlog_proof"].get<std::string>());

  std::vector<ledger::Hash> hashes;
  if (!j.contains("hashes") || !HashList(j["hashes"], &hashes)) return 0;
  if (j.contains("index") && j.contains("size") && j["index"].is_number_unsigned() && j["size"].is_number_unsigned()) {
    uint64_t index = j["index"].get<uint64_t>(), tsize = j["size"].get<uint64_t>();
    // Leaf |index| of the fixed tree, in the tree of |tsize| leaves.
    if (tsize > kTreeSize) return 0;
    auto root = ledger::TreeRoot(tsize, tree);
    FUZZ_CHECK(root.ok(), "fixed tree root");
    ledger::Hash leaf = ledger::HashLeaf(fuzz::LeafData(index));
    if (ledger::VerifyInclusion(leaf, index, tsize, hashes, *root).ok()) {
      auto truth = ledger::InclusionProof(index, tsize, tree);
      FUZZ_CHECK(truth.ok() && *truth == hashes, "accepted an inclusion proof other than the true one");
    }
  }
  if (j.contains("from") && j.contains("to") && j["from"].is_number_unsigned() && j["to"].is_number_unsigned()) {
    uint64_t from = j["from"].get<uint64_t>(), to = j["to"].get<uint64_t>();
    if (to > kTreeSize || from > to) return 0;
    auto from_root = ledger::TreeRoot(from, tree);
    auto to_root = ledger::TreeRoot(to, tree);
    FUZZ_CHECK(from_root.ok() && to_root.ok(), "fixed tree roots");
    if (ledger::VerifyConsistency(from, to, hashes, *from_root, *to_root).ok()) {
      auto truth = ledger::ConsistencyProof(from, to, tree);
      FUZZ_CHECK(truth.ok() && *truth == hashes, "accepted a consistency proof other than the true one");
    }
  }
  return 0;
}
