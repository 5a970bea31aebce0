// Tests for ledger::CheckReceipt, the bank-side gate. Receipts are built
// two ways: by hand from the pure Merkle functions and a NoteSigner-signed
// checkpoint (so every field can be tampered with), and by a real log
// (Store + Sequencer + RulesHook) that refuses an undisclosed use.
// The [.bench] case measures the time of one check:
//   gate_test "[.bench]" -s
#include "ledger/gate.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ledger/cosignature.h"
#include "ledger/ledger_hook.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/rules.h"
#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "ledger/tlog_proof.h"
#include "ledger/vrf.h"
#include "test_util.h"

using namespace ledger;

namespace {

const char kLogName[] = "example.com/gate-test";
const char kHolder[] = "demo-bank";
const char kAccessor[] = "chat-banking";
const char kTime[] = "2026-12-01T10:00:00Z";

template <typename T>
T Must(StatusOr<T> v) {
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return std::move(*v);
}

Bytes Tag(char c) { return Bytes(32, c); }

AccessRecord MakeAccess(const std::string& id, const Bytes& subject, const std::string& purpose,
                        std::set<std::string> categories, const std::string& time = kTime) {
  AccessRecord r;
  r.request_id = id;
  r.accessor = kAccessor;
  r.holder = kHolder;
  r.subject = subject;
  r.purpose = purpose;
  r.categories = std::move(categories);
  r.consent = "consent-" + id;
  r.time = time;
  return r;
}

using ledger_test::MemoryTree;

// Fixture: a log of 7 entries (a policy, then accesses) with a signed
// checkpoint, and receipts for any of them.
struct Fixture {
  std::unique_ptr<NoteSigner> log = Must(NoteSigner::Generate(kLogName));
  std::unique_ptr<Ed25519Signer> accessor = Must(Ed25519Signer::Generate());
  std::vector<Bytes> entries;
  std::unique_ptr<MemoryTree> tree;
  std::string checkpoint;
  Checkpoint cp;

  Fixture() {
    PolicyRecord p;
    p.holder = kHolder;
    p.accessor = kAccessor;
    p.version = 1;
    p.purposes = {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}, 90}};
    p.time = kTime;
    entries.push_back(SignEnvelope(kPolicyPayloadType, EncodePolicy(p), *accessor));           // 0
    entries.push_back(Access(MakeAccess("r1", Tag('a'), "CUSTOMER_SUPPORT", {"BALANCES"})));   // 1
    entries.push_back(Access(MakeAccess("r2", Tag('b'), "CUSTOMER_SUPPORT",                    // 2
                                        {"BALANCES", "TRANSACTIONS"})));
    for (int i = 3; i < 7; i++)
      entries.push_back(Access(MakeAccess("r" + std::to_string(i), Tag('c'), "CUSTOMER_SUPPORT", {"ACCOUNT_BASIC"})));
    tree = std::make_unique<MemoryTree>(entries);
    cp.origin = kLogName;
    cp.size = tree->size();
    cp.root = Must(TreeRoot(cp.size, *tree));
    checkpoint = Must(log->SignNote(cp.Format()));
  }

  Bytes Access(const AccessRecord& r) const { return SignEnvelope(kAccessPayloadType, EncodeAccess(r), *accessor); }

  TlogProof Proof(uint64_t index, bool with_extra = true) const {
    TlogProof p;
    if (with_extra) p.extra = entries[index];
    p.index = index;
    p.inclusion = Must(InclusionProof(index, cp.size, *tree));
    p.checkpoint = checkpoint;
    return p;
  }
  std::string Receipt(uint64_t index, bool with_extra = true) const { return FormatTlogProof(Proof(index, with_extra)); }

  // Expectation for entry 2 (accessor, holder, subject 'b', purpose, BALANCES).
  static GateExpectation Expect() {
    GateExpectation e;
    e.accessor = kAccessor;
    e.holder = kHolder;
    e.subject = Tag('b');
    e.purpose = "CUSTOMER_SUPPORT";
    e.categories = {"BALANCES"};
    return e;
  }

  GateDecision Check(const std::string& receipt, const GateExpectation& e = Expect(),
                     std::optional<ByteView> entry = std::nullopt) const {
    return CheckReceipt(receipt, entry, log->verifier(), e);
  }
};

void RequireRefused(const GateDecision& d, const std::string& prefix) {
  INFO("reason: " << d.reason);
  CHECK_FALSE(d.allowed);
  CHECK(d.reason.rfind(prefix, 0) == 0);
}

// ReplaceOnce replaces the first |from| in |s|.
std::string ReplaceOnce(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("a valid receipt is allowed", "[gate]") {
  Fixture f;
  GateDecision d = f.Check(f.Receipt(2));
  INFO(d.reason);
  REQUIRE(d.allowed);
  CHECK(d.reason == "allowed");
  CHECK(d.index == 2);
  CHECK(d.tree_size == 7);
  REQUIRE(d.access);
  CHECK(d.access->request_id == "r2");
  CHECK(d.access->subject == Tag('b'));
  CHECK(d.access->categories == std::set<std::string>{"BALANCES", "TRANSACTIONS"});

  SECTION("all logged categories, or none, may be requested") {
    GateExpectation e = Fixture::Expect();
    e.categories = {"BALANCES", "TRANSACTIONS"};
    CHECK(f.Check(f.Receipt(2), e).allowed);
    e.categories = {};
    CHECK(f.Check(f.Receipt(2), e).allowed);
  }
  SECTION("no expectations: any valid access receipt") {
    CHECK(f.Check(f.Receipt(5), GateExpectation{}).allowed);
  }
  SECTION("the entry given as an argument, with or without extra") {
    CHECK(f.Check(f.Receipt(2, false), Fixture::Expect(), ByteView(f.entries[2])).allowed);
    CHECK(f.Check(f.Receipt(2, true), Fixture::Expect(), ByteView(f.entries[2])).allowed);
  }
  SECTION("every index of the tree") {
    for (uint64_t i = 1; i < f.entries.size(); i++) {
      GateDecision di = f.Check(f.Receipt(i), GateExpectation{});
      INFO(i << ": " << di.reason);
      CHECK(di.allowed);
      CHECK(di.index == i);
    }
  }
  SECTION("a one-entry tree (empty inclusion proof)") {
    MemoryTree one({f.entries[2]});
    Checkpoint cp{kLogName, 1, Must(TreeRoot(1, one)), {}};
    std::string receipt = FormatTlogProof({f.entries[2], 0, {}, Must(f.log->SignNote(cp.Format()))});
    GateDecision d1 = f.Check(receipt);
    INFO(d1.reason);
    CHECK(d1.allowed);
    CHECK(d1.tree_size == 1);
  }
  SECTION("not_before: accept an access at or after it") {
    GateExpectation e = Fixture::Expect();
    e.not_before = Must(ParseTime(kTime));
    CHECK(f.Check(f.Receipt(2), e).allowed);
  }
}

TEST_CASE("malformed receipts are refused", "[gate]") {
  Fixture f;
  std::string good = f.Receipt(2);
  for (const std::string& bad : {std::string(), std::string("hello"), std::string("c2sp.org/tlog-proof@v1\n"),
                                 ReplaceOnce(good, "c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
                                 ReplaceOnce(good, "index 2", "index 02"),
                                 ReplaceOnce(good, "index 2", "index -2"),
                                 ReplaceOnce(good, "extra ", "extra !"),
                                 good.substr(0, good.find("\n\n") + 2)}) {
    GateDecision d = f.Check(bad);
    INFO("receipt: " << bad);
    RequireRefused(d, "malformed receipt: ");
    CHECK_FALSE(d.access);
  }
  SECTION("a truncated checkpoint") {
    RequireRefused(f.Check(good.substr(0, good.size() - 10)), "bad checkpoint: ");
  }
}

TEST_CASE("a checkpoint not signed by the log key is refused", "[gate]") {
  Fixture f;
  std::string good = f.Receipt(2);

  SECTION("tampered signature bytes") {
    // The signature line is the last line: "— <name> <base64(keyid||sig)>\n".
    auto sp = good.rfind(' ');
    Bytes sig = Must(Base64Decode(good.substr(sp + 1, good.size() - sp - 2)));
    sig[10] ^= 1;
    std::string bad = good.substr(0, sp + 1) + Base64Encode(sig) + "\n";
    RequireRefused(f.Check(bad), "bad checkpoint: ");
  }
  SECTION("tampered checkpoint body (size), signature kept") {
    std::string bad = ReplaceOnce(good, std::string(kLogName) + "\n7\n", std::string(kLogName) + "\n8\n");
    RequireRefused(f.Check(bad), "bad checkpoint: ");
  }
  SECTION("another key with the same name") {
    auto other = Must(NoteSigner::Generate(kLogName));
    GateDecision d = CheckReceipt(good, std::nullopt, other->verifier(), Fixture::Expect());
    RequireRefused(d, "bad checkpoint: ");
  }
  SECTION("a checkpoint signed by another key") {
    auto other = Must(NoteSigner::Generate(kLogName));
    TlogProof p = f.Proof(2);
    p.checkpoint = Must(other->SignNote(f.cp.Format()));
    RequireRefused(f.Check(FormatTlogProof(p)), "bad checkpoint: ");
  }
  SECTION("the log's key but another origin") {
    // One Ed25519 key under two names: the log trusts it as kLogName only.
    auto other = Must(NoteSigner::FromSeed("example.com/other-log", Bytes(32, 'x')));
    auto same_seed = Must(NoteSigner::FromSeed(kLogName, Bytes(32, 'x')));
    Checkpoint cp = f.cp;
    cp.origin = "example.com/other-log";
    TlogProof p = f.Proof(2);
    p.checkpoint = Must(other->SignNote(cp.Format()));
    GateDecision d = CheckReceipt(FormatTlogProof(p), std::nullopt, same_seed->verifier(), Fixture::Expect());
    RequireRefused(d, "bad checkpoint: ");
  }
  SECTION("a log key for another origin") {
    auto other = Must(NoteSigner::Generate("example.com/other-log"));
    GateDecision d = CheckReceipt(good, std::nullopt, other->verifier(), Fixture::Expect());
    RequireRefused(d, "bad checkpoint: ");
  }
}

TEST_CASE("an entry not proven included is refused", "[gate]") {
  Fixture f;

  SECTION("tampered inclusion hash") {
    for (size_t k = 0; k < f.Proof(2).inclusion.size(); k++) {
      TlogProof p = f.Proof(2);
      p.inclusion[k][0] ^= 0x80;
      RequireRefused(f.Check(FormatTlogProof(p)), "not included: ");
    }
  }
  SECTION("inclusion hash dropped or added") {
    TlogProof p = f.Proof(2);
    p.inclusion.pop_back();
    RequireRefused(f.Check(FormatTlogProof(p)), "not included: ");
    p = f.Proof(2);
    p.inclusion.push_back(p.inclusion.back());
    RequireRefused(f.Check(FormatTlogProof(p)), "not included: ");
  }
  SECTION("wrong index") {
    TlogProof p = f.Proof(2);
    for (uint64_t idx : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{6}, uint64_t{7}, uint64_t{1000}}) {
      p.index = idx;
      GateDecision d = f.Check(FormatTlogProof(p));
      RequireRefused(d, "not included: ");
      CHECK_FALSE(d.access);
    }
  }
  SECTION("entry swapped for another valid entry of the log") {
    TlogProof p = f.Proof(2);
    p.extra = f.entries[1];  // valid, signed, logged at 1, but not at 2
    RequireRefused(f.Check(FormatTlogProof(p), GateExpectation{}), "not included: ");
    RequireRefused(f.Check(f.Receipt(2, false), GateExpectation{}, ByteView(f.entries[3])), "not included: ");
  }
  SECTION("a validly signed access that was never logged") {
    Bytes unlogged = f.Access(MakeAccess("r2", Tag('b'), "TARGETED_ADVERTISING", {"BALANCES"}));
    TlogProof p = f.Proof(2);
    p.extra = unlogged;
    GateExpectation e = Fixture::Expect();
    e.purpose.reset();
    RequireRefused(f.Check(FormatTlogProof(p), e), "not included: ");
  }
}

TEST_CASE("the entry must be present, and argument and extra agree", "[gate]") {
  Fixture f;
  SECTION("missing entry") {
    GateDecision d = f.Check(f.Receipt(2, false));
    RequireRefused(d, "missing entry: ");
    CHECK(d.tree_size == 7);
  }
  SECTION("an empty entry argument") {
    RequireRefused(f.Check(f.Receipt(2, false), Fixture::Expect(), ByteView()), "missing entry: ");
  }
  SECTION("entry argument differs from extra") {
    RequireRefused(f.Check(f.Receipt(2, true), Fixture::Expect(), ByteView(f.entries[1])), "entry mismatch: ");
    Bytes almost = f.entries[2];
    almost.back() = ' ';
    RequireRefused(f.Check(f.Receipt(2, true), Fixture::Expect(), ByteView(almost)), "entry mismatch: ");
  }
}

TEST_CASE("an included entry that is not a valid access is refused", "[gate]") {
  Fixture f;
  SECTION("a policy entry") {
    GateDecision d = f.Check(f.Receipt(0), GateExpectation{});
    RequireRefused(d, "not an access: ");
    CHECK(d.reason.find("policy") != std::string::npos);
    CHECK_FALSE(d.access);
  }
  SECTION("a logged entry with a bad signature, or not an envelope") {
    Bytes forged = f.entries[2];
    // Flip one base64 character of the signature: still canonical JSON.
    auto pos = forged.find("\"sig\":\"") + 8;
    forged[pos] = forged[pos] == 'A' ? 'B' : 'A';
    MemoryTree tree({f.entries[0], forged, Bytes("opaque bytes")});
    Checkpoint cp{kLogName, 3, Must(TreeRoot(3, tree)), {}};
    std::string note = Must(f.log->SignNote(cp.Format()));
    std::string r1 = FormatTlogProof({forged, 1, Must(InclusionProof(1, 3, tree)), note});
    RequireRefused(f.Check(r1, GateExpectation{}), "bad entry: ");
    std::string r2 = FormatTlogProof({Bytes("opaque bytes"), 2, Must(InclusionProof(2, 3, tree)), note});
    RequireRefused(f.Check(r2, GateExpectation{}), "bad entry: ");
  }
}

TEST_CASE("an access for something else is refused", "[gate]") {
  Fixture f;
  std::string receipt = f.Receipt(2);
  GateExpectation e = Fixture::Expect();
  SECTION("accessor") {
    e.accessor = "ad-network";
    GateDecision d = f.Check(receipt, e);
    RequireRefused(d, "accessor mismatch: ");
    REQUIRE(d.access);  // what was logged is shown
    CHECK(d.access->accessor == kAccessor);
  }
  SECTION("holder") {
    e.holder = "other-bank";
    RequireRefused(f.Check(receipt, e), "holder mismatch: ");
  }
  SECTION("subject") {
    e.subject = Tag('a');
    RequireRefused(f.Check(receipt, e), "subject mismatch: ");
  }
  SECTION("purpose") {
    e.purpose = "TARGETED_ADVERTISING";
    RequireRefused(f.Check(receipt, e), "purpose mismatch: ");
  }
  SECTION("a requested category not logged") {
    e.categories = {"BALANCES", "STATEMENTS"};
    GateDecision d = f.Check(receipt, e);
    RequireRefused(d, "category not logged: STATEMENTS");
    e.categories = {"CUSTOMER_CONTACT"};
    RequireRefused(f.Check(receipt, e), "category not logged: ");
  }
  SECTION("an access older than not_before") {
    e.not_before = Must(ParseTime(kTime)) + 1;
    RequireRefused(f.Check(receipt, e), "access too old: ");
  }
}

// --- A real log: Store + Sequencer + RulesHook ---------------------------

namespace {

using ledger_test::TempDir;

struct Appended {
  Status status;
  uint64_t index = 0;
  std::string receipt;  // tlog-proof with the entry in extra
};

Appended AppendOne(Store& store, Sequencer& seq, const Bytes& entry) {
  auto r = seq.Append({entry});
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  Appended out;
  out.status = r->entries[0].status;
  if (!out.status.ok()) return out;
  out.index = r->entries[0].index;
  auto reader = Must(store.Read());
  auto proof = Must(InclusionProof(out.index, r->tree_size, *reader));
  out.receipt = FormatTlogProof({entry, out.index, proof, r->checkpoint});
  return out;
}

}  // namespace

TEST_CASE("receipts from a real log: the disclosed access passes the gate, the undisclosed one gets none",
          "[gate]") {
  TempDir tmp;
  auto log = Must(NoteSigner::Generate(kLogName));
  StoreOptions so;
  so.dir = tmp.path() + "/lmdb";
  so.durable = false;
  auto store = Must(Store::Open(so));
  RulesOptions ro;
  ro.log_public_key = Bytes(log->verifier().public_key());
  RulesHook hook(LedgerRules(ro), [] { return static_cast<int64_t>(time(nullptr)); });
  Sequencer seq(store.get(), log.get(), SequencerOptions{}, &hook);
  REQUIRE(seq.Start().ok());

  auto holder = Must(Ed25519Signer::Generate());
  auto accessor = Must(Ed25519Signer::Generate());
  auto vrf = Must(VrfSecretKey::Generate());
  std::string now = FormatTime(static_cast<int64_t>(time(nullptr)));

  HolderRecord h{kHolder, Bytes(holder->public_key()), Bytes(vrf->public_key()), now};
  Bytes holder_entry = SignEnvelopeWith(kHolderPayloadType, EncodeHolder(h), log->verifier().public_key(),
                                        [&](ByteView m) { return log->Sign(m); });
  Appended a0 = AppendOne(*store, seq, holder_entry);
  INFO(a0.status.ToString());
  REQUIRE(a0.status.ok());
  AccessorRecord auth{kHolder, kAccessor, AccessorRecord::Action::kAuthorize, {Bytes(accessor->public_key())}, now};
  Appended a1 = AppendOne(*store, seq, SignEnvelope(kAccessorPayloadType, EncodeAccessor(auth), *holder));
  INFO(a1.status.ToString());
  REQUIRE(a1.status.ok());
  PolicyRecord p{kHolder, kAccessor, 1, {{"CUSTOMER_SUPPORT", {"BALANCES"}, 30}}, now};
  Appended a2 = AppendOne(*store, seq, SignEnvelope(kPolicyPayloadType, EncodePolicy(p), *accessor));
  INFO(a2.status.ToString());
  REQUIRE(a2.status.ok());

  Bytes subject = Must(SubjectTagFromBeta(Must(VrfProofToHash(vrf->Prove(Must(SubjectVrfInput("alice", "2026-12")))))));
  AccessRecord ok = MakeAccess("req-1", subject, "CUSTOMER_SUPPORT", {"BALANCES"}, now);
  Appended a3 = AppendOne(*store, seq, SignEnvelope(kAccessPayloadType, EncodeAccess(ok), *accessor));
  INFO(a3.status.ToString());
  REQUIRE(a3.status.ok());
  AccessRecord ads = MakeAccess("req-2", subject, "TARGETED_ADVERTISING", {"TRANSACTIONS"}, now);
  Appended a4 = AppendOne(*store, seq, SignEnvelope(kAccessPayloadType, EncodeAccess(ads), *accessor));
  INFO(a4.status.ToString());
  REQUIRE_FALSE(a4.status.ok());
  CHECK(a4.status.message().rfind("undisclosed use", 0) == 0);

  GateExpectation e;
  e.accessor = kAccessor;
  e.holder = kHolder;
  e.subject = subject;
  e.categories = {"BALANCES"};
  GateDecision d = CheckReceipt(a3.receipt, std::nullopt, log->verifier(), e);
  INFO(d.reason);
  CHECK(d.allowed);
  CHECK(d.index == a3.index);
  CHECK(d.tree_size == 4);

  // The disclosed access's receipt does not stretch to other categories.
  e.categories = {"TRANSACTIONS"};
  RequireRefused(CheckReceipt(a3.receipt, std::nullopt, log->verifier(), e), "category not logged: ");
  // The holder's own entries are no access.
  RequireRefused(CheckReceipt(a1.receipt, std::nullopt, log->verifier(), GateExpectation{}), "not an access: ");
  seq.Stop();
}

TEST_CASE("a witness policy requires cosignatures from a quorum of distinct listed witnesses", "[gate]") {
  Fixture f;
  auto a = Must(CosignatureSigner::Generate("witness-a.example"));
  auto b = Must(CosignatureSigner::Generate("witness-b.example"));
  auto c = Must(CosignatureSigner::Generate("witness-c.example"));
  auto outsider = Must(CosignatureSigner::Generate("witness-x.example"));
  std::string body = f.cp.Format();
  auto line = [&](const CosignatureSigner& w, uint64_t t = 1767225600) { return Must(w.CosignLine(body, t)); };
  auto receipt = [&](const std::string& suffix) {
    TlogProof p = f.Proof(2);
    p.checkpoint = f.checkpoint + suffix;
    return FormatTlogProof(p);
  };
  auto policy = [&](std::vector<const CosignatureSigner*> ws, size_t quorum) {
    GateExpectation e = Fixture::Expect();
    for (const auto* w : ws) e.witnesses.push_back(w->verifier());
    e.quorum = quorum;
    return e;
  };
  const std::string ab = receipt(line(*a) + line(*b));

  SECTION("quorum met") {
    GateDecision d = f.Check(ab, policy({a.get(), b.get(), c.get()}, 2));
    INFO(d.reason);
    REQUIRE(d.allowed);
    REQUIRE(d.cosignatures.size() == 2);
    CHECK(d.cosignatures[0].witness == a->verifier().VerifierKeyString());
    CHECK(d.cosignatures[1].witness == b->verifier().VerifierKeyString());
    CHECK(d.cosignatures[0].timestamp == 1767225600);
    CHECK(f.Check(ab, policy({a.get(), b.get()}, 2)).allowed);
    CHECK(f.Check(ab, policy({b.get()}, 1)).allowed);
  }
  SECTION("no policy: cosignatures are ignored, as before") {
    GateDecision d = f.Check(ab);
    CHECK(d.allowed);
    CHECK(d.cosignatures.empty());
    CHECK(f.Check(receipt(line(*a) + "— witness-a.example " + Base64Encode(std::string(76, '\x01')) + "\n")).allowed);
  }
  SECTION("one short of the quorum") {
    GateDecision d = f.Check(ab, policy({a.get(), b.get(), c.get()}, 3));
    RequireRefused(d, "witness quorum: ");
    CHECK(d.reason.find("from 2 of the listed witnesses (witness-a.example, witness-b.example), 3 required") !=
          std::string::npos);
    CHECK(d.cosignatures.size() == 2);  // who did cosign, for the report
    CHECK_FALSE(d.access);
    RequireRefused(f.Check(f.Receipt(2), policy({a.get()}, 1)), "witness quorum: ");
  }
  SECTION("duplicate lines of one witness, or one witness listed twice, count once") {
    std::string twice = receipt(line(*a, 1767225600) + line(*a, 1767225700));
    RequireRefused(f.Check(twice, policy({a.get(), b.get()}, 2)), "witness quorum: ");
    GateDecision d = f.Check(twice, policy({a.get(), b.get()}, 1));
    REQUIRE(d.allowed);
    REQUIRE(d.cosignatures.size() == 1);
    CHECK(d.cosignatures[0].timestamp == 1767225700);
    CHECK(f.Check(twice, policy({a.get(), a.get()}, 1)).allowed);
    RequireRefused(f.Check(twice, policy({a.get(), a.get()}, 2)), "witness policy: ");
  }
  SECTION("an unlisted witness is ignored") {
    std::string with_outsider = receipt(line(*a) + line(*outsider));
    RequireRefused(f.Check(with_outsider, policy({a.get(), b.get()}, 2)), "witness quorum: ");
    CHECK(f.Check(with_outsider, policy({a.get(), b.get()}, 1)).allowed);
  }
  SECTION("a bad cosignature by a listed witness is refused, whatever the quorum") {
    Checkpoint other = f.cp;
    other.size = 6;
    std::string wrong = Must(a->CosignLine(other.Format(), 1767225600));  // a's line over another checkpoint
    std::string bad = receipt(line(*b) + wrong);
    GateDecision d = f.Check(bad, policy({a.get(), b.get()}, 1));
    RequireRefused(d, "bad cosignature: ");
    CHECK(d.reason.find("witness-a.example") != std::string::npos);
    CHECK(d.cosignatures.empty());
    RequireRefused(f.Check(bad, policy({a.get()}, 0)), "bad cosignature: ");
    CHECK(f.Check(bad, policy({b.get()}, 1)).allowed);  // a is not listed: its line is ignored
  }
  SECTION("the log's signature is still checked first") {
    TlogProof p = f.Proof(2);
    p.checkpoint = body + "\n" + line(*a);  // cosigned, but not signed by the log
    RequireRefused(f.Check(FormatTlogProof(p), policy({a.get()}, 1)), "bad checkpoint: ");
  }
  SECTION("a quorum above the distinct witnesses is a policy error") {
    RequireRefused(f.Check(ab, policy({a.get(), b.get()}, 3)), "witness policy: ");
    RequireRefused(f.Check(ab, policy({}, 1)), "witness policy: ");
  }
}

TEST_CASE("CheckReceipt time per call", "[.bench]") {
  Fixture f;
  std::string receipt = f.Receipt(2);
  GateExpectation e = Fixture::Expect();
  REQUIRE(f.Check(receipt, e).allowed);
  // A refusal at the first signature costs about half an allowed check.
  std::string bad = ReplaceOnce(receipt, std::string(kLogName) + "\n7\n", std::string(kLogName) + "\n8\n");
  const int kWarm = 200, kIters = 5000;
  for (int i = 0; i < kWarm; i++) REQUIRE(f.Check(receipt, e).allowed);
  // Wall time and this thread's CPU time (the latter is what a loaded
  // machine does not inflate).
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
  };
  auto measure = [&](const std::string& r, bool want) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_now();
    int ok = 0;
    for (int i = 0; i < kIters; i++) ok += f.Check(r, e).allowed == want;
    double cpu = (cpu_now() - c0) / kIters;
    double wall = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kIters;
    REQUIRE(ok == kIters);
    return std::make_pair(wall, cpu);
  };
  auto [wall, cpu] = measure(receipt, true);
  auto [wall_bad, cpu_bad] = measure(bad, false);
  std::printf("CheckReceipt (%d iterations, tree of 7): allowed %.1f us wall, %.1f us CPU; "
              "refused at the checkpoint %.1f us wall, %.1f us CPU\n",
              kIters, wall, cpu, wall_bad, cpu_bad);
}
