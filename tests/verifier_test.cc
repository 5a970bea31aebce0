// Unit tests of ledger-verify's pieces, on logs written straight into a
// directory in C2SP tlog-tiles layout (so every byte, honest or not, is
// under the test's control): proofs computed from tiles against proofs from
// the full tree at every size, the partial-tile fallback, and the audit
// command on a dishonest log (every violation rule, with evidence), the
// incremental audit equal to a full one, a fork and a root mismatch.
// The verifier's sources are compiled into this binary by path.
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/tiles.h"
#include "ledger/vrf.h"
#include "../verifier/audit.h"
#include "../verifier/cli.h"
#include "../verifier/commands.h"
#include "../verifier/fetcher.h"
#include "../verifier/log_reader.h"

using namespace ledger;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char kOrigin[] = "example.com/verify-test";
const char kHolder[] = "demo-bank";
const char kAccessor[] = "chat-banking";

// MemoryTree serves any complete subtree of a list of leaves.
class MemoryTree : public HashReader {
 public:
  std::vector<Hash> leaves;
  Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const override {
    out->clear();
    for (const NodeId& id : ids) out->push_back(Node(id.level, id.index));
    return Status::OK();
  }
  Hash Node(unsigned level, uint64_t index) const {
    if (level == 0) return leaves.at(index);
    return HashChildren(Node(level - 1, 2 * index), Node(level - 1, 2 * index + 1));
  }
};

void WriteFile(const std::string& path, const std::string& data) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  REQUIRE(out.good());
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// TestLog builds a log of arbitrary entries and writes it as a mirror.
class TestLog {
 public:
  TestLog() {
    auto signer = NoteSigner::Generate(kOrigin);
    REQUIRE(signer.ok());
    log_key = std::move(signer).value();
  }

  void Add(const Bytes& entry) {
    entries.push_back(entry);
    tree.leaves.push_back(HashLeaf(entry));
  }

  std::string SignCheckpoint(uint64_t size, std::optional<Hash> root = std::nullopt) const {
    Checkpoint cp;
    cp.origin = kOrigin;
    cp.size = size;
    auto r = TreeRoot(size, tree);
    REQUIRE(r.ok());
    cp.root = root ? *root : *r;
    auto note = log_key->SignNote(cp.Format());
    REQUIRE(note.ok());
    return *note;
  }

  // WriteMirror lays out the log at |size| in |dir|: checkpoint, every
  // tile and bundle (partial ones at the right edge).
  void WriteMirror(const std::string& dir, uint64_t size) const {
    fs::remove_all(dir);
    fs::create_directories(dir);
    WriteFile(dir + "/checkpoint", SignCheckpoint(size));
    for (uint8_t level = 0; level < 8; level++) {
      if ((size >> (8 * level)) == 0) break;
      for (uint64_t n = 0;; n++) {
        uint32_t w = TileWidthForSize(level, n, size);
        if (w == 0) break;
        TileId id{false, level, n, w};
        auto tile = ReadTile(id, size, tree);
        REQUIRE(tile.ok());
        WriteFile(dir + "/" + FormatTilePath(id), *tile);
      }
    }
    for (uint64_t n = 0;; n++) {
      uint32_t w = TileWidthForSize(0, n, size);
      if (w == 0) break;
      std::vector<ByteView> views;
      for (uint64_t i = n * 256; i < n * 256 + w; i++) views.push_back(entries[i]);
      auto bundle = EncodeEntryBundle(views);
      REQUIRE(bundle.ok());
      WriteFile(dir + "/" + FormatTilePath(TileId{true, 0, n, w}), *bundle);
    }
  }

  std::string VerifierKey() const { return log_key->verifier().VerifierKeyString(); }

  std::unique_ptr<NoteSigner> log_key;
  std::vector<Bytes> entries;
  MemoryTree tree;
};

std::string TempDir(const std::string& name) {
  std::string dir = fs::temp_directory_path().string() + "/verifier_test." + std::to_string(::getpid()) + "." + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// RunCommand runs a ledger-verify command in-process, capturing stdout.
int RunCommand(const verifier::Command& cmd, std::vector<std::string> words, std::string* out) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  verifier::Args args;
  std::stringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  int rc = verifier::ParseArgs(cmd, static_cast<int>(argv.size()), argv.data(), &args);
  if (rc < 0) rc = cmd.run(args);
  std::cout.rdbuf(old);
  *out = captured.str();
  return rc;
}

// Keys and entries of the access ledger.
struct Parties {
  std::unique_ptr<Ed25519Signer> holder, accessor, stranger;
  std::unique_ptr<VrfSecretKey> vrf;
  Parties() {
    holder = std::move(Ed25519Signer::Generate()).value();
    accessor = std::move(Ed25519Signer::Generate()).value();
    stranger = std::move(Ed25519Signer::Generate()).value();
    vrf = std::move(VrfSecretKey::Generate()).value();
  }
};

Bytes HolderEntry(const TestLog& log, const Parties& p) {
  HolderRecord r{kHolder, Bytes(p.holder->public_key()), Bytes(p.vrf->public_key()), "2026-12-01T10:00:00Z"};
  return SignEnvelopeWith(kHolderPayloadType, EncodeHolder(r), log.log_key->verifier().public_key(),
                          [&](ByteView m) { return log.log_key->Sign(m); });
}

Bytes AuthorizeEntry(const Parties& p, const Ed25519Signer& key) {
  AccessorRecord r;
  r.holder = kHolder;
  r.accessor = kAccessor;
  r.keys = {Bytes(key.public_key())};
  r.time = "2026-12-01T10:00:00Z";
  return SignEnvelope(kAccessorPayloadType, EncodeAccessor(r), *p.holder);
}

Bytes PolicyEntry(const Parties& p, uint64_t version) {
  PolicyRecord r;
  r.holder = kHolder;
  r.accessor = kAccessor;
  r.version = version;
  r.purposes = {{"CUSTOMER_SUPPORT", {"BALANCES", "TRANSACTIONS"}, 90}};
  r.time = "2026-12-01T10:00:00Z";
  return SignEnvelope(kPolicyPayloadType, EncodePolicy(r), *p.accessor);
}

Bytes AccessEntry(const Ed25519Signer& key, const std::string& request_id, const std::string& purpose,
                  const std::string& category, const std::string& time = "2026-12-01T10:00:00Z") {
  AccessRecord r;
  r.request_id = request_id;
  r.accessor = kAccessor;
  r.holder = kHolder;
  r.subject = Bytes(32, 'S');
  r.purpose = purpose;
  r.categories = {category};
  r.consent = "consent-" + request_id;
  r.time = time;
  return SignEnvelope(kAccessPayloadType, EncodeAccess(r), key);
}

}  // namespace

TEST_CASE("TileHashReader serves the same proofs as the full tree at every size", "[verifier]") {
  TestLog log;
  for (int i = 0; i < 600; i++) log.Add("entry " + std::to_string(i));
  std::string dir = TempDir("tiles");
  for (uint64_t size : {1, 2, 7, 255, 256, 257, 511, 512, 513, 600}) {
    log.WriteMirror(dir, size);
    auto fetcher = verifier::Fetcher::Open(dir);
    REQUIRE(fetcher.ok());
    verifier::TileHashReader tiles(fetcher->get(), size);
    auto root = TreeRoot(size, tiles);
    REQUIRE(root.ok());
    CHECK(*root == *TreeRoot(size, log.tree));
    for (uint64_t i = 0; i < size; i += (size > 50 ? 37 : 1)) {
      auto a = InclusionProof(i, size, tiles);
      auto b = InclusionProof(i, size, log.tree);
      REQUIRE(a.ok());
      CHECK(*a == *b);
    }
    for (uint64_t from = 1; from <= size; from += (size > 50 ? 41 : 1)) {
      auto a = ConsistencyProof(from, size, tiles);
      auto b = ConsistencyProof(from, size, log.tree);
      REQUIRE(a.ok());
      CHECK(*a == *b);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("partial tiles and bundles fall back to the full ones", "[verifier]") {
  TestLog log;
  for (int i = 0; i < 300; i++) log.Add("entry " + std::to_string(i));
  std::string dir = TempDir("fallback");
  log.WriteMirror(dir, 300);  // full tile 0 and bundle 0 exist
  auto fetcher = verifier::Fetcher::Open(dir);
  REQUIRE(fetcher.ok());
  // A reader of the tree at size 100 asks for tile/0/000.p/100, gone here.
  verifier::TileHashReader tiles(fetcher->get(), 100);
  auto proof = InclusionProof(42, 100, tiles);
  REQUIRE(proof.ok());
  CHECK(*proof == *InclusionProof(42, 100, log.tree));
  auto bundle = verifier::FetchEntryBundle(**fetcher, 0, 100);
  REQUIRE(bundle.ok());
  auto parsed = ParseEntryBundle(*bundle);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == 100);
  CHECK((*parsed)[99] == "entry 99");
  auto e = verifier::EntryAt(**fetcher, 99, 100);
  REQUIRE(e.ok());
  CHECK(*e == "entry 99");
  // A tile of the wrong length is corruption, not a proof.
  WriteFile(dir + "/tile/0/000", std::string(100, 'x'));
  verifier::TileHashReader bad(fetcher->get(), 300);
  CHECK(InclusionProof(3, 300, bad).status().IsCorruption());
  fs::remove_all(dir);
}

TEST_CASE("audit verifies an honest log and reports every violation of a dishonest one with evidence",
          "[verifier]") {
  TestLog log;
  Parties p;
  log.Add(HolderEntry(log, p));                                                  // 0
  log.Add(AuthorizeEntry(p, *p.accessor));                                       // 1
  log.Add(PolicyEntry(p, 1));                                                    // 2
  log.Add(AccessEntry(*p.accessor, "r1", "CUSTOMER_SUPPORT", "BALANCES"));       // 3
  log.Add(AccessEntry(*p.accessor, "r2", "CUSTOMER_SUPPORT", "TRANSACTIONS"));   // 4
  std::string dir = TempDir("audit");
  std::string key = log.VerifierKey();

  log.WriteMirror(dir, log.entries.size());
  std::string out;
  int rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--json"}, &out);
  INFO(out);
  REQUIRE(rc == 0);
  json honest = json::parse(out);
  CHECK(honest["verified"] == true);
  CHECK(honest["entries"] == 5);
  CHECK(honest["entries_by_kind"]["access"] == 2);
  CHECK(honest["accesses"][kAccessor]["CUSTOMER_SUPPORT"]["BALANCES"] == 1);
  std::string state = dir + ".state";
  fs::remove(state);
  REQUIRE(RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--state", state, "--json"}, &out) == 0);

  // The operator now lets everything through.
  log.Add(AccessEntry(*p.accessor, "r3", "TARGETED_ADVERTISING", "TRANSACTIONS"));  // 5 undisclosed use
  log.Add(AccessEntry(*p.accessor, "r1", "CUSTOMER_SUPPORT", "TRANSACTIONS"));      // 6 request id reused
  log.Add(AccessEntry(*p.stranger, "r4", "CUSTOMER_SUPPORT", "BALANCES"));          // 7 unauthorised key
  log.Add("not an envelope");                                                        // 8 malformed entry
  Bytes forged = AccessEntry(*p.accessor, "r5", "CUSTOMER_SUPPORT", "BALANCES");
  forged[forged.size() - 10] = forged[forged.size() - 10] == 'A' ? 'B' : 'A';
  log.Add(forged);                                                                   // 9 bad signature
  log.Add(PolicyEntry(p, 1));                                                        // 10 policy version
  log.Add(AccessEntry(*p.accessor, "r6", "CUSTOMER_SUPPORT", "BALANCES", "2026-12-01T09:00:00Z"));  // 11 time runs backwards
  log.Add(AccessEntry(*p.accessor, "r3", "TARGETED_ADVERTISING", "TRANSACTIONS") + "");  // 12: r3 again, same payload
  log.WriteMirror(dir, log.entries.size());

  rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--json"}, &out);
  INFO(out);
  REQUIRE(rc == 1);
  json full = json::parse(out);
  CHECK(full["verified"] == false);
  CHECK(full["entries"] == 13);
  CHECK(full["entries_by_kind"]["invalid"] == 2);
  std::vector<std::pair<std::string, uint64_t>> got;
  for (const auto& v : full["violations"]) got.emplace_back(v["rule"].get<std::string>(), v["index"].get<uint64_t>());
  std::vector<std::pair<std::string, uint64_t>> want = {
      {"undisclosed use", 5}, {"request id reused", 6}, {"unauthorised key", 7},    {"malformed entry", 8},
      {"bad signature", 9},   {"policy version", 10},   {"time runs backwards", 11}, {"request id reused", 12}};
  CHECK(got == want);
  std::string cp_note = ReadAll(dir + "/checkpoint");
  auto cp = OpenCheckpoint(cp_note, log.log_key->verifier());
  REQUIRE(cp.ok());
  // Every piece of evidence re-checks with nothing but the pure library.
  for (const auto& v : full["violations"]) {
    CHECK(v["checkpoint"] == cp_note);
    auto entry = Base64Decode(v["entry"].get<std::string>());
    REQUIRE(entry.ok());
    CHECK(*entry == log.entries[v["index"].get<uint64_t>()]);
    std::vector<Hash> proof;
    for (const auto& h : v["inclusion"]) proof.push_back(*HashFromBytes(*Base64Decode(h.get<std::string>())));
    CHECK(VerifyInclusion(HashLeaf(*entry), v["index"], cp->size, proof, cp->root).ok());
  }
  const json& undisclosed = full["violations"][0];
  REQUIRE(undisclosed.contains("policy"));
  CHECK(undisclosed["policy"]["index"] == 2);
  CHECK(*Base64Decode(undisclosed["policy"]["entry"].get<std::string>()) == log.entries[2]);
  CHECK(full["violations"][5]["policy"]["index"] == 2);

  // The access that broke a rule still recorded its request id: r3 at 12
  // is a repeat of entry 5.
  CHECK(full["violations"][7]["detail"].get<std::string>().find("entry 5") != std::string::npos);

  // Incremental from the state saved at size 5 gives the same report.
  rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--state", state, "--json"}, &out);
  CHECK(rc == 1);
  CHECK(json::parse(out) == full);
  // And again from the state saved at 13 (nothing new to replay).
  rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--state", state, "--json"}, &out);
  CHECK(rc == 1);
  CHECK(json::parse(out) == full);
  // Threads do not change the report.
  rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--threads", "3", "--json"}, &out);
  CHECK(json::parse(out) == full);

  fs::remove_all(dir);
  fs::remove(state);
}

TEST_CASE("audit --state catches a fork, and a root the entries do not hash to", "[verifier]") {
  TestLog log;
  for (int i = 0; i < 20; i++) log.Add("opaque " + std::to_string(i));
  std::string dir = TempDir("fork");
  std::string state = dir + ".state";
  fs::remove(state);
  std::string key = log.VerifierKey();
  log.WriteMirror(dir, 10);
  std::string out;
  // Opaque entries are malformed ledger entries; the tree still verifies,
  // so the state is saved.
  CHECK(RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--state", state, "--json"}, &out) == 1);
  REQUIRE(fs::exists(state));
  std::string saved = ReadAll(state);

  // The same key now signs a tree whose entry 3 differs: a fork.
  log.entries[3] = "rewritten";
  log.tree.leaves[3] = HashLeaf(log.entries[3]);
  log.WriteMirror(dir, 20);
  int rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--state", state, "--json"}, &out);
  INFO(out);
  CHECK(rc == 1);
  json j = json::parse(out);
  const json& last = j["violations"].back();
  CHECK(last["rule"] == "fork");
  CHECK(last["index"] == 10);
  CHECK(last["old_checkpoint"].get<std::string>().find("\n10\n") != std::string::npos);
  CHECK(last["checkpoint"].get<std::string>().find("\n20\n") != std::string::npos);
  CHECK(ReadAll(state) == saved);  // a fork never overwrites the state

  // The consistency command says the same.
  std::string old_cp = dir + ".old";
  WriteFile(old_cp, log.SignCheckpoint(10));  // the rewritten tree at 10: consistent with 20
  CHECK(RunCommand(verifier::kConsistencyCommand, {"--log", dir, "--log-key", key, "--old", old_cp}, &out) == 0);

  // A checkpoint whose root the entries do not hash to.
  Hash wrong{};
  wrong[0] = 1;
  WriteFile(dir + "/checkpoint", log.SignCheckpoint(20, wrong));
  rc = RunCommand(verifier::kAuditCommand, {"--log", dir, "--log-key", key, "--json"}, &out);
  CHECK(rc == 1);
  j = json::parse(out);
  CHECK(j["violations"].back()["rule"] == "root mismatch");
  CHECK(j["violations"].back()["computed_root"] == Base64Encode(HashView(*TreeRoot(20, log.tree))));
  fs::remove_all(dir);
  fs::remove(state);
  fs::remove(old_cp);
}

TEST_CASE("mirror copies a log it verified and refuses one it cannot", "[verifier]") {
  TestLog log;
  for (int i = 0; i < 700; i++) log.Add("opaque " + std::to_string(i));
  std::string src = TempDir("mirror-src");
  std::string dst = TempDir("mirror-dst");
  std::string key = log.VerifierKey();
  log.WriteMirror(src, 600);
  std::string out;
  REQUIRE(RunCommand(verifier::kMirrorCommand, {"--log", src, "--log-key", key, "--out", dst}, &out) == 0);
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    std::string rel = fs::relative(e.path(), src).string();
    INFO(rel);
    CHECK(ReadAll(dst + "/" + rel) == ReadAll(e.path().string()));
  }
  // A log serving a tile that does not match its entries is refused and
  // the mirror stays as it was.
  log.WriteMirror(src, 700);
  WriteFile(src + "/tile/0/002.p/188", std::string(188 * 32, 'x'));
  CHECK(RunCommand(verifier::kMirrorCommand, {"--log", src, "--log-key", key, "--out", dst}, &out) == 1);
  CHECK(ReadAll(dst + "/checkpoint").find("\n600\n") != std::string::npos);
  log.WriteMirror(src, 700);
  CHECK(RunCommand(verifier::kMirrorCommand, {"--log", src, "--log-key", key, "--out", dst}, &out) == 0);
  CHECK(ReadAll(dst + "/checkpoint").find("\n700\n") != std::string::npos);
  fs::remove_all(src);
  fs::remove_all(dst);
}
