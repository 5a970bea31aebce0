// Tests for ledger/rules.h (LedgerRules over a StateStore) and
// ledger/ledger_hook.h (RulesHook in the Sequencer).
//
// The first part drives LedgerRules directly over a MemoryStateStore, one
// rule at a time. The second builds a real log through Store + Sequencer +
// RulesHook with a mixed workload whose expected outcome for every entry
// comes from a small independent model in this file, then replays the log
// from its bytes alone into a MemoryStateStore and requires the replayed
// state to equal the LMDB derived state exactly.
#include "ledger/rules.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ledger/ledger_hook.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "replayed_state.h"
#include "test_util.h"

using namespace ledger;

namespace {

using Code = Status::Code;
using PurposeList = std::vector<std::pair<std::string, std::set<std::string>>>;

const int64_t kNow = 1796119200;  // 2026-12-01T10:00:00Z

bool StartsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

std::unique_ptr<Ed25519Signer> NewKey() {
  auto k = Ed25519Signer::Generate();
  REQUIRE(k.ok());
  return std::move(*k);
}

Bytes Vrf(char c) { return Bytes(32, c); }

Bytes HolderEntryWith(const std::string& name, ByteView holder_key, ByteView signer_pk,
                      const std::function<Bytes(ByteView)>& sign, int64_t t = kNow) {
  HolderRecord r;
  r.holder = name;
  r.signing_key = Bytes(holder_key);
  r.vrf_key = Vrf('v');
  r.time = FormatTime(t);
  return SignEnvelopeWith(kHolderPayloadType, EncodeHolder(r), signer_pk, sign);
}

Bytes HolderEntry(const std::string& name, const Ed25519Signer& holder_key, const Ed25519Signer& signer) {
  return HolderEntryWith(name, holder_key.public_key(), signer.public_key(),
                         [&](ByteView m) { return signer.Sign(m); });
}

Bytes AccessorEntry(const std::string& holder, const std::string& accessor, AccessorRecord::Action action,
                    const std::vector<const Ed25519Signer*>& keys, const Ed25519Signer& signer, int64_t t = kNow) {
  AccessorRecord r;
  r.holder = holder;
  r.accessor = accessor;
  r.action = action;
  for (const auto* k : keys) r.keys.emplace_back(k->public_key());
  r.time = FormatTime(t);
  return SignEnvelope(kAccessorPayloadType, EncodeAccessor(r), signer);
}

Bytes Authorize(const std::string& holder, const std::string& accessor, const std::vector<const Ed25519Signer*>& keys,
                const Ed25519Signer& signer) {
  return AccessorEntry(holder, accessor, AccessorRecord::Action::kAuthorize, keys, signer);
}

Bytes Revoke(const std::string& holder, const std::string& accessor, const std::vector<const Ed25519Signer*>& keys,
             const Ed25519Signer& signer) {
  return AccessorEntry(holder, accessor, AccessorRecord::Action::kRevoke, keys, signer);
}

Bytes PolicyEntry(const std::string& holder, const std::string& accessor, uint64_t version, const PurposeList& purposes,
                  const Ed25519Signer& signer, int64_t t = kNow) {
  PolicyRecord r;
  r.holder = holder;
  r.accessor = accessor;
  r.version = version;
  for (const auto& [p, cats] : purposes) {
    PolicyPurpose pp;
    pp.purpose = p;
    pp.categories = cats;
    r.purposes.push_back(pp);
  }
  r.time = FormatTime(t);
  return SignEnvelope(kPolicyPayloadType, EncodePolicy(r), signer);
}

AccessRecord Access(const std::string& id, const std::string& holder, const std::string& accessor,
                    const std::string& purpose, const std::set<std::string>& cats, int64_t t = kNow) {
  AccessRecord r;
  r.request_id = id;
  r.accessor = accessor;
  r.holder = holder;
  r.subject = Bytes(32, 's');
  r.purpose = purpose;
  r.categories = cats;
  r.consent = "consent-1";
  r.time = FormatTime(t);
  return r;
}

Bytes AccessEntry(const AccessRecord& r, const Ed25519Signer& signer) {
  return SignEnvelope(kAccessPayloadType, EncodeAccess(r), signer);
}

ParsedEntry ParseOrDie(const Bytes& entry) {
  auto p = ParseEntry(entry);
  INFO("ParseEntry: " << p.status().ToString());
  REQUIRE(p.ok());
  return std::move(*p);
}

// Harness runs LedgerRules over a MemoryStateStore the way the sequencer
// does: Check, then Apply at the next index if appended.
class Harness {
 public:
  explicit Harness(Bytes log_pk, bool check_clock = true)
      : rules_(RulesOptions{std::move(log_pk), 300, check_clock}) {}

  // Submit returns the index the entry got (new, or the original for a
  // retry) or the refusal. A refusal must leave the state untouched.
  StatusOr<uint64_t> Submit(const Bytes& entry) {
    ParsedEntry p = ParseOrDie(entry);
    auto before = state_.data();
    auto c = rules_.Check(state_, p, now);
    if (!c.ok()) {
      CHECK(state_.data() == before);
      return c.status();
    }
    if (c->has_value()) {
      CHECK(state_.data() == before);
      CHECK(**c < size_);
      return **c;
    }
    Status s = rules_.Apply(state_, p, size_);
    INFO("Apply: " << s.ToString());
    REQUIRE(s.ok());
    return size_++;
  }

  uint64_t MustAppend(const Bytes& entry) {
    uint64_t want = size_;
    auto r = Submit(entry);
    INFO("Submit: " << r.status().ToString());
    REQUIRE(r.ok());
    REQUIRE(*r == want);
    return *r;
  }

  Status Refused(const Bytes& entry) {
    uint64_t size = size_;
    auto r = Submit(entry);
    CHECK(size_ == size);
    INFO("index " << (r.ok() ? std::to_string(*r) : "-"));
    CHECK_FALSE(r.ok());
    return r.status();
  }

  MemoryStateStore& state() { return state_; }
  uint64_t size() const { return size_; }
  const LedgerRules& rules() const { return rules_; }
  int64_t now = kNow;

 private:
  LedgerRules rules_;
  MemoryStateStore state_;
  uint64_t size_ = 0;
};

void ExpectRefusal(const Status& s, Code code, const std::string& prefix) {
  INFO(s.ToString());
  CHECK(s.code() == code);
  CHECK(StartsWith(s.message(), prefix));
}

// World: a log key, two holders, accessors with keys, and a policy for
// messenger at bank-a.
struct World {
  std::unique_ptr<Ed25519Signer> log = NewKey(), bank_a = NewKey(), bank_b = NewKey();
  std::unique_ptr<Ed25519Signer> m1 = NewKey(), m2 = NewKey(), an1 = NewKey(), mb = NewKey(), stranger = NewKey();
  Harness h{Bytes(log->public_key())};
  PurposeList v1 = {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}},
                 {"PAYMENT_INITIATION", {"PAYMENT_SUPPORT"}}};

  void Setup() {
    h.MustAppend(HolderEntry("bank-a", *bank_a, *log));
    h.MustAppend(HolderEntry("bank-b", *bank_b, *log));
    h.MustAppend(Authorize("bank-a", "messenger", {m1.get(), m2.get()}, *bank_a));
    h.MustAppend(Authorize("bank-a", "analytics", {an1.get()}, *bank_a));
    h.MustAppend(Authorize("bank-b", "messenger", {mb.get()}, *bank_b));
    h.MustAppend(PolicyEntry("bank-a", "messenger", 1, v1, *m1));
  }
};

}  // namespace

// --- LedgerRules, rule by rule ----------------------------------------------

TEST_CASE("Holder entries only from the log key", "[rules]") {
  World w;
  ExpectRefusal(w.h.Refused(HolderEntry("bank-a", *w.bank_a, *w.bank_a)), Code::kPermissionDenied, "unauthorised key");
  ExpectRefusal(w.h.Refused(HolderEntry("bank-a", *w.bank_a, *w.stranger)), Code::kPermissionDenied,
                "unauthorised key");
  CHECK(w.h.state().data().empty());
  w.h.MustAppend(HolderEntry("bank-a", *w.bank_a, *w.log));
  auto holder = LedgerRules::GetHolder(w.h.state(), "bank-a");
  REQUIRE(holder.ok());
  REQUIRE(holder->has_value());
  CHECK((*holder)->signing_key == w.bank_a->public_key());
  CHECK((*holder)->vrf_key == Vrf('v'));
  CHECK((*holder)->index == 0);
  // The documented state value (rules.h).
  CHECK(w.h.state().data().at("h/bank-a") ==
        Base64UrlEncode(w.bank_a->public_key()) + " " + Base64UrlEncode(Vrf('v')) + " 0");
  auto none = LedgerRules::GetHolder(w.h.state(), "bank-b");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("Accessor entries only from the registered holder's key", "[rules]") {
  World w;
  w.h.MustAppend(HolderEntry("bank-a", *w.bank_a, *w.log));
  w.h.MustAppend(HolderEntry("bank-b", *w.bank_b, *w.log));
  // Unknown holder.
  ExpectRefusal(w.h.Refused(Authorize("bank-z", "messenger", {w.m1.get()}, *w.bank_a)), Code::kPermissionDenied,
                "unknown holder");
  // Another holder's key, the log key, the accessor's own key.
  for (const Ed25519Signer* k : {w.bank_b.get(), w.log.get(), w.m1.get(), w.stranger.get()}) {
    ExpectRefusal(w.h.Refused(Authorize("bank-a", "messenger", {w.m1.get()}, *k)), Code::kPermissionDenied,
                  "unauthorised key");
    ExpectRefusal(w.h.Refused(Revoke("bank-a", "messenger", {w.m1.get()}, *k)), Code::kPermissionDenied,
                  "unauthorised key");
  }
  uint64_t i = w.h.MustAppend(Authorize("bank-a", "messenger", {w.m1.get(), w.m2.get()}, *w.bank_a));
  for (const Ed25519Signer* k : {w.m1.get(), w.m2.get()}) {
    auto st = LedgerRules::KeyStatus(w.h.state(), "bank-a", "messenger", k->public_key());
    REQUIRE(st.ok());
    CHECK(*st == 'A');
    CHECK(w.h.state().data().at("k/bank-a/messenger/" + Base64UrlEncode(k->public_key())) ==
          "A " + std::to_string(i));
  }
  // Scoped to (holder, accessor).
  auto other_acc = LedgerRules::KeyStatus(w.h.state(), "bank-a", "analytics", w.m1->public_key());
  REQUIRE(other_acc.ok());
  CHECK(*other_acc == 0);
  auto other_holder = LedgerRules::KeyStatus(w.h.state(), "bank-b", "messenger", w.m1->public_key());
  REQUIRE(other_holder.ok());
  CHECK(*other_holder == 0);
}

TEST_CASE("A re-registered holder key takes over", "[rules]") {
  World w;
  w.h.MustAppend(HolderEntry("bank-a", *w.bank_a, *w.log));
  auto rotated = NewKey();
  w.h.MustAppend(HolderEntry("bank-a", *rotated, *w.log));
  ExpectRefusal(w.h.Refused(Authorize("bank-a", "messenger", {w.m1.get()}, *w.bank_a)), Code::kPermissionDenied,
                "unauthorised key");
  w.h.MustAppend(Authorize("bank-a", "messenger", {w.m1.get()}, *rotated));
}

TEST_CASE("Policies: authorised key, increasing versions", "[rules]") {
  World w;
  w.h.MustAppend(HolderEntry("bank-a", *w.bank_a, *w.log));
  w.h.MustAppend(HolderEntry("bank-b", *w.bank_b, *w.log));
  w.h.MustAppend(Authorize("bank-a", "messenger", {w.m1.get(), w.m2.get()}, *w.bank_a));
  w.h.MustAppend(Authorize("bank-b", "messenger", {w.mb.get()}, *w.bank_b));

  // Unknown holder, unauthorised keys.
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-z", "messenger", 1, w.v1, *w.m1)), Code::kPermissionDenied,
                "unknown holder");
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 1, w.v1, *w.stranger)), Code::kPermissionDenied,
                "unauthorised key");
  // The holder itself cannot publish the accessor's policy.
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 1, w.v1, *w.bank_a)), Code::kPermissionDenied,
                "unauthorised key");
  // A key authorised for bank-b does not act at bank-a.
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 1, w.v1, *w.mb)), Code::kPermissionDenied,
                "unauthorised key");
  // A key authorised for messenger does not act for analytics.
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "analytics", 1, w.v1, *w.m1)), Code::kPermissionDenied,
                "unauthorised key");

  uint64_t p1 = w.h.MustAppend(PolicyEntry("bank-a", "messenger", 1, w.v1, *w.m1));
  CHECK(w.h.state().data().at("p/bank-a/messenger") ==
        "1 " + std::to_string(p1) +
            "\nCUSTOMER_SUPPORT ACCOUNT_BASIC,BALANCES,TRANSACTIONS\nPAYMENT_INITIATION PAYMENT_SUPPORT\n");
  auto got = LedgerRules::GetPolicy(w.h.state(), "bank-a", "messenger");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->version == 1);
  CHECK((*got)->index == p1);
  CHECK((*got)->purposes ==
        std::map<std::string, std::set<std::string>>{{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}},
                                                     {"PAYMENT_INITIATION", {"PAYMENT_SUPPORT"}}});

  // Versions must increase: equal or lower refused, by any authorised key.
  PurposeList other = {{"FRAUD_PREVENTION", {"TRANSACTIONS"}}};
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 1, other, *w.m2)), Code::kFailedPrecondition,
                "policy version");
  w.h.MustAppend(PolicyEntry("bank-a", "messenger", 5, other, *w.m2));  // gaps allowed
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 4, w.v1, *w.m1)), Code::kFailedPrecondition,
                "policy version");
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 5, w.v1, *w.m1)), Code::kFailedPrecondition,
                "policy version");
  w.h.MustAppend(PolicyEntry("bank-a", "messenger", 6, w.v1, *w.m1));
  // Versions are per (holder, accessor).
  w.h.MustAppend(PolicyEntry("bank-b", "messenger", 1, other, *w.mb));

  // A revoked key can no longer publish policies.
  w.h.MustAppend(Revoke("bank-a", "messenger", {w.m2.get()}, *w.bank_a));
  ExpectRefusal(w.h.Refused(PolicyEntry("bank-a", "messenger", 7, w.v1, *w.m2)), Code::kPermissionDenied,
                "revoked key");
  w.h.MustAppend(PolicyEntry("bank-a", "messenger", 7, w.v1, *w.m1));
}

TEST_CASE("Accesses within the policy in force are appended", "[rules]") {
  World w;
  w.Setup();
  auto r = Access("req-1", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES", "ACCOUNT_BASIC"});
  Bytes e = AccessEntry(r, *w.m1);
  uint64_t i = w.h.MustAppend(e);
  CHECK(w.h.state().data().at("r/messenger/req-1") ==
        std::to_string(i) + " " + HexEncode(HashView(Sha256(EncodeAccess(r)))));
  // Every key of the accessor may sign; every listed category alone.
  w.h.MustAppend(AccessEntry(Access("req-2", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"TRANSACTIONS"}), *w.m2));
  w.h.MustAppend(AccessEntry(Access("req-3", "bank-a", "messenger", "PAYMENT_INITIATION", {"PAYMENT_SUPPORT"}), *w.m1));
  w.h.MustAppend(AccessEntry(
      Access("req-4", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}), *w.m1));
}

TEST_CASE("Undisclosed uses are refused", "[rules]") {
  World w;
  w.Setup();
  // Purpose not in the policy.
  for (const auto& p : Purposes()) {
    if (std::string(p.code) == "CUSTOMER_SUPPORT" || std::string(p.code) == "PAYMENT_INITIATION") continue;
    INFO(p.code);
    ExpectRefusal(w.h.Refused(AccessEntry(Access("u-1", "bank-a", "messenger", p.code, {"ACCOUNT_BASIC"}), *w.m1)),
                  Code::kPermissionDenied, "undisclosed use");
  }
  // The three uses never reasonably necessary, with any categories.
  for (const char* p : {"TARGETED_ADVERTISING", "CROSS_SELLING", "SALE_OF_DATA"}) {
    auto s = w.h.Refused(AccessEntry(Access("ad-1", "bank-a", "messenger", p, {"TRANSACTIONS"}), *w.m1));
    ExpectRefusal(s, Code::kPermissionDenied, "undisclosed use");
    CHECK(s.message().find(p) != std::string::npos);
  }
  // A category not covered for that purpose (although covered for another).
  auto s = w.h.Refused(
      AccessEntry(Access("u-2", "bank-a", "messenger", "PAYMENT_INITIATION", {"PAYMENT_SUPPORT", "BALANCES"}), *w.m1));
  ExpectRefusal(s, Code::kPermissionDenied, "undisclosed use");
  CHECK(s.message().find("BALANCES") != std::string::npos);
  ExpectRefusal(
      w.h.Refused(AccessEntry(Access("u-3", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"STATEMENTS"}), *w.m1)),
      Code::kPermissionDenied, "undisclosed use");
  // No policy at all (analytics is authorised but has published none).
  ExpectRefusal(
      w.h.Refused(AccessEntry(Access("u-4", "bank-a", "analytics", "CUSTOMER_SUPPORT", {"BALANCES"}), *w.an1)),
      Code::kPermissionDenied, "undisclosed use");
  // messenger's policy at bank-a does not cover bank-b.
  ExpectRefusal(
      w.h.Refused(AccessEntry(Access("u-5", "bank-b", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}), *w.mb)),
      Code::kPermissionDenied, "undisclosed use");
  // A refused request id is still free.
  w.h.MustAppend(AccessEntry(Access("u-1", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}), *w.m1));
}

TEST_CASE("CheckDisclosed on its own", "[rules]") {
  PolicyInForce p;
  p.version = 2;
  p.purposes["CUSTOMER_SUPPORT"] = {"BALANCES", "ACCOUNT_BASIC"};
  auto a = Access("x", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"});
  CHECK(LedgerRules::CheckDisclosed(p, a).ok());
  a.categories = {"BALANCES", "ACCOUNT_BASIC"};
  CHECK(LedgerRules::CheckDisclosed(p, a).ok());
  a.categories = {"BALANCES", "TRANSACTIONS"};
  ExpectRefusal(LedgerRules::CheckDisclosed(p, a), Code::kPermissionDenied, "undisclosed use");
  a.categories = {"BALANCES"};
  a.purpose = "FRAUD_PREVENTION";
  ExpectRefusal(LedgerRules::CheckDisclosed(p, a), Code::kPermissionDenied, "undisclosed use");
}

TEST_CASE("Access keys: revoked, never authorised, wrong holder, wrong accessor", "[rules]") {
  World w;
  w.Setup();
  w.h.MustAppend(PolicyEntry("bank-b", "messenger", 1, w.v1, *w.mb));
  auto ok_access = [](const std::string& id, const std::string& holder = "bank-a",
                      const std::string& accessor = "messenger") {
    return Access(id, holder, accessor, "CUSTOMER_SUPPORT", {"BALANCES"});
  };
  // Never authorised.
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-1"), *w.stranger)), Code::kPermissionDenied, "unauthorised key");
  // The holder's own key is not an accessor key.
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-2"), *w.bank_a)), Code::kPermissionDenied, "unauthorised key");
  // Authorised for bank-b, used for bank-a; and the other way round.
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-3"), *w.mb)), Code::kPermissionDenied, "unauthorised key");
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-4", "bank-b"), *w.m1)), Code::kPermissionDenied,
                "unauthorised key");
  w.h.MustAppend(AccessEntry(ok_access("k-4", "bank-b"), *w.mb));
  // A key of analytics claiming to be messenger.
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-5"), *w.an1)), Code::kPermissionDenied, "unauthorised key");
  // An unknown holder.
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-6", "bank-z"), *w.m1)), Code::kPermissionDenied,
                "unknown holder");

  // Revocation of one key leaves the other working.
  w.h.MustAppend(AccessEntry(ok_access("k-7"), *w.m2));
  uint64_t rev = w.h.MustAppend(Revoke("bank-a", "messenger", {w.m2.get()}, *w.bank_a));
  CHECK(w.h.state().data().at("k/bank-a/messenger/" + Base64UrlEncode(w.m2->public_key())) ==
        "R " + std::to_string(rev));
  auto s = w.h.Refused(AccessEntry(ok_access("k-8"), *w.m2));
  ExpectRefusal(s, Code::kPermissionDenied, "revoked key");
  w.h.MustAppend(AccessEntry(ok_access("k-8"), *w.m1));
  // Revocation at bank-a does not touch bank-b.
  w.h.MustAppend(Revoke("bank-a", "messenger", {w.m1.get()}, *w.bank_a));
  ExpectRefusal(w.h.Refused(AccessEntry(ok_access("k-9"), *w.m1)), Code::kPermissionDenied, "revoked key");
  w.h.MustAppend(AccessEntry(ok_access("k-9", "bank-b"), *w.mb));
}

TEST_CASE("A revoked key cannot be authorised again", "[rules]") {
  World w;
  w.Setup();
  w.h.MustAppend(Revoke("bank-a", "messenger", {w.m2.get()}, *w.bank_a));
  ExpectRefusal(w.h.Refused(Authorize("bank-a", "messenger", {w.m2.get()}, *w.bank_a)), Code::kFailedPrecondition,
                "revoked key");
  // Also when listed with fresh keys: the whole entry is refused.
  auto fresh = NewKey();
  ExpectRefusal(w.h.Refused(Authorize("bank-a", "messenger", {fresh.get(), w.m2.get()}, *w.bank_a)),
                Code::kFailedPrecondition, "revoked key");
  auto st = LedgerRules::KeyStatus(w.h.state(), "bank-a", "messenger", fresh->public_key());
  REQUIRE(st.ok());
  CHECK(*st == 0);
  w.h.MustAppend(Authorize("bank-a", "messenger", {fresh.get()}, *w.bank_a));
  // Revoking again is harmless; revocation is final.
  w.h.MustAppend(Revoke("bank-a", "messenger", {w.m2.get()}, *w.bank_a));
  // The same key may still be authorised for another accessor.
  w.h.MustAppend(Authorize("bank-a", "analytics", {w.m2.get()}, *w.bank_a));
}

TEST_CASE("Request ids: retries return the original, reuse is refused", "[rules]") {
  World w;
  w.Setup();
  auto r = Access("req-7", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"});
  Bytes e = AccessEntry(r, *w.m1);
  uint64_t i = w.h.MustAppend(e);
  w.h.MustAppend(AccessEntry(Access("req-8", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}), *w.m1));
  uint64_t size = w.h.size();

  // Same payload: same bytes, or signed by the accessor's other key.
  for (const Bytes& retry : {e, AccessEntry(r, *w.m2)}) {
    auto got = w.h.Submit(retry);
    REQUIRE(got.ok());
    CHECK(*got == i);
    CHECK(w.h.size() == size);
  }
  // Answered before anything else is rechecked: even after a revocation
  // and far outside the clock window.
  w.h.MustAppend(Revoke("bank-a", "messenger", {w.m2.get()}, *w.bank_a));
  w.h.now = kNow + 86400;
  auto late = w.h.Submit(AccessEntry(r, *w.m2));
  REQUIRE(late.ok());
  CHECK(*late == i);
  w.h.now = kNow;

  // A different payload under the same request id: every field matters.
  std::vector<AccessRecord> variants;
  for (int k = 0; k < 5; k++) variants.push_back(r);
  variants[0].categories = {"ACCOUNT_BASIC"};
  variants[1].time = FormatTime(kNow + 1);
  variants[2].actor = "agent-1";
  variants[3].subject = Bytes(32, 't');
  variants[4].consent = "consent-2";
  for (const auto& v : variants) {
    auto s = w.h.Refused(AccessEntry(v, *w.m1));
    ExpectRefusal(s, Code::kAlreadyExists, "request id reused");
  }
  // Request ids are per accessor, across holders.
  w.h.MustAppend(PolicyEntry("bank-b", "messenger", 1, w.v1, *w.mb));
  ExpectRefusal(w.h.Refused(AccessEntry(Access("req-7", "bank-b", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}), *w.mb)),
                Code::kAlreadyExists, "request id reused");
  // ... and another accessor has its own namespace.
  w.h.MustAppend(PolicyEntry("bank-a", "analytics", 1, w.v1, *w.an1));
  AccessRecord ra = r;
  ra.accessor = "analytics";
  w.h.MustAppend(AccessEntry(ra, *w.an1));
}

TEST_CASE("Clock skew is bounded both ways", "[rules]") {
  World w;
  w.Setup();
  int n = 0;
  auto at = [&](int64_t t) {
    return AccessEntry(Access("t-" + std::to_string(n++), "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}, t),
                       *w.m1);
  };
  for (int64_t d : {int64_t{301}, int64_t{-301}, int64_t{3600}, int64_t{-86400}, int64_t{100000000}}) {
    INFO("skew " << d);
    auto s = w.h.Refused(at(kNow + d));
    ExpectRefusal(s, Code::kInvalidArgument, "clock skew");
  }
  for (int64_t d : {int64_t{300}, int64_t{-300}, int64_t{0}, int64_t{299}, int64_t{-1}}) {
    INFO("skew " << d);
    w.h.MustAppend(at(kNow + d));
  }
  // The log's clock is what counts.
  w.h.now = kNow + 1000;
  ExpectRefusal(w.h.Refused(at(kNow)), Code::kInvalidArgument, "clock skew");
  w.h.MustAppend(at(kNow + 1000 - 300));

  // Replaying history: no clock check.
  World replay;
  Harness h(Bytes(replay.log->public_key()), /*check_clock=*/false);
  h.MustAppend(HolderEntry("bank-a", *replay.bank_a, *replay.log));
  h.MustAppend(Authorize("bank-a", "messenger", {replay.m1.get()}, *replay.bank_a));
  h.MustAppend(PolicyEntry("bank-a", "messenger", 1, replay.v1, *replay.m1));
  h.MustAppend(AccessEntry(Access("old", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}, 0), *replay.m1));
}

TEST_CASE("A new policy version replaces the old one", "[rules]") {
  World w;
  w.Setup();
  auto cs_tx = [&](const std::string& id) {
    return AccessEntry(Access(id, "bank-a", "messenger", "CUSTOMER_SUPPORT", {"TRANSACTIONS"}), *w.m1);
  };
  auto fraud = [&](const std::string& id) {
    return AccessEntry(Access(id, "bank-a", "messenger", "FRAUD_PREVENTION", {"TRANSACTIONS"}), *w.m1);
  };
  w.h.MustAppend(cs_tx("v1-a"));
  ExpectRefusal(w.h.Refused(fraud("v1-b")), Code::kPermissionDenied, "undisclosed use");

  // v2 drops TRANSACTIONS from CUSTOMER_SUPPORT, drops PAYMENT_INITIATION
  // and adds FRAUD_PREVENTION.
  PurposeList v2 = {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES"}}, {"FRAUD_PREVENTION", {"TRANSACTIONS"}}};
  uint64_t p2 = w.h.MustAppend(PolicyEntry("bank-a", "messenger", 2, v2, *w.m2));
  auto s = w.h.Refused(cs_tx("v2-a"));
  ExpectRefusal(s, Code::kPermissionDenied, "undisclosed use");
  CHECK(s.message().find("v2") != std::string::npos);
  ExpectRefusal(
      w.h.Refused(AccessEntry(Access("v2-b", "bank-a", "messenger", "PAYMENT_INITIATION", {"PAYMENT_SUPPORT"}), *w.m1)),
      Code::kPermissionDenied, "undisclosed use");
  w.h.MustAppend(fraud("v2-c"));
  w.h.MustAppend(AccessEntry(Access("v2-d", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}), *w.m1));
  auto got = LedgerRules::GetPolicy(w.h.state(), "bank-a", "messenger");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->version == 2);
  CHECK((*got)->index == p2);
  CHECK((*got)->purposes.size() == 2);
  CHECK((*got)->purposes.count("PAYMENT_INITIATION") == 0);
  // The retry of an access made under v1 still answers with its index.
  auto retry = w.h.Submit(cs_tx("v1-a"));
  REQUIRE(retry.ok());
  CHECK(*retry == 6);
}

TEST_CASE("Malformed derived state is reported as corruption", "[rules]") {
  World w;
  w.Setup();
  MemoryStateStore& st = w.h.state();
  REQUIRE(st.Put("p/bank-a/messenger", "garbage").ok());
  auto p = LedgerRules::GetPolicy(st, "bank-a", "messenger");
  CHECK(p.status().code() == Code::kCorruption);
  REQUIRE(st.Put("h/bank-a", "only-one-field").ok());
  CHECK(LedgerRules::GetHolder(st, "bank-a").status().code() == Code::kCorruption);
  REQUIRE(st.Put("k/bank-a/messenger/" + Base64UrlEncode(w.m1->public_key()), "X 1").ok());
  CHECK(LedgerRules::KeyStatus(st, "bank-a", "messenger", w.m1->public_key()).status().code() == Code::kCorruption);
}

// --- The replay property ------------------------------------------------------

namespace {

using ledger_test::TempDir;

// Step is one submitted entry and what must become of it.
struct Step {
  Bytes entry;
  Code want = Code::kOk;
  std::string prefix;      // refusal message prefix
  uint64_t index = 0;      // when OK: the index it must be answered with
  bool duplicate = false;  // answered with an earlier entry's index
  int64_t now = 0;         // the log's clock when it is sequenced
  bool parses = true;      // ParseEntry accepts it (so a context can be passed)
};

// Workload builds a mixed, realistic stream of entries and, with its own
// small model of holders, keys, policies and request ids (independent of
// LedgerRules), the expected outcome of each.
class Workload {
 public:
  using HA = std::pair<std::string, std::string>;  // (holder, accessor)
  struct Req {
    uint64_t index;
    AccessRecord record;
    Bytes entry;
    const Ed25519Signer* signer;
  };

  Workload() {
    auto s = NoteSigner::Generate("example.com/test-log");
    REQUIRE(s.ok());
    log = std::move(*s);
    key_named = {{"bank-a", bank_a.get()}, {"bank-b", bank_b.get()}, {"m1", m1.get()}, {"m2", m2.get()},
                 {"m3", m3.get()}, {"an1", an1.get()}, {"mb", mb.get()}, {"p1", p1.get()},
                 {"stranger", stranger.get()}};
    for (int i = 0; i < 24; i++) {
      Bytes tag(32, '\0');
      for (auto& c : tag) c = static_cast<char>(rng() & 0xff);
      subjects.push_back(tag);
    }
  }

  std::unique_ptr<NoteSigner> log;
  std::unique_ptr<Ed25519Signer> bank_a = NewKey(), bank_b = NewKey(), m1 = NewKey(), m2 = NewKey(), m3 = NewKey(),
                                 an1 = NewKey(), mb = NewKey(), p1 = NewKey(), stranger = NewKey();
  std::vector<Step> steps;
  std::vector<Bytes> accepted;  // the expected log, in order
  int64_t now = kNow;
  std::mt19937_64 rng{0x5eed1e55};
  std::map<std::string, size_t> refusals;  // by message prefix, for coverage

  // --- model ---
  std::map<HA, std::map<std::string, std::set<std::string>>> policy;
  // Key states by (holder, accessor, key name): ordered by names, so the
  // workload is the same on every run.
  std::map<std::tuple<std::string, std::string, std::string>, char> keys;
  std::map<std::string, const Ed25519Signer*> key_named;
  std::string NameOf(const Ed25519Signer* k) {
    for (const auto& [n, p] : key_named)
      if (p == k) return n;
    FAIL("unnamed key");
    return "";
  }
  std::map<std::pair<std::string, std::string>, Req> requests;  // (accessor, id)
  std::vector<std::pair<std::string, std::string>> request_order;
  std::map<std::string, int> next_id;
  std::vector<Bytes> subjects;

  void Accept(const Bytes& e) {
    Step s;
    s.entry = e;
    s.index = accepted.size();
    s.now = now;
    steps.push_back(s);
    accepted.push_back(e);
  }
  void Refuse(const Bytes& e, Code code, const std::string& prefix, bool parses = true) {
    Step s;
    s.entry = e;
    s.want = code;
    s.prefix = prefix;
    s.now = now;
    s.parses = parses;
    steps.push_back(s);
    refusals[prefix]++;
  }
  void Repeat(const Bytes& e, uint64_t index) {
    Step s;
    s.entry = e;
    s.index = index;
    s.duplicate = true;
    s.now = now;
    steps.push_back(s);
  }

  Bytes Holder(const std::string& name, const Ed25519Signer& key) {
    return HolderEntryWith(name, key.public_key(), log->verifier().public_key(),
                           [&](ByteView m) { return log->Sign(m); }, now);
  }
  void AddHolder(const std::string& name, const Ed25519Signer& key) { Accept(Holder(name, key)); }
  void SetKeys(const std::string& h, const std::string& a, AccessorRecord::Action action,
               const std::vector<const Ed25519Signer*>& ks, const Ed25519Signer& holder_key) {
    Accept(AccessorEntry(h, a, action, ks, holder_key, now));
    for (const auto* k : ks) keys[{h, a, NameOf(k)}] = action == AccessorRecord::Action::kAuthorize ? 'A' : 'R';
  }
  void Publish(const std::string& h, const std::string& a, uint64_t version, const PurposeList& ps,
               const Ed25519Signer& signer) {
    Accept(PolicyEntry(h, a, version, ps, signer, now));
    auto& p = policy[{h, a}];
    p.clear();
    for (const auto& [purpose, cats] : ps) p[purpose] = cats;
  }

  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    REQUIRE(!v.empty());
    return v[rng() % v.size()];
  }
  int64_t Uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

  struct Combo {
    std::string holder, accessor;
    const Ed25519Signer* key;
  };
  // Combos whose key is authorised and whose accessor has a policy.
  std::vector<Combo> Usable() {
    std::vector<Combo> out;
    for (const auto& [k, st] : keys) {
      const auto& [h, a, key] = k;
      if (st == 'A' && policy.count({h, a})) out.push_back({h, a, key_named.at(key)});
    }
    return out;
  }

  AccessRecord NewAccess(const Combo& c, const std::string& purpose, const std::set<std::string>& cats) {
    AccessRecord r;
    r.request_id = c.accessor + "-" + std::to_string(next_id[c.accessor]++);
    r.accessor = c.accessor;
    r.holder = c.holder;
    r.subject = Pick(subjects);
    r.purpose = purpose;
    r.categories = cats;
    r.consent = "consent/" + c.holder + "/" + std::to_string(rng() % 1000);
    r.time = FormatTime(now + Uniform(-250, 250));
    if (rng() % 2) r.actor = "agent-" + std::to_string(rng() % 50);
    if (rng() % 4 == 0) r.detail = "ticket #" + std::to_string(rng() % 100000) + ": customer asked for help";
    return r;
  }

  // A valid access for a random usable combo.
  AccessRecord ValidAccess(Combo* combo) {
    *combo = Pick(Usable());
    const auto& p = policy[{combo->holder, combo->accessor}];
    std::vector<std::string> purposes;
    for (const auto& [k, v] : p) purposes.push_back(k);
    std::string purpose = Pick(purposes);
    std::vector<std::string> allowed(p.at(purpose).begin(), p.at(purpose).end());
    std::set<std::string> cats;
    size_t n = 1 + rng() % allowed.size();
    while (cats.size() < n) cats.insert(Pick(allowed));
    return NewAccess(*combo, purpose, cats);
  }

  void AcceptAccess(const AccessRecord& r, const Ed25519Signer& key) {
    Bytes e = AccessEntry(r, key);
    requests[{r.accessor, r.request_id}] = Req{accepted.size(), r, e, &key};
    request_order.push_back({r.accessor, r.request_id});
    Accept(e);
  }

  const Req& PickRequest() { return requests.at(Pick(request_order)); }

  // RandomAccess adds one access of a random kind.
  void RandomAccess(bool revoked_m2) {
    int roll = static_cast<int>(rng() % 100);
    Combo c;
    if (roll < 58 || request_order.empty()) {
      AccessRecord r = ValidAccess(&c);
      AcceptAccess(r, *c.key);
      // Sometimes the client retries at once (same batch, likely).
      if (rng() % 10 == 0) Repeat(accepted.back(), accepted.size() - 1);
    } else if (roll < 64) {  // purpose not disclosed (or never reasonably necessary)
      c = Pick(Usable());
      std::vector<std::string> undisclosed;
      for (const auto& p : Purposes())
        if (!policy[{c.holder, c.accessor}].count(p.code)) undisclosed.push_back(p.code);
      AccessRecord r = NewAccess(c, Pick(undisclosed), {"ACCOUNT_BASIC"});
      Refuse(AccessEntry(r, *c.key), Code::kPermissionDenied, "undisclosed use");
    } else if (roll < 70) {  // a category not disclosed for the purpose
      c = Pick(Usable());
      const auto& p = policy[{c.holder, c.accessor}];
      auto it = p.begin();
      std::advance(it, rng() % p.size());
      std::vector<std::string> other;
      for (const auto& cat : Categories())
        if (!it->second.count(cat.code)) other.push_back(cat.code);
      REQUIRE(!other.empty());
      AccessRecord r = NewAccess(c, it->first, {*it->second.begin(), Pick(other)});
      Refuse(AccessEntry(r, *c.key), Code::kPermissionDenied, "undisclosed use");
    } else if (roll < 74) {  // clock skew, either way
      AccessRecord r = ValidAccess(&c);
      int64_t d = Uniform(301, 5000);
      r.time = FormatTime(rng() % 2 ? now + d : now - d);
      Refuse(AccessEntry(r, *c.key), Code::kInvalidArgument, "clock skew");
    } else if (roll < 80) {  // exact retry of an earlier access: same bytes
      const Req& q = PickRequest();
      Repeat(q.entry, q.index);
    } else if (roll < 84) {  // same payload, signed by another key of messenger at bank-a
      std::vector<const Req*> ma;
      for (const auto& [k, q] : requests)
        if (q.record.holder == "bank-a" && q.record.accessor == "messenger") ma.push_back(&q);
      const Req& q = *Pick(ma);
      const Ed25519Signer* other = q.signer == m1.get() ? m2.get() : m1.get();
      Bytes e = AccessEntry(q.record, *other);
      REQUIRE(e != q.entry);
      Repeat(e, q.index);
    } else if (roll < 89) {  // request id reused with a different payload
      const Req& q = PickRequest();
      AccessRecord r = q.record;
      r.time = FormatTime(now + Uniform(-100, 100));
      r.consent = "consent/other-" + std::to_string(rng());
      const Ed25519Signer* key = nullptr;
      for (const auto& [k, st] : keys)
        if (std::get<0>(k) == r.holder && std::get<1>(k) == r.accessor && st == 'A') key = key_named.at(std::get<2>(k));
      REQUIRE(key != nullptr);
      Refuse(AccessEntry(r, *key), Code::kAlreadyExists, "request id reused");
    } else if (roll < 93) {  // never-authorised key, or authorised for the other holder
      AccessRecord r = ValidAccess(&c);
      const Ed25519Signer* key = stranger.get();
      if (c.holder == "bank-a" && c.accessor == "messenger" && rng() % 2) key = mb.get();
      Refuse(AccessEntry(r, *key), Code::kPermissionDenied, "unauthorised key");
    } else if (roll < 96 && revoked_m2) {  // revoked key
      c = Combo{"bank-a", "messenger", m2.get()};
      AccessRecord r = NewAccess(c, "CUSTOMER_SUPPORT", {"BALANCES"});
      Refuse(AccessEntry(r, *m2), Code::kPermissionDenied, "revoked key");
    } else if (!policy.count({"bank-b", "payments"})) {  // authorised, but no policy yet
      c = Combo{"bank-b", "payments", p1.get()};
      AccessRecord r = NewAccess(c, "PAYMENT_INITIATION", {"PAYMENT_SUPPORT"});
      Refuse(AccessEntry(r, *p1), Code::kPermissionDenied, "undisclosed use");
    } else {
      AccessRecord r = ValidAccess(&c);
      AcceptAccess(r, *c.key);
    }
  }

  void Build() {
    // Phase A: holders, accessors, policies.
    AddHolder("bank-a", *bank_a);
    AddHolder("bank-b", *bank_b);
    Refuse(HolderEntryWith("bank-c", bank_a->public_key(), bank_a->public_key(),
                           [&](ByteView m) { return bank_a->Sign(m); }, now),
           Code::kPermissionDenied, "unauthorised key");
    Repeat(Holder("bank-a", *bank_a), 0);  // the operator restarts and re-sends
    SetKeys("bank-a", "messenger", AccessorRecord::Action::kAuthorize, {m1.get(), m2.get()}, *bank_a);
    SetKeys("bank-a", "analytics", AccessorRecord::Action::kAuthorize, {an1.get()}, *bank_a);
    SetKeys("bank-b", "messenger", AccessorRecord::Action::kAuthorize, {mb.get()}, *bank_b);
    SetKeys("bank-b", "payments", AccessorRecord::Action::kAuthorize, {p1.get()}, *bank_b);
    Refuse(Authorize("bank-a", "payments", {p1.get()}, *bank_b), Code::kPermissionDenied, "unauthorised key");
    Refuse(Authorize("bank-z", "payments", {p1.get()}, *bank_b), Code::kPermissionDenied, "unknown holder");
    Publish("bank-a", "messenger", 1,
            {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"}},
             {"PAYMENT_INITIATION", {"PAYMENT_SUPPORT", "BALANCES"}}},
            *m1);
    Publish("bank-a", "analytics", 1,
            {{"PERSONAL_FINANCIAL_MANAGEMENT", {"TRANSACTIONS", "BALANCES", "BILLS"}}}, *an1);
    Publish("bank-b", "messenger", 1, {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "CUSTOMER_CONTACT"}}}, *mb);
    Refuse(PolicyEntry("bank-a", "payments", 1, {{"PAYMENT_INITIATION", {"PAYMENT_SUPPORT"}}}, *p1, now),
           Code::kPermissionDenied, "unauthorised key");
    Refuse(PolicyEntry("bank-a", "messenger", 1, {{"FRAUD_PREVENTION", {"TRANSACTIONS"}}}, *m2, now),
           Code::kFailedPrecondition, "policy version");

    // Phase B: accesses under the first policies.
    now += 60;
    for (int i = 0; i < 130; i++) RandomAccess(false);
    // Malformed and forged entries among them (refused by ParseEntry).
    {
      Combo c;
      AccessRecord r = ValidAccess(&c);
      Bytes e = AccessEntry(r, *m1);
      Refuse(" " + e, Code::kInvalidArgument, "envelope", /*parses=*/false);
      auto env = ParseEnvelope(e);
      REQUIRE(env.ok());
      env->signature[10] = static_cast<char>(env->signature[10] ^ 1);
      Refuse(EncodeEnvelope(*env), Code::kPermissionDenied, "bad signature", /*parses=*/false);
    }

    // Phase C: policy update, revocation, a new key, payments' policy.
    now += 3600;
    AccessRecord under_v1 = NewAccess(Combo{"bank-a", "messenger", m1.get()}, "CUSTOMER_SUPPORT", {"TRANSACTIONS"});
    AcceptAccess(under_v1, *m1);
    Publish("bank-a", "messenger", 2,
            {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES"}},
             {"PAYMENT_INITIATION", {"PAYMENT_SUPPORT", "BALANCES"}},
             {"FRAUD_PREVENTION", {"TRANSACTIONS"}}},
            *m2);
    // Allowed by v1, not by v2.
    AccessRecord after_v2 = under_v1;
    after_v2.request_id = "messenger-after-v2";
    Refuse(AccessEntry(after_v2, *m1), Code::kPermissionDenied, "undisclosed use");
    Refuse(PolicyEntry("bank-a", "messenger", 2, {{"LEGAL_COMPLIANCE", {"STATEMENTS"}}}, *m1, now),
           Code::kFailedPrecondition, "policy version");
    SetKeys("bank-a", "messenger", AccessorRecord::Action::kRevoke, {m2.get()}, *bank_a);
    Refuse(Authorize("bank-a", "messenger", {m2.get()}, *bank_a), Code::kFailedPrecondition, "revoked key");
    Refuse(PolicyEntry("bank-a", "messenger", 3, {{"LEGAL_COMPLIANCE", {"STATEMENTS"}}}, *m2, now),
           Code::kPermissionDenied, "revoked key");
    SetKeys("bank-a", "messenger", AccessorRecord::Action::kAuthorize, {m3.get()}, *bank_a);
    Publish("bank-b", "payments", 1,
            {{"PAYMENT_INITIATION", {"PAYMENT_SUPPORT"}}, {"FRAUD_PREVENTION", {"TRANSACTIONS", "ACCOUNT_BASIC"}}},
            *p1);
    // messenger's request ids are shared across holders.
    for (const auto& key : request_order) {
      const Req& q = requests.at(key);
      if (q.record.accessor != "messenger") continue;
      AccessRecord r = q.record;
      r.holder = q.record.holder == "bank-a" ? "bank-b" : "bank-a";
      Refuse(AccessEntry(r, q.record.holder == "bank-a" ? *mb : *m1), Code::kAlreadyExists, "request id reused");
      break;
    }

    // Phase D: accesses under the new state.
    now += 3600;
    for (int i = 0; i < 180; i++) RandomAccess(true);
  }
};

std::map<Bytes, Bytes> LmdbState(const LogReader& reader) {
  std::map<Bytes, Bytes> out;
  Status s = reader.ForEachState("", [&](ByteView k, ByteView v) { out.emplace(Bytes(k), Bytes(v)); });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

}  // namespace

TEST_CASE("Replaying the log reproduces the sequencer's derived state exactly", "[rules][replay]") {
  Workload w;
  w.Build();
  REQUIRE(w.steps.size() > 320);

  TempDir tmp;
  StoreOptions so;
  so.dir = tmp.store_dir();
  so.durable = false;
  // Also with leaf-index merges every 37 pending pairs, so that request ids
  // (recorded in the leaf index, SPEC.md §10) are found from sorted runs
  // and merges in progress, not only from memory.
  so.leaf_index_merge_threshold = GENERATE(as<uint64_t>(), uint64_t{1} << 18, 37);
  so.leaf_index_merge_min_step = 5;
  INFO("leaf_index_merge_threshold " << so.leaf_index_merge_threshold);
  auto store = Store::Open(so);
  REQUIRE(store.ok());

  std::atomic<int64_t> clock{kNow};
  RulesOptions ro;
  ro.log_public_key = Bytes(w.log->verifier().public_key());
  ro.max_clock_skew = 300;
  ro.check_clock = true;
  RulesHook hook(LedgerRules(ro), [&] { return clock.load(); });
  // The subject index too (SPEC.md §14): no commitment during the workload
  // (its expected indices leave no room), one forced at the end.
  SubjectIndexerOptions index_options;
  index_options.interval = std::chrono::hours(1);
  index_options.max_accesses = size_t{1} << 20;
  SubjectTreeOptions tree_options;
  tree_options.dir = tmp.path() + "/subjects";
  tree_options.map_size = uint64_t{1} << 30;
  tree_options.durable = false;
  auto tree = SubjectTreeStore::Open(tree_options);
  REQUIRE(tree.ok());
  SubjectIndexer indexer(w.log.get(), tree->get(), index_options);
  REQUIRE(indexer.Recover(**store).ok());
  hook.SetSubjectIndexer(&indexer);
  Sequencer seq(store->get(), w.log.get(), SequencerOptions{}, &hook);
  REQUIRE(seq.Start().ok());

  // Submit in batches of varying size (never across a clock change), half
  // of them with the parsed entry as context, as the server does.
  const size_t kSizes[] = {1, 7, 33, 64, 3, 19};
  size_t pos = 0, batch_no = 0, duplicates = 0, refused = 0;
  std::string last_checkpoint;
  while (pos < w.steps.size()) {
    size_t n = kSizes[batch_no % 6];
    size_t end = pos;
    while (end < w.steps.size() && end - pos < n && w.steps[end].now == w.steps[pos].now) end++;
    clock = w.steps[pos].now;
    std::vector<Bytes> entries;
    std::vector<std::shared_ptr<const void>> contexts;
    for (size_t i = pos; i < end; i++) {
      entries.push_back(w.steps[i].entry);
      if (batch_no % 2 == 0) {
        if (w.steps[i].parses) {
          contexts.push_back(std::make_shared<ParsedEntry>(ParseOrDie(w.steps[i].entry)));
        } else {
          contexts.push_back(nullptr);
        }
      }
    }
    auto res = seq.Append(entries, contexts);
    INFO("batch " << batch_no << ": " << res.status().ToString());
    REQUIRE(res.ok());
    REQUIRE(res->entries.size() == end - pos);
    for (size_t i = pos; i < end; i++) {
      const Step& s = w.steps[i];
      const SequencedEntry& got = res->entries[i - pos];
      INFO("step " << i << " want " << Status::CodeName(s.want) << " '" << s.prefix << "' index " << s.index
                   << "\ngot " << got.status.ToString() << " index " << got.index << "\nentry " << s.entry.substr(0, 200));
      if (s.want == Code::kOk) {
        REQUIRE(got.status.ok());
        REQUIRE(got.index == s.index);
        REQUIRE(got.duplicate == s.duplicate);
        REQUIRE(got.leaf_hash == HashLeaf(w.accepted[s.index]));
        duplicates += s.duplicate ? 1 : 0;
      } else {
        REQUIRE(got.status.code() == s.want);
        REQUIRE(StartsWith(got.status.message(), s.prefix));
        refused++;
      }
    }
    if (!res->checkpoint.empty()) last_checkpoint = res->checkpoint;
    pos = end;
    batch_no++;
  }
  CHECK(batch_no >= 10);

  // Coverage of the workload itself: every kind of refusal happened.
  for (const char* p : {"undisclosed use", "clock skew", "request id reused", "unauthorised key", "revoked key",
                        "policy version", "unknown holder", "envelope", "bad signature"}) {
    INFO(p);
    CHECK(w.refusals[p] > 0);
  }
  size_t accesses = 0;
  for (const Bytes& e : w.accepted) accesses += ParseOrDie(e).kind == EntryKind::kAccess ? 1 : 0;
  CHECK(accesses >= 150);
  CHECK(refused >= 40);
  CHECK(duplicates >= 15);
  CHECK(seq.stats().appended.load() == w.accepted.size());
  CHECK(seq.stats().refused.load() == refused);
  CHECK(seq.stats().duplicates.load() == duplicates);

  // Refused entries never reached the log: size == accepted count.
  CHECK((*store)->size() == w.accepted.size());
  auto cp = OpenCheckpoint(seq.latest_checkpoint(), w.log->verifier());
  REQUIRE(cp.ok());
  CHECK(cp->size == w.accepted.size());
  CHECK(cp->root == (*store)->root());
  CHECK(last_checkpoint == seq.latest_checkpoint());

  // Force the index commitment: a resubmitted entry makes a batch, whose
  // end appends it.
  indexer.set_interval(std::chrono::milliseconds(0));
  auto forced = seq.Append({w.accepted[0]});
  REQUIRE(forced.ok());
  REQUIRE(forced->entries[0].duplicate);
  REQUIRE((*store)->size() == w.accepted.size() + 1);
  CHECK(indexer.pending_accesses() == 0);
  REQUIRE((*tree)->Flush().ok());

  auto reader = (*store)->Read();
  REQUIRE(reader.ok());
  const LogReader& r = **reader;
  REQUIRE(r.size() == w.accepted.size() + 1);
  for (const Step& s : w.steps)
    if (s.want != Code::kOk) CHECK(r.FindLeaf(HashLeaf(s.entry)).status().IsNotFound());

  // Replay from the log's bytes alone.
  RulesOptions replay_options = ro;
  replay_options.check_clock = false;
  LedgerRules replay_rules(replay_options);
  MemoryStateStore replayed;
  SubjectIndexReplay index_replay(replayed);
  auto all = r.GetEntries(0, r.size());
  REQUIRE(all.ok());
  REQUIRE(all->size() == w.accepted.size() + 1);
  for (uint64_t i = 0; i < r.size(); i++) {
    auto e = r.GetEntry(i);
    REQUIRE(e.ok());
    REQUIRE(*e == (*all)[i]);
    ParsedEntry p = ParseOrDie(Bytes(*e));
    if (i < w.accepted.size()) {
      REQUIRE(Bytes(*e) == w.accepted[i]);
    } else {
      REQUIRE(p.kind == EntryKind::kIndex);
      CHECK(p.index().size == i);
      CHECK(p.index().accesses == accesses);
    }
    Status indexed = index_replay.Add(p, i);
    INFO(indexed.ToString());
    REQUIRE(indexed.ok());
    // Every logged entry was acceptable at its position.
    auto c = replay_rules.Check(replayed, p, 0);
    INFO("entry " << i << ": " << c.status().ToString());
    REQUIRE(c.ok());
    REQUIRE_FALSE(c->has_value());
    REQUIRE(replay_rules.Apply(replayed, p, i).ok());
  }
  // The state says what the workload did: one request id per access,
  // found from its entry (not a state key in LMDB).
  CHECK(ledger_test::RequireReplayedState(r, replayed, **tree) == accesses);
  std::map<Bytes, Bytes> lmdb = LmdbState(r);
  size_t c_keys = 0, s_keys = 0;
  for (const auto& [k, v] : lmdb) {
    c_keys += StartsWith(k, "c/") ? 1 : 0;
    s_keys += StartsWith(k, "t/") ? 1 : 0;
    CHECK_FALSE(StartsWith(k, "x/"));
  }
  CHECK(c_keys == accesses);
  CHECK(s_keys == 0);  // the tree is in its own directory (SPEC.md §7)
  CHECK((*tree)->persisted_version() == w.accepted.size());
  CHECK(lmdb.count("i/last") == 1);
  CHECK(lmdb.count("h/bank-a") == 1);
  CHECK(lmdb.count("h/bank-b") == 1);
  CHECK(lmdb.count("h/bank-c") == 0);
  CHECK(lmdb.count("p/bank-a/payments") == 0);
  ReaderStateStore rs(r);
  auto pol = LedgerRules::GetPolicy(rs, "bank-a", "messenger");
  REQUIRE(pol.ok());
  REQUIRE(pol->has_value());
  CHECK((*pol)->version == 2);
  auto m2 = LedgerRules::KeyStatus(rs, "bank-a", "messenger", w.m2->public_key());
  REQUIRE(m2.ok());
  CHECK(*m2 == 'R');
  CHECK(rs.Put("x", "y").code() == Code::kFailedPrecondition);

  // After a restart on the same store, every accepted entry is a repeat.
  seq.Stop();
  reader->reset();
  store->reset();
  auto reopened = Store::Open(so);
  REQUIRE(reopened.ok());
  RulesHook hook2(LedgerRules(ro), [&] { return clock.load(); });
  Sequencer seq2(reopened->get(), w.log.get(), SequencerOptions{}, &hook2);
  REQUIRE(seq2.Start().ok());
  auto again = seq2.Append(w.accepted);
  REQUIRE(again.ok());
  for (size_t i = 0; i < w.accepted.size(); i++) {
    INFO(i);
    CHECK(again->entries[i].status.ok());
    CHECK(again->entries[i].index == i);
  }
  CHECK((*reopened)->size() == w.accepted.size() + 1);
  // And the derived state carried over: the revoked key stays revoked.
  AccessRecord late = Access("late-1", "bank-a", "messenger", "CUSTOMER_SUPPORT", {"BALANCES"}, clock.load());
  auto refused_late = seq2.Append({AccessEntry(late, *w.m2)});
  REQUIRE(refused_late.ok());
  ExpectRefusal(refused_late->entries[0].status, Code::kPermissionDenied, "revoked key");
  auto ok_late = seq2.Append({AccessEntry(late, *w.m3)});
  REQUIRE(ok_late.ok());
  CHECK(ok_late->entries[0].status.ok());
  CHECK(ok_late->entries[0].index == w.accepted.size() + 1);  // after the commitment
  seq2.Stop();
}

// --- RulesCache ----------------------------------------------------------------

namespace {

// TxnState is a StateStore with transactions: Put and Get go through an
// overlay that Commit applies and Abort drops (as a WriteBatch does).
class TxnState : public StateStore {
 public:
  StatusOr<std::optional<Bytes>> Get(ByteView key) override {
    auto it = overlay_.find(Bytes(key));
    if (it != overlay_.end()) return it->second;
    return base_.Get(key);
  }
  Status Put(ByteView key, ByteView value) override {
    overlay_[Bytes(key)] = Bytes(value);
    return Status::OK();
  }
  Status Delete(ByteView key) override {
    overlay_[Bytes(key)] = std::nullopt;
    return Status::OK();
  }
  void Commit() {
    for (const auto& [k, v] : overlay_) REQUIRE((v ? base_.Put(k, *v) : base_.Delete(k)).ok());
    overlay_.clear();
  }
  void Abort() { overlay_.clear(); }
  const std::map<Bytes, Bytes, std::less<>>& data() const { return base_.data(); }

 private:
  MemoryStateStore base_;
  std::map<Bytes, std::optional<Bytes>> overlay_;
};

}  // namespace

TEST_CASE("A RulesCache changes no decision, also across aborted transactions", "[rules]") {
  // Random transactions of holder re-registrations, key authorisations and
  // revocations, policy versions and accesses (some retried, some reusing
  // an id), checked by the same rules with and without a cache, a third of
  // the transactions aborted: every decision and the final state agree.
  auto log = NewKey(), ka1 = NewKey(), ka2 = NewKey(), m1 = NewKey(), m2 = NewKey();
  LedgerRules rules(RulesOptions{Bytes(log->public_key()), 300, true});
  TxnState plain, cached;
  RulesCache cache;
  const std::vector<PurposeList> policies = {{{"CUSTOMER_SUPPORT", {"BALANCES"}}},
                                             {{"CUSTOMER_SUPPORT", {"BALANCES", "TRANSACTIONS"}}, {"FRAUD_PREVENTION", {"TRANSACTIONS"}}},
                                             {{"FRAUD_PREVENTION", {"TRANSACTIONS"}}}};
  std::mt19937_64 rng(11);
  uint64_t size = 0, version = 0, accepted = 0, refused = 0, aborted = 0;
  auto random_entry = [&]() -> Bytes {
    const Ed25519Signer& holder_key = rng() % 2 ? *ka1 : *ka2;
    const Ed25519Signer& accessor_key = rng() % 2 ? *m1 : *m2;
    switch (rng() % 10) {
      case 0:
        return HolderEntry("bank-a", holder_key, *log);
      case 1:
        return Authorize("bank-a", "messenger", {&accessor_key}, holder_key);
      case 2:
        return rng() % 3 ? Authorize("bank-a", "messenger", {m1.get(), m2.get()}, holder_key)
                         : Revoke("bank-a", "messenger", {&accessor_key}, holder_key);
      case 3:
        // Mostly the next version, sometimes one not above the one in force.
        return PolicyEntry("bank-a", "messenger", rng() % 4 ? ++version : version, policies[rng() % policies.size()],
                           accessor_key);
      default: {
        static const char* kPurposes[] = {"CUSTOMER_SUPPORT", "FRAUD_PREVENTION"};
        static const char* kCats[] = {"BALANCES", "TRANSACTIONS"};
        return AccessEntry(Access("req-" + std::to_string(rng() % 40), "bank-a", "messenger", kPurposes[rng() % 2],
                                  {kCats[rng() % 2]}),
                           accessor_key);
      }
    }
  };
  for (int txn = 0; txn < 250; txn++) {
    const uint64_t start = size;
    const size_t n = 1 + rng() % 6;
    for (size_t i = 0; i < n; i++) {
      ParsedEntry p = ParseOrDie(txn == 0 && i == 0 ? HolderEntry("bank-a", *ka1, *log) : random_entry());
      auto want = rules.Check(plain, p, kNow, size);
      auto got = rules.Check(cached, p, kNow, size, &cache);
      INFO("transaction " << txn << ", entry " << i << ": " << want.status().ToString() << " / " << got.status().ToString());
      REQUIRE(want.ok() == got.ok());
      if (!want.ok()) {
        CHECK(want.status().code() == got.status().code());
        CHECK(want.status().message() == got.status().message());
        refused++;
        continue;
      }
      REQUIRE(*want == *got);
      if (want->has_value()) continue;
      REQUIRE(rules.Apply(plain, p, size).ok());
      REQUIRE(rules.Apply(cached, p, size, &cache).ok());
      size++;
      accepted++;
    }
    if (rng() % 3 == 0) {
      plain.Abort();
      cached.Abort();
      size = start;
      aborted++;
    } else {
      plain.Commit();
      cached.Commit();
    }
    cache.BatchDone();
  }
  CHECK(plain.data() == cached.data());
  INFO("accepted " << accepted << ", refused " << refused << ", aborted " << aborted);
  // The workload exercised both outcomes and aborts.
  CHECK(accepted > 80);
  CHECK(refused > 80);
  CHECK(aborted > 50);
}
