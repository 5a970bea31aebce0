// ledger-verify subject: the check of one GET /v1/subjects/<tag> answer
// (verifier/subject.h, VerifySubjectPage) against answers built here from
// the library alone (entries, an in-memory Merkle tree, a signed checkpoint,
// the subject index with its proofs, SPEC.md §14), honest and then altered
// the ways a lying log could alter them: an access left out, indices
// reordered or beyond the commitment, a commitment signed by another key or
// at the wrong size, a proof for another tag, an entry of another subject,
// a bad inclusion proof, a policy that does not cover the access. Also the
// audit's replay of commitments (verifier/audit.h) and its saved state.
// The verifier's sources are linked in (ledger_verify_objects).
#include <sodium.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../verifier/audit.h"
#include "../verifier/subject.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/subject.h"
#include "ledger/subject_index.h"
#include "ledger/vrf.h"
#include "test_parties.h"
#include "test_util.h"

using namespace ledger;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char kHolder[] = "demo-bank";
const char kAccessor[] = "chat-banking";
const char kPeriod[] = "2026-12";

using ledger_test::MemoryTree;

std::string B64(const Hash& h) { return Base64Encode(HashView(h)); }

// SubjectLog is a small ledger-mode log with a subject index, and the
// answers an honest ledgerd would give about it.
class SubjectLog : public ledger_test::LedgerParties {
 public:
  SubjectLog() : LedgerParties("example.com/subject-test", kHolder, kAccessor) {
    rogue = std::move(Ed25519Signer::Generate()).value();
    Add(HolderEntry());
    Add(AuthorizeEntry());
    policy_index = Add(PolicyEntry(1, {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES"}, 90},
                                       {"FRAUD_PREVENTION", {"TRANSACTIONS"}, 365}}));
  }

  uint64_t Add(Bytes entry) {
    entries.push_back(std::move(entry));
    tree.leaves.push_back(HashLeaf(entries.back()));
    return entries.size() - 1;
  }
  uint64_t AddLogSigned(const char* type, const Bytes& payload) { return Add(LogSigned(type, payload)); }

  SubjectToken Token(const std::string& customer) const {
    return std::move(IssueSubjectToken(*vrf, kHolder, customer, kPeriod)).value();
  }
  SubjectTag Tag(const std::string& customer) const { return *HashFromBytes(Token(customer).tag); }

  uint64_t AddAccess(const std::string& customer, const std::string& purpose, std::set<std::string> categories) {
    AccessRecord r;
    r.request_id = "req-" + std::to_string(entries.size());
    r.accessor = kAccessor;
    r.holder = kHolder;
    r.subject = Token(customer).tag;
    r.purpose = purpose;
    r.categories = std::move(categories);
    r.consent = "consent";
    r.time = "2026-12-01T10:00:0" + std::to_string(entries.size() % 10) + "Z";
    r.actor = "agent-7";
    uint64_t i = Add(SignEnvelope(kAccessPayloadType, EncodeAccess(r), *accessor));
    chains[*HashFromBytes(r.subject)].push_back(i);
    uncommitted[*HashFromBytes(r.subject)] = SubjectValueOf(chains[*HashFromBytes(r.subject)]);
    accesses++;
    return i;
  }

  // Commit appends an honest commitment (or one signed by |signer|).
  uint64_t Commit(const Ed25519Signer* signer = nullptr) {
    std::vector<std::pair<SubjectTag, SubjectValue>> updates(uncommitted.begin(), uncommitted.end());
    uncommitted.clear();
    root = std::move(ApplySubjectUpdates(index, updates)).value();
    IndexRecord r;
    r.size = entries.size();
    r.root = root;
    r.subjects = chains.size();
    r.accesses = accesses;
    r.time = "2026-12-01T10:00:09Z";
    Bytes payload = EncodeIndex(r);
    commitment = signer ? Add(SignEnvelope(kIndexPayloadType, payload, *signer)) : AddLogSigned(kIndexPayloadType, payload);
    committed = chains;
    return *commitment;
  }

  json Proven(uint64_t i) const {
    json j;
    j["index"] = i;
    j["entry"] = Base64Encode(entries[i]);
    auto proof = InclusionProof(i, entries.size(), tree);
    REQUIRE(proof.ok());
    json p = json::array();
    for (const Hash& h : *proof) p.push_back(B64(h));
    j["inclusion"] = p;
    return j;
  }

  std::string Checkpoint() const {
    ledger::Checkpoint cp;
    cp.origin = log_key->name();
    cp.size = entries.size();
    cp.root = std::move(TreeRoot(entries.size(), tree)).value();
    return std::move(log_key->SignNote(cp.Format())).value();
  }

  // Answer is GET /v1/subjects/<tag>?offset&limit as SPEC.md §14 says.
  json Answer(const SubjectTag& tag, uint64_t offset = 0, uint64_t limit = 100) {
    json j;
    j["checkpoint"] = Checkpoint();
    j["subject"] = Base64UrlEncode(HashView(tag));
    std::vector<uint64_t> idx;
    if (commitment) {
      j["commitment"] = Proven(*commitment);
      auto it = committed.find(tag);
      if (it != committed.end()) idx = it->second;
    } else {
      j["commitment"] = nullptr;
    }
    j["count"] = idx.size();
    j["indices"] = idx;
    auto lookup = ProveSubject(index, tag);
    REQUIRE(lookup.ok());
    json proof;
    proof["end"] = SubjectIndexProofEndName(lookup->proof.end);
    json sib = json::array();
    for (const Hash& h : lookup->proof.siblings) sib.push_back(B64(h));
    proof["siblings"] = sib;
    if (lookup->proof.end == SubjectIndexProof::End::kLeaf) {
      proof["other_tag"] = Base64UrlEncode(HashView(lookup->proof.other_tag));
      proof["other_value"] = Base64Encode(EncodeSubjectValue(lookup->proof.other_value));
    }
    j["proof"] = proof;
    j["offset"] = offset;
    j["limit"] = limit;
    json es = json::array();
    for (uint64_t k = offset; k < idx.size() && k < offset + limit; k++) {
      json e = Proven(idx[k]);
      e["policy"] = policy_index;
      es.push_back(e);
    }
    j["entries"] = es;
    json pend = json::array();
    auto all = chains.find(tag);
    if (all != chains.end())
      for (uint64_t i : all->second)
        if (!commitment || i > *commitment) {
          json e = Proven(i);
          e["policy"] = policy_index;
          pend.push_back(e);
        }
    j["pending"] = pend;
    j["policies"] = json::array({Proven(policy_index)});
    return j;
  }

  std::unique_ptr<Ed25519Signer> rogue;  // a key nobody authorised
  std::vector<Bytes> entries;
  MemoryTree tree;
  uint64_t policy_index = 0;
  std::map<SubjectTag, std::vector<uint64_t>> chains, committed;
  std::map<SubjectTag, SubjectValue> uncommitted;
  MemorySubjectNodeStore index;
  Hash root{};
  uint64_t accesses = 0;
  std::optional<uint64_t> commitment;
};

verifier::SubjectPage Check(SubjectLog& log, const json& answer, const SubjectTag& tag, uint64_t offset = 0,
                            uint64_t limit = 100) {
  verifier::SubjectPage page;
  Status s = verifier::VerifySubjectPage(answer.dump(), tag, offset, limit, log.log_key->verifier(),
                                         verifier::WitnessPolicy(), &page);
  REQUIRE(s.ok());
  return page;
}

bool Mentions(const verifier::SubjectPage& p, const std::string& what) {
  for (const auto& f : p.failures)
    if (f.find(what) != std::string::npos) return true;
  return false;
}

std::string Failures(const verifier::SubjectPage& p) {
  std::string out;
  for (const auto& f : p.failures) out += f + "\n";
  return out;
}

}  // namespace

TEST_CASE("subject answers: honest ones verify, each lie is caught") {
  REQUIRE(sodium_init() >= 0);
  SubjectLog log;
  for (int round = 0; round < 3; round++) {
    log.AddAccess("alice", "CUSTOMER_SUPPORT", {"BALANCES"});
    log.AddAccess("bob", "FRAUD_PREVENTION", {"TRANSACTIONS"});
    for (int k = 0; k < 5; k++) log.AddAccess("filler-" + std::to_string(round * 10 + k), "CUSTOMER_SUPPORT", {"BALANCES"});
  }
  // An access the policy does not disclose (an honest ledgerd refuses it;
  // this log is the library's, so it can hold one).
  uint64_t ads = log.AddAccess("alice", "TARGETED_ADVERTISING", {"TRANSACTIONS"});
  log.Commit();
  uint64_t late = log.AddAccess("alice", "CUSTOMER_SUPPORT", {"ACCOUNT_BASIC"});
  SubjectTag alice = log.Tag("alice");

  SECTION("honest member: every access, its disclosure, and the pending one") {
    auto p = Check(log, log.Answer(alice), alice);
    INFO(Failures(p));
    REQUIRE(p.failures.empty());
    REQUIRE(p.commitment);
    CHECK(p.commitment->size == *log.commitment);
    CHECK(p.proof_end == "member");
    REQUIRE(p.indices == log.committed[alice]);
    REQUIRE(p.entries.size() == 4);
    for (size_t k = 0; k < 3; k++) CHECK(p.entries[k].disclosed);
    CHECK(p.entries[3].index == ads);
    CHECK_FALSE(p.entries[3].disclosed);
    CHECK(p.entries[3].disclosure.find("undisclosed use") == 0);
    REQUIRE(p.pending.size() == 1);
    CHECK(p.pending[0].index == late);
    CHECK(p.pending[0].pending);
  }
  SECTION("a customer with no accesses: non-membership verifies") {
    SubjectTag nobody = log.Tag("nobody");
    auto p = Check(log, log.Answer(nobody), nobody);
    INFO(Failures(p));
    CHECK(p.failures.empty());
    CHECK(p.indices.empty());
    CHECK((p.proof_end == "empty" || p.proof_end == "leaf"));
  }
  SECTION("paging: offset 1, limit 2") {
    auto p = Check(log, log.Answer(alice, 1, 2), alice, 1, 2);
    INFO(Failures(p));
    CHECK(p.failures.empty());
    REQUIRE(p.entries.size() == 2);
    CHECK(p.entries[0].index == log.committed[alice][1]);
  }
  SECTION("an access left out of the list") {
    json a = log.Answer(alice);
    a["indices"].erase(a["indices"].begin() + 1);
    a["entries"].erase(a["entries"].begin() + 1);
    a["count"] = 3;
    auto p = Check(log, a, alice);
    CHECK(Mentions(p, "index proof does not verify"));
  }
  SECTION("the undisclosed access left out, and the proof of another state") {
    json a = log.Answer(alice);
    a["indices"].erase(a["indices"].begin() + 3);
    a["entries"].erase(a["entries"].begin() + 3);
    a["count"] = 3;
    CHECK(Mentions(Check(log, a, alice), "index proof does not verify"));
  }
  SECTION("indices reordered") {
    json a = log.Answer(alice);
    std::swap(a["indices"][0], a["indices"][1]);
    CHECK(Mentions(Check(log, a, alice), "strictly increase"));
  }
  SECTION("an index at or beyond the commitment") {
    json a = log.Answer(alice);
    a["indices"].push_back(late);
    a["count"] = 5;
    CHECK(Mentions(Check(log, a, alice), "not below the commitment's size"));
  }
  SECTION("the tag said to be absent") {
    json a = log.Answer(alice);
    json other = log.Answer(log.Tag("nobody"));
    a["indices"] = json::array();
    a["count"] = 0;
    a["entries"] = json::array();
    a["proof"] = other["proof"];
    auto p = Check(log, a, alice);
    CHECK_FALSE(p.failures.empty());
  }
  SECTION("an entry of another subject at a listed index") {
    json a = log.Answer(alice);
    json bob = log.Answer(log.Tag("bob"));
    a["entries"][0] = bob["entries"][0];
    a["indices"][0] = bob["indices"][0];
    auto p = Check(log, a, alice);
    CHECK_FALSE(p.failures.empty());
  }
  SECTION("an entry's inclusion proof altered") {
    json a = log.Answer(alice);
    a["entries"][1]["inclusion"][0] = a["entries"][1]["inclusion"][1];
    CHECK(Mentions(Check(log, a, alice), "is not proven"));
  }
  SECTION("an entry at another index than listed") {
    json a = log.Answer(alice);
    a["entries"][1] = a["entries"][2];
    CHECK(Mentions(Check(log, a, alice), "but the listed index is"));
  }
  SECTION("the page holds fewer entries than listed") {
    json a = log.Answer(alice);
    a["entries"].erase(a["entries"].begin() + 3);
    CHECK(Mentions(Check(log, a, alice), "the page holds 3 entries, not 4"));
  }
  SECTION("a policy that is not the accessor's, or not proven") {
    json a = log.Answer(alice);
    a["entries"][0]["policy"] = 1;  // the accessor entry
    CHECK(Mentions(Check(log, a, alice), "not among the proven policies"));
    a = log.Answer(alice);
    a["entries"][0]["policy"] = nullptr;  // no policy in force: undisclosed, not a lie
    auto p = Check(log, a, alice);
    CHECK(p.failures.empty());
    CHECK_FALSE(p.entries[0].disclosed);
  }
  SECTION("the checkpoint signed by another key") {
    json a = log.Answer(alice);
    auto other = std::move(NoteSigner::Generate("example.com/subject-test")).value();
    ledger::Checkpoint cp;
    cp.origin = other->name();
    cp.size = log.entries.size();
    cp.root = std::move(TreeRoot(log.entries.size(), log.tree)).value();
    a["checkpoint"] = std::move(other->SignNote(cp.Format())).value();
    CHECK(Mentions(Check(log, a, alice), "checkpoint does not verify"));
  }
  SECTION("the answer for another subject") {
    json a = log.Answer(log.Tag("bob"));
    CHECK_FALSE(Check(log, a, alice).failures.empty());
  }
}

TEST_CASE("subject answers: the commitment must be the log's, at its own size") {
  REQUIRE(sodium_init() >= 0);
  SubjectLog log;
  log.AddAccess("alice", "CUSTOMER_SUPPORT", {"BALANCES"});
  SubjectTag alice = log.Tag("alice");

  SECTION("no commitment yet: nothing listed, the access is pending") {
    auto p = Check(log, log.Answer(alice), alice);
    INFO(Failures(p));
    CHECK(p.failures.empty());
    CHECK_FALSE(p.commitment);
    CHECK(p.pending.size() == 1);
  }
  SECTION("signed by a stranger") {
    log.Commit(log.rogue.get());
    CHECK(Mentions(Check(log, log.Answer(alice), alice), "not by the log key"));
  }
  SECTION("the commitment entry is another kind") {
    log.Commit();
    json a = log.Answer(alice);
    a["commitment"] = log.Proven(log.policy_index);
    CHECK(Mentions(Check(log, a, alice), "not an index commitment"));
  }
  SECTION("a size that is not its own index") {
    IndexRecord r;
    r.size = log.entries.size() - 1;
    r.root = std::move(ApplySubjectUpdates(log.index, {{alice, SubjectValueOf(log.chains[alice])}})).value();
    r.subjects = 1;
    r.accesses = 1;
    r.time = "2026-12-01T10:00:09Z";
    log.commitment = log.AddLogSigned(kIndexPayloadType, EncodeIndex(r));
    log.committed = log.chains;
    CHECK(Mentions(Check(log, log.Answer(alice), alice), "not its own index"));
  }
}

TEST_CASE("audit: the subject index rebuilt by replay checks every commitment, and its saved state keeps it") {
  REQUIRE(sodium_init() >= 0);
  SubjectLog log;
  for (int k = 0; k < 40; k++) log.AddAccess("c" + std::to_string(k % 13), "CUSTOMER_SUPPORT", {"BALANCES"});
  uint64_t good = log.Commit();
  log.AddAccess("c1", "CUSTOMER_SUPPORT", {"BALANCES"});
  // A commitment with one access left out (alice's value without it).
  IndexRecord bad;
  bad.size = log.entries.size();
  bad.root = log.root;  // the previous root: the new access omitted
  bad.subjects = log.chains.size();
  bad.accesses = log.accesses - 1;
  bad.time = "2026-12-01T10:00:09Z";
  uint64_t bad_at = log.AddLogSigned(kIndexPayloadType, EncodeIndex(bad));
  log.AddAccess("c2", "CUSTOMER_SUPPORT", {"BALANCES"});
  uint64_t rogue_at = log.Commit(log.rogue.get());
  uint64_t last = log.Commit();

  auto replay_all = [&](verifier::AuditReplay& r, uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; i++) REQUIRE(r.Feed(i, log.entries[i], HashLeaf(log.entries[i]), ParseEntry(log.entries[i])).ok());
  };
  verifier::AuditReplay full(Bytes(log.log_key->verifier().public_key()), 300);
  replay_all(full, 0, log.entries.size());
  std::vector<std::pair<std::string, uint64_t>> got;
  for (const auto& v : full.violations()) got.emplace_back(v.rule, v.index);
  std::vector<std::pair<std::string, uint64_t>> want{{"index commitment", bad_at}, {"unauthorised key", rogue_at}};
  CHECK(got == want);
  REQUIRE(!full.violations().empty());
  const verifier::Violation& v = full.violations()[0];
  REQUIRE(v.index_expected);
  REQUIRE(v.index_found);
  CHECK(v.index_found->accesses + 1 == v.index_expected->accesses);
  CHECK(v.index_found->root != v.index_expected->root);
  auto ix = full.SubjectIndex();
  REQUIRE(ix.ok());
  CHECK(ix->commitments == 3);  // good, bad, last (the rogue's is no commitment)
  CHECK(ix->last_commitment == last);
  CHECK(ix->root == log.root);
  CHECK(ix->subjects == log.chains.size());
  (void)good;

  // Incremental: saved mid-way (after the bad commitment), resumed, same.
  fs::path dir = fs::temp_directory_path() / ("subject_verify_test." + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string state = (dir / "audit.state").string();
  {
    verifier::AuditReplay first(Bytes(log.log_key->verifier().public_key()), 300);
    replay_all(first, 0, bad_at + 1);
    REQUIRE(first.SaveState(state, log.log_key->verifier().VerifierKeyString(), "cp").ok());
  }
  verifier::AuditReplay resumed(Bytes(log.log_key->verifier().public_key()), 300);
  std::string note;
  Status loaded = resumed.LoadState(state, log.log_key->verifier().VerifierKeyString(), &note);
  INFO(loaded.ToString());
  REQUIRE(loaded.ok());
  replay_all(resumed, bad_at + 1, log.entries.size());
  std::vector<std::pair<std::string, uint64_t>> got2;
  for (const auto& w : resumed.violations()) got2.emplace_back(w.rule, w.index);
  CHECK(got2 == want);
  auto ix2 = resumed.SubjectIndex();
  REQUIRE(ix2.ok());
  CHECK(ix2->root == ix->root);
  CHECK(ix2->commitments == ix->commitments);
  CHECK(ix2->subjects == ix->subjects);
  CHECK(ix2->accesses == ix->accesses);
  fs::remove_all(dir);
}
