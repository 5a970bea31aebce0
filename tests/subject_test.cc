#include "ledger/subject.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "ledger/vrf.h"

using namespace ledger;

namespace {

std::unique_ptr<VrfSecretKey> KeyFromByte(char b) {
  auto k = VrfSecretKey::FromSeed(Bytes(32, b));
  REQUIRE(k.ok());
  return std::move(*k);
}

SubjectToken Issue(const VrfSecretKey& key, const std::string& holder, const std::string& customer,
                   const std::string& period) {
  auto t = IssueSubjectToken(key, holder, customer, period);
  REQUIRE(t.ok());
  return *t;
}

}  // namespace

TEST_CASE("subject token: issue, format, parse and verify round trip") {
  auto key = KeyFromByte(7);
  SubjectToken t = Issue(*key, "demo-bank", "alice", "2026-12");
  CHECK(t.holder == "demo-bank");
  CHECK(t.period == "2026-12");
  CHECK(t.customer_id == "alice");
  REQUIRE(t.tag.size() == kSubjectTagSize);
  REQUIRE(t.proof.size() == kVrfProofSize);

  // The tag is the first 32 bytes of the verified VRF output.
  auto alpha = SubjectVrfInput("alice", "2026-12");
  REQUIRE(alpha.ok());
  auto beta = VrfVerify(key->public_key(), *alpha, t.proof);
  REQUIRE(beta.ok());
  CHECK(t.tag == beta->substr(0, 32));

  std::string text = FormatSubjectToken(t);
  CHECK(text == "ledger-subject-v1:demo-bank:2026-12:YWxpY2U:" + Base64UrlEncode(t.tag) + ":" + Base64UrlEncode(t.proof));
  auto parsed = ParseSubjectToken(text);
  REQUIRE(parsed.ok());
  CHECK(parsed->holder == t.holder);
  CHECK(parsed->period == t.period);
  CHECK(parsed->customer_id == t.customer_id);
  CHECK(parsed->tag == t.tag);
  CHECK(parsed->proof == t.proof);
  CHECK(FormatSubjectToken(*parsed) == text);
  CHECK(VerifySubjectToken(*parsed, key->public_key()).ok());

  // Deterministic; unlinkable across periods and customers.
  CHECK(FormatSubjectToken(Issue(*key, "demo-bank", "alice", "2026-12")) == text);
  CHECK(Issue(*key, "demo-bank", "alice", "2027-01").tag != t.tag);
  CHECK(Issue(*key, "demo-bank", "bob", "2026-12").tag != t.tag);
}

TEST_CASE("subject token: customer ids are arbitrary bytes") {
  auto key = KeyFromByte(1);
  for (const std::string& id : {std::string("a"), std::string("x:y:z"), std::string("\0\xff\n", 3), std::string(256, 'c')}) {
    SubjectToken t = Issue(*key, "b", id, "1999-01");
    auto parsed = ParseSubjectToken(FormatSubjectToken(t));
    REQUIRE(parsed.ok());
    CHECK(parsed->customer_id == id);
    CHECK(VerifySubjectToken(*parsed, key->public_key()).ok());
  }
}

TEST_CASE("subject token: issue rejects bad input") {
  auto key = KeyFromByte(2);
  CHECK(IssueSubjectToken(*key, "", "alice", "2026-12").status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, "Bank", "alice", "2026-12").status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, "-bank", "alice", "2026-12").status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, "bank:x", "alice", "2026-12").status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, std::string(65, 'b'), "alice", "2026-12").status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, "bank", "", "2026-12").status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, "bank", std::string(257, 'c'), "2026-12").status().IsInvalidArgument());
  for (const char* period : {"2026-13", "2026-00", "2026-1", "26-12", "2026/12", "2026-12-01", ""})
    CHECK(IssueSubjectToken(*key, "bank", "alice", period).status().IsInvalidArgument());
  CHECK(IssueSubjectToken(*key, std::string(64, 'b'), "alice", "2026-12").ok());
}

TEST_CASE("subject token: strict parsing") {
  auto key = KeyFromByte(3);
  SubjectToken t = Issue(*key, "bank", "carol", "2026-12");
  const std::string tag = Base64UrlEncode(t.tag);
  const std::string proof = Base64UrlEncode(t.proof);
  const std::string good = "ledger-subject-v1:bank:2026-12:Y2Fyb2w:" + tag + ":" + proof;
  REQUIRE(ParseSubjectToken(good).ok());

  // A tag whose last character carries non-zero pad bits (43 chars encode
  // 258 bits, the last 2 must be zero).
  std::string tag_bad_bits = tag;
  tag_bad_bits.back() = tag_bad_bits.back() == 'B' ? 'C' : 'B';
  const std::string sep = ":";
  const std::string head = "ledger-subject-v1:bank:2026-12:Y2Fyb2w:";

  struct Case {
    const char* what;
    std::string text;
  };
  const std::vector<Case> bad = {
      {"empty", ""},
      {"prefix only", "ledger-subject-v1"},
      {"five fields", "ledger-subject-v1:bank:2026-12:Y2Fyb2w:" + tag},
      {"seven fields", good + ":x"},
      {"trailing colon", good + ":"},
      {"wrong version", "ledger-subject-v2:bank:2026-12:Y2Fyb2w:" + tag + sep + proof},
      {"upper-case prefix", "LEDGER-SUBJECT-V1:bank:2026-12:Y2Fyb2w:" + tag + sep + proof},
      {"leading space", " " + good},
      {"trailing space", good + " "},
      {"trailing newline", good + "\n"},
      {"empty holder", "ledger-subject-v1::2026-12:Y2Fyb2w:" + tag + sep + proof},
      {"upper-case holder", "ledger-subject-v1:Bank:2026-12:Y2Fyb2w:" + tag + sep + proof},
      {"holder starting with '_'", "ledger-subject-v1:_bank:2026-12:Y2Fyb2w:" + tag + sep + proof},
      {"holder too long", "ledger-subject-v1:" + std::string(65, 'b') + ":2026-12:Y2Fyb2w:" + tag + sep + proof},
      {"month 13", "ledger-subject-v1:bank:2026-13:Y2Fyb2w:" + tag + sep + proof},
      {"month 00", "ledger-subject-v1:bank:2026-00:Y2Fyb2w:" + tag + sep + proof},
      {"short period", "ledger-subject-v1:bank:2026-1:Y2Fyb2w:" + tag + sep + proof},
      {"period with a day", "ledger-subject-v1:bank:2026-12-01:Y2Fyb2w:" + tag + sep + proof},
      {"empty customer id", "ledger-subject-v1:bank:2026-12::" + tag + sep + proof},
      {"padded customer id", "ledger-subject-v1:bank:2026-12:Y2Fyb2w=:" + tag + sep + proof},
      {"non-canonical customer id", "ledger-subject-v1:bank:2026-12:Y2Fyb2x:" + tag + sep + proof},
      {"standard-alphabet customer id", "ledger-subject-v1:bank:2026-12:+/8:" + tag + sep + proof},
      {"customer id of 257 bytes",
       "ledger-subject-v1:bank:2026-12:" + Base64UrlEncode(std::string(257, 'c')) + sep + tag + sep + proof},
      {"empty tag", head + sep + proof},
      {"tag of 31 bytes", head + Base64UrlEncode(t.tag.substr(1)) + sep + proof},
      {"tag of 33 bytes", head + Base64UrlEncode(t.tag + "x") + sep + proof},
      {"tag with pad bits set", head + tag_bad_bits + sep + proof},
      {"padded tag", head + tag + "=" + sep + proof},
      {"proof of 79 bytes", head + tag + sep + Base64UrlEncode(t.proof.substr(1))},
      {"proof of 81 bytes", head + tag + sep + Base64UrlEncode(t.proof + "x")},
      {"empty proof", head + tag + sep},
      {"proof with a space", head + tag + sep + proof.substr(0, 10) + " " + proof.substr(11)},
  };
  for (const Case& c : bad) {
    INFO(c.what);
    auto r = ParseSubjectToken(c.text);
    CHECK(!r.ok());
    CHECK(r.status().IsInvalidArgument());
  }
}

TEST_CASE("subject token: tampering is detected") {
  auto key = KeyFromByte(4);
  const SubjectToken t = Issue(*key, "bank", "dave", "2026-12");
  REQUIRE(VerifySubjectToken(t, key->public_key()).ok());

  auto denied = [&](const SubjectToken& x) {
    Status s = VerifySubjectToken(x, key->public_key());
    return !s.ok() && s.code() == Status::Code::kPermissionDenied;
  };
  for (size_t i = 0; i < t.proof.size(); i++) {
    for (int bit : {0, 7}) {
      SubjectToken x = t;
      x.proof[i] = static_cast<char>(x.proof[i] ^ (1 << bit));
      INFO("proof byte " << i << " bit " << bit);
      CHECK(denied(x));
    }
  }
  for (size_t i = 0; i < t.tag.size(); i++) {
    SubjectToken x = t;
    x.tag[i] = static_cast<char>(x.tag[i] ^ 1);
    INFO("tag byte " << i);
    CHECK(denied(x));
  }
  SubjectToken other_customer = t;
  other_customer.customer_id = "davE";
  CHECK(denied(other_customer));
  SubjectToken other_period = t;
  other_period.period = "2026-11";
  CHECK(denied(other_period));
  // Another customer's valid tag and proof do not pass for this customer.
  SubjectToken swapped = Issue(*key, "bank", "erin", "2026-12");
  swapped.customer_id = t.customer_id;
  CHECK(denied(swapped));
  // Tampering with the text form is caught too.
  std::string text = FormatSubjectToken(t);
  text[text.size() - 5] = text[text.size() - 5] == 'A' ? 'B' : 'A';
  auto parsed = ParseSubjectToken(text);
  if (parsed.ok()) CHECK(denied(*parsed));
}

TEST_CASE("subject token: wrong or invalid VRF key") {
  auto key = KeyFromByte(5);
  auto other = KeyFromByte(6);
  const SubjectToken t = Issue(*key, "bank", "frank", "2026-12");
  Status s = VerifySubjectToken(t, other->public_key());
  CHECK(s.code() == Status::Code::kPermissionDenied);
  // A token issued with the other key does not verify with this one either.
  CHECK(VerifySubjectToken(Issue(*other, "bank", "frank", "2026-12"), key->public_key()).code() ==
        Status::Code::kPermissionDenied);

  // Keys that are not valid VRF public keys are the caller's error.
  CHECK(VerifySubjectToken(t, "").IsInvalidArgument());
  CHECK(VerifySubjectToken(t, key->public_key().substr(1)).IsInvalidArgument());
  CHECK(VerifySubjectToken(t, Bytes(key->public_key()) + "x").IsInvalidArgument());
  Bytes identity(32, '\0');
  identity[0] = 1;
  CHECK(VerifySubjectToken(t, identity).IsInvalidArgument());
  Bytes zero(32, '\0');  // a point of order 4
  CHECK(VerifySubjectToken(t, zero).IsInvalidArgument());
}
