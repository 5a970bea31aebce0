// Unit tests of ledger-verify's pieces, on logs written straight into a
// directory in C2SP tlog-tiles layout (so every byte, honest or not, is
// under the test's control): proofs computed from tiles against proofs from
// the full tree at every size, the partial-tile fallback, and the audit
// command on a dishonest log (every violation rule, with evidence), the
// incremental audit equal to a full one, a fork and a root mismatch.
// The verifier's sources are linked in (ledger_verify_objects).
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

#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/tiles.h"
#include "ledger/tlog_proof.h"
#include "ledger/vrf.h"
#include "../verifier/audit.h"
#include "../verifier/cli.h"
#include "../verifier/commands.h"
#include "../verifier/fetcher.h"
#include "../verifier/log_reader.h"
#include "test_util.h"

using namespace ledger;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char kOrigin[] = "example.com/verify-test";
const char kHolder[] = "demo-bank";
const char kAccessor[] = "chat-banking";

using ledger_test::MemoryTree;

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

// --- Witness quorum (--witness / --quorum) ----------------------------------------

namespace {

// Cosigners signs checkpoints as witnesses, in C2SP tlog-cosignature v1.
struct Cosigners {
  std::unique_ptr<CosignatureSigner> a = std::move(CosignatureSigner::Generate("witness-a.example")).value();
  std::unique_ptr<CosignatureSigner> b = std::move(CosignatureSigner::Generate("witness-b.example")).value();
  std::unique_ptr<CosignatureSigner> c = std::move(CosignatureSigner::Generate("witness-c.example")).value();
  std::unique_ptr<CosignatureSigner> outsider = std::move(CosignatureSigner::Generate("witness-x.example")).value();
};

std::string VKey(const CosignatureSigner& w) { return w.verifier().VerifierKeyString(); }

// Body returns a signed note's text (the checkpoint body a cosignature covers).
std::string Body(const std::string& note) { return note.substr(0, note.find("\n\n") + 1); }

// Cosign appends a cosignature line by each of |witnesses| to a signed note.
std::string Cosign(const std::string& note, const std::vector<const CosignatureSigner*>& witnesses,
                   uint64_t timestamp = 1767225600) {
  std::string out = note;
  for (const CosignatureSigner* w : witnesses) {
    auto line = w->CosignLine(Body(note), timestamp);
    REQUIRE(line.ok());
    out += *line;
  }
  return out;
}

// WitnessArgs returns "--witness K" for each key, then "--quorum Q" if Q >= 0.
std::vector<std::string> WitnessArgs(const std::vector<const CosignatureSigner*>& witnesses, int quorum = -1) {
  std::vector<std::string> out;
  for (const CosignatureSigner* w : witnesses) {
    out.push_back("--witness");
    out.push_back(VKey(*w));
  }
  if (quorum >= 0) {
    out.push_back("--quorum");
    out.push_back(std::to_string(quorum));
  }
  return out;
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// WitnessedLog: an honest access ledger of 5 entries in a mirror directory.
struct WitnessedLog {
  TestLog log;
  Parties p;
  Cosigners w;
  std::string dir = TempDir("witness");
  std::string key;
  std::string note;  // the log-signed checkpoint, no cosignatures

  WitnessedLog() {
    log.Add(HolderEntry(log, p));                                                 // 0
    log.Add(AuthorizeEntry(p, *p.accessor));                                      // 1
    log.Add(PolicyEntry(p, 1));                                                   // 2
    log.Add(AccessEntry(*p.accessor, "r1", "CUSTOMER_SUPPORT", "BALANCES"));      // 3
    log.Add(AccessEntry(*p.accessor, "r2", "CUSTOMER_SUPPORT", "TRANSACTIONS"));  // 4
    log.WriteMirror(dir, log.entries.size());
    key = log.VerifierKey();
    note = ReadAll(dir + "/checkpoint");
  }
  ~WitnessedLog() { fs::remove_all(dir); }

  // Checkpoint writes |text| as the mirror's checkpoint and to a file.
  std::string Checkpoint(const std::string& text, const std::string& name = "cp") {
    WriteFile(dir + "/checkpoint", text);
    std::string path = dir + "." + name;
    WriteFile(path, text);
    return path;
  }

  // CheckpointRc runs `checkpoint --checkpoint FILE` with the witness words.
  int CheckpointRc(const std::string& text, const std::vector<std::string>& words, std::string* out) {
    std::string path = Checkpoint(text);
    int rc = RunCommand(verifier::kCheckpointCommand, Concat({"--log-key", key, "--checkpoint", path}, words), out);
    fs::remove(path);
    return rc;
  }
};

}  // namespace

TEST_CASE("checkpoint --witness/--quorum: distinct listed witnesses with valid cosignatures", "[verifier][witness]") {
  WitnessedLog t;
  Cosigners& w = t.w;
  std::string out;

  SECTION("quorum met (default: every listed witness)") {
    std::string two = Cosign(t.note, {w.a.get(), w.b.get()});
    int rc = t.CheckpointRc(two, WitnessArgs({w.a.get(), w.b.get()}), &out);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("witnesses   2 of 2 listed cosigned, quorum 2") != std::string::npos);
    CHECK(out.find("cosigned      " + VKey(*w.a)) != std::string::npos);
    REQUIRE(t.CheckpointRc(two, Concat(WitnessArgs({w.a.get(), w.b.get(), w.c.get()}, 2), {"--json"}), &out) == 0);
    json j = json::parse(out);
    CHECK(j["verified"] == true);
    CHECK(j["note"] == two);
    CHECK(j["witnesses"]["quorum"] == 2);
    CHECK(j["witnesses"]["listed"] == 3);
    CHECK(j["witnesses"]["valid"] == 2);
    CHECK(j["witnesses"]["cosigned"][0]["witness"] == VKey(*w.a));
    CHECK(j["witnesses"]["cosigned"][0]["timestamp"] == 1767225600);
    CHECK(j["witnesses"]["cosigned"][1]["witness"] == VKey(*w.b));
    CHECK(j["witnesses"]["not_cosigned"] == json::array({VKey(*w.c)}));
    // A cosigned checkpoint still verifies without a witness policy, and
    // the output is unchanged (no "witnesses").
    REQUIRE(t.CheckpointRc(two, {"--json"}, &out) == 0);
    CHECK_FALSE(json::parse(out).contains("witnesses"));
    // @FILE, as ledger-witness writes STATE/witness.vkey.
    std::string vkey_file = t.dir + ".a.vkey";
    WriteFile(vkey_file, VKey(*w.a) + "\n");
    CHECK(t.CheckpointRc(two, {"--witness", "@" + vkey_file}, &out) == 0);
    CHECK(t.CheckpointRc(two, {"--witness", vkey_file, "--witness", VKey(*w.b)}, &out) == 0);
    fs::remove(vkey_file);
  }
  SECTION("one short of the quorum: exit 1, naming the count, the quorum and who cosigned") {
    std::string two = Cosign(t.note, {w.a.get(), w.b.get()});
    int rc = t.CheckpointRc(two, WitnessArgs({w.a.get(), w.b.get(), w.c.get()}), &out);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find("2 valid cosignatures from distinct listed witnesses, 3 required") != std::string::npos);
    CHECK(out.find("cosigned by: witness-a.example, witness-b.example") != std::string::npos);
    CHECK(out.find("not cosigned  " + VKey(*w.c)) != std::string::npos);
    REQUIRE(t.CheckpointRc(two, Concat(WitnessArgs({w.a.get(), w.b.get(), w.c.get()}, 3), {"--json"}), &out) == 1);
    json j = json::parse(out);
    CHECK(j["verified"] == false);
    CHECK(j["error"].get<std::string>().find("witness quorum not met") != std::string::npos);
    CHECK(j["witnesses"]["valid"] == 2);
    CHECK(j["witnesses"]["quorum"] == 3);
    CHECK(j["witnesses"]["cosigned"].size() == 2);
    CHECK(j["witnesses"]["not_cosigned"] == json::array({VKey(*w.c)}));
    // No cosignature at all.
    CHECK(t.CheckpointRc(t.note, WitnessArgs({w.a.get()}), &out) == 1);
    CHECK(out.find("0 valid cosignatures from distinct listed witnesses, 1 required") != std::string::npos);
    CHECK(out.find("cosigned by: none") != std::string::npos);
  }
  SECTION("several lines of one witness count once, and so does a witness listed twice") {
    std::string repeated = Cosign(Cosign(t.note, {w.a.get()}, 1767225600), {w.a.get()}, 1767225700);
    CHECK(t.CheckpointRc(repeated, WitnessArgs({w.a.get(), w.b.get()}, 2), &out) == 1);
    CHECK(out.find("1 valid cosignature from distinct listed witnesses, 2 required") != std::string::npos);
    REQUIRE(t.CheckpointRc(repeated, Concat(WitnessArgs({w.a.get(), w.b.get()}, 1), {"--json"}), &out) == 0);
    json j = json::parse(out);
    CHECK(j["witnesses"]["valid"] == 1);
    CHECK(j["witnesses"]["cosigned"][0]["timestamp"] == 1767225700);  // the latest
    // --witness A --witness A is one witness: quorum 1 by default, 2 is a
    // usage error.
    CHECK(t.CheckpointRc(repeated, WitnessArgs({w.a.get(), w.a.get()}), &out) == 0);
    CHECK(t.CheckpointRc(repeated, WitnessArgs({w.a.get(), w.a.get()}, 2), &out) == 2);
  }
  SECTION("an unlisted witness is ignored, even a bad line of it") {
    std::string with_outsider = Cosign(t.note, {w.a.get(), w.outsider.get()});
    CHECK(t.CheckpointRc(with_outsider, WitnessArgs({w.a.get(), w.b.get()}, 2), &out) == 1);
    CHECK(out.find("1 valid cosignature from distinct listed witnesses, 2 required") != std::string::npos);
    CHECK(t.CheckpointRc(with_outsider, WitnessArgs({w.a.get(), w.b.get()}, 1), &out) == 0);
    CHECK(out.find("witness-x.example") == std::string::npos);
    // An outsider's line over another checkpoint does not verify; it is
    // not checked at all.
    std::string bad_outsider = Cosign(t.note, {w.a.get()}) + "— witness-x.example " +
                               Base64Encode(std::string(4 + 8 + 64, '\x01')) + "\n";
    CHECK(t.CheckpointRc(bad_outsider, WitnessArgs({w.a.get()}), &out) == 0);
  }
  SECTION("a bad cosignature by a listed witness refuses the checkpoint, whatever the quorum") {
    // a's line over another checkpoint (size 4), appended to this one.
    std::string other = t.log.SignCheckpoint(4);
    auto wrong = w.a->CosignLine(Body(other), 1767225600);
    REQUIRE(wrong.ok());
    std::string bad = Cosign(t.note, {w.b.get()}) + *wrong;
    int rc = t.CheckpointRc(bad, WitnessArgs({w.a.get(), w.b.get()}, 1), &out);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find("invalid cosignature by witness witness-a.example") != std::string::npos);
    // Tampered signature bytes.
    std::string good_a = *w.a->CosignLine(Body(t.note), 1767225600);
    auto sp = good_a.rfind(' ');
    Bytes sig = *Base64Decode(good_a.substr(sp + 1, good_a.size() - sp - 2));
    sig[20] ^= 1;
    std::string tampered = t.note + good_a.substr(0, sp + 1) + Base64Encode(sig) + "\n";
    CHECK(t.CheckpointRc(tampered, WitnessArgs({w.a.get()}, 0), &out) == 1);
    // Without a policy the bad line is someone else's business.
    CHECK(t.CheckpointRc(tampered, {}, &out) == 0);
    // The log's own signature is still required.
    std::string unsigned_note = Body(t.note) + "\n" + *w.a->CosignLine(Body(t.note), 1767225600);
    CHECK(t.CheckpointRc(unsigned_note, WitnessArgs({w.a.get()}), &out) == 1);
  }
  SECTION("usage errors: a quorum above the distinct witnesses, bad keys") {
    std::string two = Cosign(t.note, {w.a.get(), w.b.get()});
    CHECK(t.CheckpointRc(two, WitnessArgs({w.a.get(), w.b.get()}, 3), &out) == 2);
    CHECK(t.CheckpointRc(two, {"--quorum", "1"}, &out) == 2);
    CHECK(t.CheckpointRc(two, {"--quorum", "0"}, &out) == 0);
    CHECK(t.CheckpointRc(two, {"--witness", "not-a-key"}, &out) == 2);
    CHECK(t.CheckpointRc(two, {"--witness", t.key}, &out) == 2);  // a log key (type 0x01), not a witness key
    CHECK(t.CheckpointRc(two, Concat(WitnessArgs({w.a.get()}), {"--quorum", "x"}), &out) == 2);
    CHECK(t.CheckpointRc(two, Concat(WitnessArgs({w.a.get()}), {"--quorum", "1", "--quorum", "1"}), &out) == 2);
    // Every command refuses a quorum above the witnesses before doing anything.
    std::vector<std::string> too_many = WitnessArgs({w.a.get()}, 2);
    CHECK(RunCommand(verifier::kAuditCommand, Concat({"--log", t.dir, "--log-key", t.key}, too_many), &out) == 2);
    CHECK(RunCommand(verifier::kMirrorCommand, Concat({"--log", t.dir, "--log-key", t.key, "--out", t.dir + ".m"}, too_many),
                     &out) == 2);
    CHECK(RunCommand(verifier::kConsistencyCommand, Concat({"--log", t.dir, "--log-key", t.key, "--old", t.dir + "/checkpoint"}, too_many),
                     &out) == 2);
    fs::remove_all(t.dir + ".m");
  }
}

TEST_CASE("every command that opens a checkpoint applies the witness quorum", "[verifier][witness]") {
  WitnessedLog t;
  Cosigners& w = t.w;
  std::string out;
  const std::string two = Cosign(t.note, {w.a.get(), w.b.get()});
  const std::vector<std::string> ab = WitnessArgs({w.a.get(), w.b.get()});                 // quorum 2: met
  const std::vector<std::string> abc = WitnessArgs({w.a.get(), w.b.get(), w.c.get()});     // quorum 3: one short
  std::string cp_file = t.Checkpoint(two);  // also the mirror's checkpoint

  SECTION("inclusion: against a checkpoint, and a tlog-proof's") {
    std::string entry = t.dir + ".entry";
    WriteFile(entry, t.log.entries[3] + "\n");
    std::vector<std::string> base = {"--log", t.dir, "--log-key", t.key, "--entry", entry, "--index", "3"};
    CHECK(RunCommand(verifier::kInclusionCommand, Concat(base, ab), &out) == 0);
    CHECK(RunCommand(verifier::kInclusionCommand, Concat(Concat(base, {"--checkpoint", cp_file}), ab), &out) == 0);
    int rc = RunCommand(verifier::kInclusionCommand, Concat(Concat(base, abc), {"--json"}), &out);
    INFO(out);
    CHECK(rc == 1);
    json j = json::parse(out);
    CHECK(j["verified"] == false);
    CHECK(j["witnesses"]["valid"] == 2);
    TlogProof p;
    p.extra = t.log.entries[3];
    p.index = 3;
    p.inclusion = *InclusionProof(3, 5, t.log.tree);
    p.checkpoint = two;
    std::string proof = t.dir + ".proof";
    WriteFile(proof, FormatTlogProof(p));
    CHECK(RunCommand(verifier::kInclusionCommand, Concat({"--log-key", t.key, "--proof", proof, "--json"}, ab), &out) == 0);
    CHECK(json::parse(out)["witnesses"]["valid"] == 2);
    CHECK(RunCommand(verifier::kInclusionCommand, Concat({"--log-key", t.key, "--proof", proof}, abc), &out) == 1);
    CHECK(out.find("2 valid cosignatures from distinct listed witnesses, 3 required") != std::string::npos);
    fs::remove(entry);
    fs::remove(proof);
  }
  SECTION("consistency: both checkpoints must meet the quorum") {
    std::string old_plain = t.dir + ".old";
    std::string old_two = t.dir + ".old2";
    WriteFile(old_plain, t.log.SignCheckpoint(3));
    WriteFile(old_two, Cosign(t.log.SignCheckpoint(3), {w.a.get(), w.b.get()}));
    std::vector<std::string> base = {"--log", t.dir, "--log-key", t.key};
    CHECK(RunCommand(verifier::kConsistencyCommand, Concat(Concat(base, {"--old", old_two}), ab), &out) == 0);
    CHECK(RunCommand(verifier::kConsistencyCommand, Concat(base, {"--old", old_plain}), &out) == 0);
    int rc = RunCommand(verifier::kConsistencyCommand, Concat(Concat(base, {"--old", old_plain}), ab), &out);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find("0 valid cosignatures") != std::string::npos);
    // The new checkpoint (--new FILE) too.
    CHECK(RunCommand(verifier::kConsistencyCommand, Concat(Concat(base, {"--old", old_two, "--new", old_plain}), ab), &out) == 1);
    CHECK(RunCommand(verifier::kConsistencyCommand, Concat(Concat(base, {"--old", old_two, "--new", cp_file, "--json"}), ab), &out) == 0);
    json j = json::parse(out);
    CHECK(j["old_witnesses"]["valid"] == 2);
    CHECK(j["new_witnesses"]["valid"] == 2);
    fs::remove(old_plain);
    fs::remove(old_two);
  }
  SECTION("receipt: the gate's witness policy") {
    TlogProof p;
    p.extra = t.log.entries[3];
    p.index = 3;
    p.inclusion = *InclusionProof(3, 5, t.log.tree);
    p.checkpoint = two;
    std::string receipt = t.dir + ".receipt";
    WriteFile(receipt, FormatTlogProof(p));
    std::vector<std::string> base = {"--log-key", t.key, "--receipt", receipt, "--accessor", kAccessor};
    CHECK(RunCommand(verifier::kReceiptCommand, base, &out) == 0);
    CHECK(RunCommand(verifier::kReceiptCommand, Concat(Concat(base, ab), {"--json"}), &out) == 0);
    CHECK(json::parse(out)["witnesses"]["valid"] == 2);
    int rc = RunCommand(verifier::kReceiptCommand, Concat(base, abc), &out);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find("refused: witness quorum: ") != std::string::npos);
    CHECK(out.find("2 of the listed witnesses (witness-a.example, witness-b.example), 3 required") != std::string::npos);
    REQUIRE(RunCommand(verifier::kReceiptCommand, Concat(Concat(base, abc), {"--json"}), &out) == 1);
    json j = json::parse(out);
    CHECK(j["verified"] == false);
    CHECK(j["witnesses"]["not_cosigned"] == json::array({VKey(*w.c)}));
    CHECK(RunCommand(verifier::kReceiptCommand, Concat(base, WitnessArgs({w.a.get()}, 2)), &out) == 2);
    fs::remove(receipt);
  }
  SECTION("audit, and --state bound to the witness policy") {
    std::vector<std::string> base = {"--log", t.dir, "--log-key", t.key};
    CHECK(RunCommand(verifier::kAuditCommand, Concat(base, ab), &out) == 0);
    CHECK(out.find("witnesses   2 of 2 listed cosigned, quorum 2") != std::string::npos);
    REQUIRE(RunCommand(verifier::kAuditCommand, Concat(Concat(base, ab), {"--json"}), &out) == 0);
    json full = json::parse(out);
    CHECK(full["witnesses"]["valid"] == 2);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(Concat(base, abc), {"--json"}), &out) == 1);
    json j = json::parse(out);
    CHECK(j["verified"] == false);
    CHECK(j["witnesses"]["valid"] == 2);
    CHECK(j["error"].get<std::string>().find("3 required") != std::string::npos);

    std::string state = t.dir + ".state";
    fs::remove(state);
    REQUIRE(RunCommand(verifier::kAuditCommand, Concat(Concat(base, {"--state", state, "--json"}), ab), &out) == 0);
    CHECK(json::parse(out) == full);
    // The same policy resumes (in any order, with repeats); another one is refused.
    std::vector<std::string> ba = WitnessArgs({w.b.get(), w.a.get(), w.a.get()}, 2);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(Concat(base, {"--state", state, "--json"}), ba), &out) == 0);
    CHECK(json::parse(out) == full);
    std::string saved = ReadAll(state);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(base, {"--state", state}), &out) == 2);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(Concat(base, {"--state", state}), WitnessArgs({w.a.get(), w.b.get()}, 1)), &out) == 2);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(Concat(base, {"--state", state}), WitnessArgs({w.a.get()})), &out) == 2);
    CHECK(ReadAll(state) == saved);
    // And a state built without witnesses refuses a policy.
    fs::remove(state);
    REQUIRE(RunCommand(verifier::kAuditCommand, Concat(base, {"--state", state}), &out) == 0);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(Concat(base, {"--state", state}), ab), &out) == 2);
    CHECK(RunCommand(verifier::kAuditCommand, Concat(base, {"--state", state}), &out) == 0);
    fs::remove(state);
  }
  SECTION("mirror keeps the cosignatures and refuses a checkpoint below quorum") {
    std::string dst = t.dir + ".mirror";
    fs::remove_all(dst);
    REQUIRE(RunCommand(verifier::kMirrorCommand, Concat({"--log", t.dir, "--log-key", t.key, "--out", dst}, ab), &out) == 0);
    CHECK(ReadAll(dst + "/checkpoint") == two);
    CHECK(RunCommand(verifier::kAuditCommand, Concat({"--log", dst, "--log-key", t.key}, ab), &out) == 0);
    // The log grows and its new checkpoint is cosigned by a only.
    t.log.Add(AccessEntry(*t.p.accessor, "r3", "CUSTOMER_SUPPORT", "BALANCES"));
    t.log.WriteMirror(t.dir, 6);
    WriteFile(t.dir + "/checkpoint", Cosign(t.log.SignCheckpoint(6), {w.a.get()}));
    int rc = RunCommand(verifier::kMirrorCommand, Concat({"--log", t.dir, "--log-key", t.key, "--out", dst, "--json"}, ab), &out);
    INFO(out);
    CHECK(rc == 1);
    json j = json::parse(out);
    CHECK(j["witnesses"]["cosigned"].size() == 1);
    CHECK(ReadAll(dst + "/checkpoint") == two);  // not updated
    CHECK(RunCommand(verifier::kMirrorCommand, Concat({"--log", t.dir, "--log-key", t.key, "--out", dst}, WitnessArgs({w.a.get(), w.b.get()}, 1)),
                     &out) == 0);
    CHECK(ReadAll(dst + "/checkpoint").find("\n6\n") != std::string::npos);
    fs::remove_all(dst);
  }
  SECTION("reconcile") {
    std::string releases = t.dir + ".releases";
    WriteFile(releases, "{\"request_id\":\"r1\",\"accessor\":\"" + std::string(kAccessor) + "\",\"subject\":\"" +
                            Base64UrlEncode(Bytes(32, 'S')) + "\",\"index\":3}\n");
    std::vector<std::string> base = {"--log", t.dir, "--log-key", t.key, "--releases", releases, "--holder", kHolder};
    CHECK(RunCommand(verifier::kReconcileCommand, Concat(base, ab), &out) == 0);
    CHECK(RunCommand(verifier::kReconcileCommand, Concat(Concat(base, {"--checkpoint", cp_file, "--json"}), ab), &out) == 0);
    CHECK(json::parse(out)["witnesses"]["valid"] == 2);
    int rc = RunCommand(verifier::kReconcileCommand, Concat(base, abc), &out);
    INFO(out);
    CHECK(rc == 1);
    CHECK(out.find("2 valid cosignatures from distinct listed witnesses, 3 required") != std::string::npos);
    fs::remove(releases);
  }
  fs::remove(cp_file);
}

TEST_CASE("audit request ids: fingerprints settled exactly by the entries they point to", "[verifier][request_ids]") {
  // 8-bit fingerprints: nearly every key collides with others, so every
  // answer below is decided by reading entries again.
  auto signer = Ed25519Signer::Generate();
  REQUIRE(signer.ok());
  std::vector<Bytes> entries;
  auto make = [&](const std::string& accessor, const std::string& id, const std::string& consent) {
    AccessRecord r;
    r.request_id = id;
    r.accessor = accessor;
    r.holder = "bank";
    r.subject = Bytes(32, 's');
    r.purpose = "CUSTOMER_SUPPORT";
    r.categories = {"BALANCES"};
    r.consent = consent;
    r.time = "2026-01-01T00:00:00Z";
    return SignEnvelope(kAccessPayloadType, EncodeAccess(r), **signer);
  };
  verifier::AuditStateStore store(verifier::RequestIdSet(8));
  uint64_t reads = 0;
  store.set_resolver([&](uint64_t index) -> StatusOr<std::optional<verifier::AuditStateStore::ResolvedRequest>> {
    reads++;
    if (index >= entries.size()) return Status::Internal("no such entry");
    return verifier::ResolvedRequestOf(entries[index], index);
  });
  constexpr int kKeys = 3000;
  for (int i = 0; i < kKeys; i++) {
    std::string accessor = i % 2 ? "a-one" : "a-two";
    entries.push_back(make(accessor, "req-" + std::to_string(i), "c"));
    std::string key = verifier::RequestKeyOf(accessor, "req-" + std::to_string(i));
    auto absent = store.Get(key);
    REQUIRE(absent.ok());
    REQUIRE(!absent->has_value());
    auto parsed = ParseEntry(entries.back());
    REQUIRE(parsed.ok());
    REQUIRE(store.Put(key, std::to_string(i) + " " + HexEncode(HashView(Sha256(parsed->envelope.payload)))).ok());
  }
  REQUIRE(store.ids().size() == static_cast<uint64_t>(kKeys));
  REQUIRE(reads > 0);
  for (int i = 0; i < kKeys; i += 7) {
    std::string accessor = i % 2 ? "a-one" : "a-two";
    auto v = store.Get(verifier::RequestKeyOf(accessor, "req-" + std::to_string(i)));
    REQUIRE(v.ok());
    REQUIRE(v->has_value());
    auto parsed = ParseEntry(entries[i]);
    REQUIRE(**v == std::to_string(i) + " " + HexEncode(HashView(Sha256(parsed->envelope.payload))));
    // The same id under the other accessor was never logged.
    auto other = store.Get(verifier::RequestKeyOf(i % 2 ? "a-two" : "a-one", "req-" + std::to_string(i)));
    REQUIRE(other.ok());
    REQUIRE(!other->has_value());
  }
  // Holders, keys and policies are kept as they are.
  REQUIRE(store.Put("h/bank", "x y 0").ok());
  REQUIRE(**store.Get("h/bank") == "x y 0");
  // Full 64-bit fingerprints under one key: no collision among these keys,
  // so an absent key needs no read.
  verifier::RequestIdSet wide;
  for (uint64_t i = 0; i < 100000; i++) REQUIRE(wide.Insert(wide.Fingerprint("r/a/" + std::to_string(i)), i).ok());
  std::vector<uint64_t> found;
  REQUIRE(wide.Find(wide.Fingerprint("r/a/77777"), &found).ok());
  REQUIRE(found == std::vector<uint64_t>{77777});
  found.clear();
  REQUIRE(wide.Find(wide.Fingerprint("r/a/100000"), &found).ok());
  REQUIRE(found.empty());
  REQUIRE(wide.memory_bytes() < 100000 * 40);
  REQUIRE(!wide.Insert(1, uint64_t{1} << 40).ok());
}
