// GET /v1/subjects/<tag> end to end (SPEC.md §14): ledgerd --demo commits
// its demo accesses by itself; every answer is checked the way §14 tells a
// client to, with the pure library only; non-membership, bad tags, paging,
// submitted commitments, restarts with pending accesses, opaque mode.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <set>
#include <thread>

#include "ledger/files.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/subject.h"
#include "ledger/subject_index.h"
#include "ledger/vrf.h"
#include "ledgerd_process.h"

using json = nlohmann::json;
using namespace ledger;
using ledger_test::LedgerdProcess;
using ledger_test::TempDir;

namespace {

std::string Period() {
  std::time_t tt = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char period[8];
  strftime(period, sizeof period, "%Y-%m", &tm);
  return period;
}

SubjectTag TagFor(const std::string& data, const std::string& customer) {
  auto vrf = LoadVrfKeyFile(data + "/demo/holder-vrf.key");
  REQUIRE(vrf.ok());
  auto token = IssueSubjectToken(**vrf, "demo-bank", customer, Period());
  REQUIRE(token.ok());
  return *HashFromBytes(token->tag);
}

json Get(httplib::Client& cli, const std::string& path, int want_status = 200) {
  auto res = cli.Get(path.c_str());
  REQUIRE(res);
  INFO(path << " -> " << res->status << " " << res->body);
  REQUIRE(res->status == want_status);
  json j = json::parse(res->body, nullptr, false);
  REQUIRE(j.is_object());
  return j;
}

std::string Path(const SubjectTag& tag, const std::string& query = "") {
  return "/v1/subjects/" + Base64UrlEncode(HashView(tag)) + query;
}

Bytes B64(const json& j) {
  REQUIRE(j.is_string());
  auto b = Base64Decode(j.get<std::string>());
  REQUIRE(b.ok());
  return *b;
}

// Proven checks {"index", "entry", "inclusion"} against the checkpoint and
// returns the parsed entry.
ParsedEntry CheckProven(const json& p, const Checkpoint& cp) {
  REQUIRE(p["index"].is_number_unsigned());
  uint64_t index = p["index"].get<uint64_t>();
  Bytes entry = B64(p["entry"]);
  std::vector<Hash> proof;
  REQUIRE(ledger_test::DecodeHashes(p["inclusion"], &proof));
  auto root = RootFromInclusionProof(HashLeaf(entry), index, cp.size, proof);
  REQUIRE(root.ok());
  REQUIRE(*root == cp.root);
  auto parsed = ParseEntry(entry);
  REQUIRE(parsed.ok());
  return std::move(*parsed);
}

struct Checked {
  uint64_t commitment_size = 0;
  std::vector<uint64_t> indices;  // covered by the commitment
  std::vector<uint64_t> listed;   // entries on this page
  std::vector<uint64_t> pending;
  size_t proof_bytes = 0;
};

// CheckAnswer applies every client check of SPEC.md §14 to |j|.
Checked CheckAnswer(const json& j, const SubjectTag& tag, const NoteVerifier& log, const Bytes& log_key) {
  Checked out;
  auto cp = OpenCheckpoint(j["checkpoint"].get<std::string>(), log);
  REQUIRE(cp.ok());
  REQUIRE(j["subject"] == Base64UrlEncode(HashView(tag)));
  Hash root = SubjectEmptyHash();
  if (j["commitment"].is_null()) {
    REQUIRE(j["count"] == 0);
  } else {
    ParsedEntry c = CheckProven(j["commitment"], *cp);
    REQUIRE(c.kind == EntryKind::kIndex);
    REQUIRE(c.envelope.public_key == log_key);
    REQUIRE(c.index().size == j["commitment"]["index"].get<uint64_t>());
    root = c.index().root;
    out.commitment_size = c.index().size;
  }
  out.indices = j["indices"].get<std::vector<uint64_t>>();
  REQUIRE(j["count"].get<uint64_t>() == out.indices.size());
  for (size_t k = 0; k < out.indices.size(); k++) {
    if (k > 0) REQUIRE(out.indices[k] > out.indices[k - 1]);
    REQUIRE(out.indices[k] < out.commitment_size);
  }
  // The index proof.
  const json& pj = j["proof"];
  auto end = ParseSubjectIndexProofEnd(pj["end"].get<std::string>());
  REQUIRE(end.ok());
  SubjectIndexProof proof;
  proof.end = *end;
  REQUIRE(ledger_test::DecodeHashes(pj["siblings"], &proof.siblings));
  out.proof_bytes = 32 * proof.siblings.size();
  if (proof.end == SubjectIndexProof::End::kLeaf) {
    auto other = Base64UrlDecode(pj["other_tag"].get<std::string>());
    REQUIRE(other.ok());
    proof.other_tag = *HashFromBytes(*other);
    auto v = DecodeSubjectValue(B64(pj["other_value"]));
    REQUIRE(v.ok());
    proof.other_value = *v;
    out.proof_bytes += 72;
  }
  std::optional<SubjectValue> value;
  if (!out.indices.empty()) value = SubjectValueOf(out.indices);
  Status verified = VerifySubjectIndexProof(root, tag, value, proof);
  INFO(verified.ToString());
  REQUIRE(verified.ok());
  REQUIRE((proof.end == SubjectIndexProof::End::kMember) == !out.indices.empty());

  // Policies, each once, proven.
  std::map<uint64_t, PolicyRecord> policies;
  for (const json& p : j["policies"]) {
    ParsedEntry e = CheckProven(p, *cp);
    REQUIRE(e.kind == EntryKind::kPolicy);
    REQUIRE(policies.emplace(p["index"].get<uint64_t>(), e.policy()).second);
  }
  std::set<uint64_t> referenced;
  auto check_access = [&](const json& e) {
    ParsedEntry a = CheckProven(e, *cp);
    REQUIRE(a.kind == EntryKind::kAccess);
    REQUIRE(a.access().subject == Bytes(HashView(tag)));
    uint64_t index = e["index"].get<uint64_t>();
    REQUIRE(e["policy"].is_number_unsigned());  // the demo's accesses all had one
    uint64_t p = e["policy"].get<uint64_t>();
    REQUIRE(policies.count(p) == 1);
    REQUIRE(p < index);
    REQUIRE(policies[p].holder == a.access().holder);
    REQUIRE(policies[p].accessor == a.access().accessor);
    // Disclosed: the purpose with every category is in the policy.
    bool disclosed = false;
    for (const auto& pp : policies[p].purposes)
      if (pp.purpose == a.access().purpose)
        disclosed = std::includes(pp.categories.begin(), pp.categories.end(), a.access().categories.begin(),
                                  a.access().categories.end());
    CHECK(disclosed);
    referenced.insert(p);
    return index;
  };
  uint64_t offset = j["offset"].get<uint64_t>();
  const json& entries = j["entries"];
  for (size_t k = 0; k < entries.size(); k++) {
    uint64_t index = check_access(entries[k]);
    REQUIRE(offset + k < out.indices.size());
    REQUIRE(index == out.indices[offset + k]);
    out.listed.push_back(index);
  }
  REQUIRE(entries.size() == std::min<uint64_t>(j["limit"].get<uint64_t>(),
                                                out.indices.size() > offset ? out.indices.size() - offset : 0));
  for (const json& e : j["pending"]) {
    uint64_t index = check_access(e);
    REQUIRE(index >= out.commitment_size);
    if (!out.pending.empty()) REQUIRE(index > out.pending.back());
    out.pending.push_back(index);
  }
  REQUIRE(referenced.size() == policies.size());
  return out;
}

// WaitForCount polls until |tag| has |count| committed accesses and none
// pending (the commitment comes by itself).
json WaitForCount(httplib::Client& cli, const SubjectTag& tag, uint64_t count) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    json j = Get(cli, Path(tag));
    if (!j["commitment"].is_null() && j["count"] == count && j["pending"].empty()) return j;
    INFO(j.dump());
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ReadLogVerifier returns the verifier key of the log that ledgerd keeps
// in |data|.
NoteVerifier ReadLogVerifier(const std::string& data) {
  auto vkey = ReadFile(data + "/log.vkey");
  REQUIRE(vkey.ok());
  auto log = NoteVerifier::Parse(ledger_test::TrimTrailingWhitespace(*vkey));
  REQUIRE(log.ok());
  return *log;
}

Bytes AccessFor(const std::string& data, const SubjectTag& tag, const std::string& request_id) {
  auto key = LoadSigningKeyFile(data + "/demo/accessor.key");
  REQUIRE(key.ok());
  AccessRecord r;
  r.request_id = request_id;
  r.accessor = "chat-banking";
  r.holder = "demo-bank";
  r.subject = Bytes(HashView(tag));
  r.purpose = "CUSTOMER_SUPPORT";
  r.categories = {"BALANCES"};
  r.consent = "consent-e2e";
  r.time = FormatTime(std::time(nullptr));
  return SignEnvelope(kAccessPayloadType, EncodeAccess(r), **key);
}

}  // namespace

TEST_CASE("subjects e2e: demo accesses committed, proven, paged; restart with pending accesses") {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  LedgerdProcess server(data);
  server.Start({"--demo", "--index-interval-ms", "200"});
  auto cli = ledger_test::MakeClient(server.port());
  const NoteVerifier log = ReadLogVerifier(data);
  const Bytes log_key(log.public_key());
  const SubjectTag alice = TagFor(data, "alice"), bob = TagFor(data, "bob"), carol = TagFor(data, "carol");

  // The demo's five accesses (alice 3, bob 2) get committed without any
  // further request.
  json a = WaitForCount(*cli, alice, 3);
  Checked ca = CheckAnswer(a, alice, log, log_key);
  CHECK(ca.listed == ca.indices);
  CHECK(a["policies"].size() == 1);
  json b = WaitForCount(*cli, bob, 2);
  Checked cb = CheckAnswer(b, bob, log, log_key);
  CHECK(cb.commitment_size == ca.commitment_size);
  for (uint64_t i : cb.indices) CHECK(std::find(ca.indices.begin(), ca.indices.end(), i) == ca.indices.end());
  json jc = Get(*cli, Path(carol));
  Checked cc = CheckAnswer(jc, carol, log, log_key);  // non-membership
  CHECK(cc.indices.empty());
  CHECK(jc["entries"].empty());
  CHECK(jc["policies"].empty());
  CHECK(jc["proof"]["end"] != "member");
  // carol's non-membership proof does not pass for alice's list.
  SubjectIndexProof carol_proof;
  carol_proof.end = *ParseSubjectIndexProofEnd(jc["proof"]["end"].get<std::string>());
  REQUIRE(ledger_test::DecodeHashes(jc["proof"]["siblings"], &carol_proof.siblings));
  ParsedEntry commitment = CheckProven(a["commitment"], *OpenCheckpoint(a["checkpoint"].get<std::string>(), log));
  CHECK_FALSE(VerifySubjectIndexProof(commitment.index().root, alice, std::nullopt, carol_proof).ok());
  {
    // The persister's gauges: a version committed (the commitment's), none
    // persisted beyond it, and node versions held in memory at some point.
    auto res = cli->Get("/metrics");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    auto gauge = [&](const std::string& name) -> uint64_t {
      size_t at = res->body.find("\n" + name + " ");
      if (at == std::string::npos) {
        FAIL_CHECK("no " << name << " in /metrics");
        return 0;
      }
      return std::strtoull(res->body.c_str() + at + name.size() + 2, nullptr, 10);
    };
    const uint64_t committed = gauge("ledger_subject_tree_versions{kind=\"committed\"}");
    CHECK(committed >= 1);
    CHECK(gauge("ledger_subject_tree_versions{kind=\"persisted\"}") <= committed);
    CHECK(gauge("ledger_subject_tree_memory_nodes{at=\"max\"}") >= 1);
    CHECK(res->body.find("\nledger_subject_tree_persists_total ") != std::string::npos);
  }

  // Paging.
  json p1 = Get(*cli, Path(alice, "?offset=1&limit=1"));
  Checked c1 = CheckAnswer(p1, alice, log, log_key);
  REQUIRE(c1.listed.size() == 1);
  CHECK(c1.listed[0] == ca.indices[1]);
  json p2 = Get(*cli, Path(alice, "?offset=2&limit=1000"));
  CHECK(CheckAnswer(p2, alice, log, log_key).listed == std::vector<uint64_t>{ca.indices[2]});
  json p3 = Get(*cli, Path(alice, "?offset=3"));
  CHECK(p3["entries"].empty());
  CHECK(p3["policies"].empty());
  CHECK(CheckAnswer(p3, alice, log, log_key).indices == ca.indices);

  // Bad tags and parameters: 400.
  const std::string at = Base64UrlEncode(HashView(alice));
  // The last of 43 characters carries 2 padding bits, which must be zero.
  static const std::string kUrl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string padded_bits = at;
  padded_bits.back() = kUrl[kUrl.find(at.back()) ^ 1];
  for (const std::string& bad :
       {std::string("/v1/subjects/xyz"), "/v1/subjects/" + at + "=", "/v1/subjects/" + at.substr(1),
        "/v1/subjects/" + at + "A", "/v1/subjects/" + padded_bits, "/v1/subjects/" + at.substr(0, 42) + "%2B",
        "/v1/subjects/" + Base64UrlEncode(Bytes(33, 'x')), std::string("/v1/subjects/"), Path(alice, "?limit=0"),
        Path(alice, "?limit=1001"), Path(alice, "?offset=-1"), Path(alice, "?offset=01"),
        Path(alice, "?limit=1&limit=2"), Path(alice, "?tag=1")}) {
    json e = Get(*cli, bad, 400);
    CHECK(e.contains("error"));
  }

  // A commitment submitted by anyone, even signed by the log key, is refused.
  {
    bool created = false;
    auto log_signer = LoadOrCreateNoteKey(data + "/log.key", "", &created);
    REQUIRE(log_signer.ok());
    REQUIRE_FALSE(created);
    IndexRecord r;
    auto cp = OpenCheckpoint(a["checkpoint"].get<std::string>(), log);
    r.size = cp->size + 10;
    r.time = FormatTime(std::time(nullptr));
    Bytes forged = SignEnvelopeWith(kIndexPayloadType, EncodeIndex(r), (*log_signer)->verifier().public_key(),
                                    [&](ByteView m) { return (*log_signer)->Sign(m); });
    auto res = cli->Post("/v1/entries", ledger_test::EntriesBody({forged}), "application/json");
    REQUIRE(res);
    CHECK(res->status == 403);
    CHECK(res->body.find("unauthorised key") != std::string::npos);
  }

  // Restart with a long interval: a new access stays pending, listed with
  // its inclusion proof and policy.
  REQUIRE(server.Stop() == 0);
  server.Start({"--index-interval-ms", "3600000"});
  cli = ledger_test::MakeClient(server.port());
  auto res = cli->Post("/v1/entries", ledger_test::EntriesBody({AccessFor(data, alice, "e2e-1")}), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  json pend = Get(*cli, Path(alice));
  Checked cpend = CheckAnswer(pend, alice, log, log_key);
  CHECK(cpend.indices == ca.indices);
  REQUIRE(cpend.pending.size() == 1);
  CHECK(cpend.commitment_size == ca.commitment_size);

  // Restart with a short interval: the pending access is found again and
  // committed without any request.
  REQUIRE(server.Stop() == 0);
  server.Start({"--index-interval-ms", "200"});
  cli = ledger_test::MakeClient(server.port());
  json after = WaitForCount(*cli, alice, 4);
  Checked cafter = CheckAnswer(after, alice, log, log_key);
  CHECK(cafter.indices.back() == cpend.pending[0]);
  CHECK(cafter.commitment_size > cpend.pending[0]);
  // Bob's list is unchanged under the new commitment.
  CHECK(CheckAnswer(Get(*cli, Path(bob)), bob, log, log_key).indices == cb.indices);
  REQUIRE(server.Stop() == 0);
}

TEST_CASE("subjects e2e: --index-max-accesses commits as soon as that many accesses are pending") {
  TempDir tmp;
  const std::string data = tmp.path() + "/data";
  LedgerdProcess server(data);
  // An hour's interval: every commitment here is due to the count alone.
  // The demo appends its five accesses one batch each, so the fifth batch
  // ends with five pending and appends a commitment.
  server.Start({"--demo", "--index-interval-ms", "3600000", "--index-max-accesses", "5"});
  auto cli = ledger_test::MakeClient(server.port());
  const NoteVerifier log = ReadLogVerifier(data);
  const Bytes log_key(log.public_key());
  const SubjectTag alice = TagFor(data, "alice"), carol = TagFor(data, "carol");

  json a = Get(*cli, Path(alice));
  Checked ca = CheckAnswer(a, alice, log, log_key);
  CHECK(ca.indices.size() == 3);
  CHECK(ca.pending.empty());

  // Four accesses in one batch: fewer than five, so they stay pending.
  std::vector<Bytes> four;
  for (int k = 0; k < 4; k++) four.push_back(AccessFor(data, carol, "max-" + std::to_string(k)));
  auto res = cli->Post("/v1/entries", ledger_test::EntriesBody(four), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  Checked c4 = CheckAnswer(Get(*cli, Path(carol)), carol, log, log_key);
  CHECK(c4.indices.empty());
  REQUIRE(c4.pending.size() == 4);
  CHECK(c4.commitment_size == ca.commitment_size);

  // The fifth: its batch appends a commitment covering all five, so the
  // answer right after the append lists them as committed.
  res = cli->Post("/v1/entries", ledger_test::EntriesBody({AccessFor(data, carol, "max-4")}), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  Checked c5 = CheckAnswer(Get(*cli, Path(carol)), carol, log, log_key);
  REQUIRE(c5.indices.size() == 5);
  CHECK(c5.pending.empty());
  CHECK(c5.indices.front() == c4.pending.front());
  CHECK(c5.commitment_size == c5.indices.back() + 1);
  REQUIRE(server.Stop() == 0);
}

TEST_CASE("subjects e2e: opaque mode has no subject index") {
  TempDir tmp;
  LedgerdProcess server(tmp.path() + "/data");
  server.Start({"--entries", "opaque"});
  auto cli = ledger_test::MakeClient(server.port());
  json e = Get(*cli, "/v1/subjects/" + Base64UrlEncode(Bytes(32, 'x')), 404);
  CHECK(e.contains("error"));
  auto metrics = cli->Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->body.find("ledger_subject_tree") == std::string::npos);
  REQUIRE(server.Stop() == 0);
}
