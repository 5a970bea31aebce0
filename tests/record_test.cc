// Tests for ledger/record.h: the DSSE-style envelope (PAE, canonical byte
// form, signatures), the four payload kinds with their strict parsers, the
// vocabulary, RFC 3339 times, and Ed25519Signer.
//
// Known answers come from outside this code base: the PAE example from the
// DSSE protocol text, RFC 8032 §7.1 test 1 for Ed25519, timegm(3) for times,
// and libsodium called directly for signature checks.
#include "ledger/record.h"

#include <sodium.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "ledger/bytes.h"

using namespace ledger;
using ojson = nlohmann::ordered_json;

namespace {

const char kTime[] = "2026-12-01T10:00:00Z";

Bytes Repeat(char c, size_t n) { return Bytes(n, c); }

Bytes HexOrDie(const std::string& hex) {
  auto b = HexDecode(hex);
  REQUIRE(b.ok());
  return *b;
}

std::unique_ptr<Ed25519Signer> SignerFromByte(uint8_t b) {
  auto s = Ed25519Signer::FromSeed(Bytes(32, static_cast<char>(b)));
  REQUIRE(s.ok());
  return std::move(*s);
}

HolderRecord SampleHolder() {
  HolderRecord r;
  r.holder = "bank-a";
  r.signing_key = Repeat('\x11', 32);
  r.vrf_key = Repeat('\x22', 32);
  r.time = kTime;
  return r;
}

AccessorRecord SampleAccessor() {
  AccessorRecord r;
  r.holder = "bank-a";
  r.accessor = "messenger";
  r.action = AccessorRecord::Action::kAuthorize;
  r.keys = {Repeat('\x33', 32), Repeat('\x44', 32)};
  r.time = kTime;
  return r;
}

PolicyRecord SamplePolicy() {
  PolicyRecord r;
  r.holder = "bank-a";
  r.accessor = "messenger";
  r.version = 3;
  PolicyPurpose support;
  support.purpose = "CUSTOMER_SUPPORT";
  support.categories = {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS"};
  support.retention_days = 30;
  PolicyPurpose pay;
  pay.purpose = "PAYMENT_INITIATION";
  pay.categories = {"PAYMENT_SUPPORT"};
  r.purposes = {support, pay};
  r.time = kTime;
  return r;
}

AccessRecord SampleAccess() {
  AccessRecord r;
  r.request_id = "req-0001";
  r.accessor = "messenger";
  r.holder = "bank-a";
  r.subject = Repeat('\x55', 32);
  r.purpose = "CUSTOMER_SUPPORT";
  r.categories = {"BALANCES", "ACCOUNT_BASIC"};
  r.consent = "consent-2026-001";
  r.time = kTime;
  r.actor = "agent-17";
  r.detail = "customer asked for their balance";
  return r;
}

// RawEnvelope writes the canonical envelope shape by hand (independently of
// EncodeEnvelope) from already-encoded parts.
std::string RawEnvelope(const std::string& payload_b64, const std::string& type, const std::string& keyid,
                        const std::string& sig_b64) {
  return "{\"payload\":\"" + payload_b64 + "\",\"payloadType\":\"" + type + "\",\"signatures\":[{\"keyid\":\"" +
         keyid + "\",\"sig\":\"" + sig_b64 + "\"}]}";
}

struct Parts {
  std::string payload_b64, type, keyid, sig_b64;
  std::string Render() const { return RawEnvelope(payload_b64, type, keyid, sig_b64); }
};

Parts PartsOf(const Bytes& payload, const char* type, const Ed25519Signer& signer) {
  Bytes sig = signer.Sign(Pae(type, payload));
  return Parts{Base64Encode(payload), type, Base64UrlEncode(signer.public_key()), Base64Encode(sig)};
}

Status::Code CodeOf(const Status& s) { return s.code(); }


// --- payload table helpers ---------------------------------------------

using Mutation = std::function<void(ojson&)>;

struct BadCase {
  std::string name;
  Mutation mutate;
  std::string want;  // substring the error message must contain ("" = any)
};

struct GoodCase {
  std::string name;
  Mutation mutate;
};

template <typename Parse>
void RunTables(const Bytes& base_payload, Parse parse, const std::vector<BadCase>& bad,
               const std::vector<GoodCase>& good) {
  {
    auto r = parse(base_payload);
    INFO("base payload " << base_payload << ": " << r.status().ToString());
    REQUIRE(r.ok());
  }
  for (const auto& c : bad) {
    ojson j = ojson::parse(base_payload);
    c.mutate(j);
    Bytes payload = j.dump();
    auto r = parse(payload);
    INFO("case: " << c.name << "\npayload: " << payload << "\nstatus: " << r.status().ToString());
    CHECK(CodeOf(r.status()) == Status::Code::kInvalidArgument);
    if (!c.want.empty()) CHECK(r.status().message().find(c.want) != std::string::npos);
  }
  for (const auto& c : good) {
    ojson j = ojson::parse(base_payload);
    c.mutate(j);
    Bytes payload = j.dump();
    auto r = parse(payload);
    INFO("case: " << c.name << "\npayload: " << payload << "\nstatus: " << r.status().ToString());
    CHECK(r.ok());
  }
}

// Mutations shared by the tables.
Mutation Erase(const std::string& k) {
  return [k](ojson& j) { j.erase(k); };
}
Mutation Set(const std::string& k, ojson v) {
  return [k, v](ojson& j) { j[k] = v; };
}

std::vector<BadCase> MissingEach(const std::vector<std::string>& fields) {
  std::vector<BadCase> out;
  for (const auto& f : fields) out.push_back({"missing " + f, Erase(f), "missing field \"" + f + "\""});
  return out;
}

std::vector<BadCase> Concat(std::vector<BadCase> a, const std::vector<BadCase>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<GoodCase> Concat_Good(std::vector<GoodCase> a, const std::vector<GoodCase>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Names shared by every payload with holder/accessor name fields.
std::vector<BadCase> BadNames(const std::string& field) {
  return {
      {field + " 65 chars", Set(field, std::string(65, 'a')), field},
      {field + " empty", Set(field, ""), field},
      {field + " uppercase", Set(field, "Bank-A"), field},
      {field + " all uppercase", Set(field, "BANK"), field},
      {field + " space", Set(field, "bank a"), field},
      {field + " slash", Set(field, "bank/a"), field},
      {field + " plus", Set(field, "bank+a"), field},
      {field + " non-ASCII", Set(field, "bänk"), field},
      {field + " starts with dot", Set(field, ".bank"), field},
      {field + " starts with dash", Set(field, "-bank"), field},
      {field + " starts with underscore", Set(field, "_bank"), field},
      {field + " NUL", Set(field, std::string("ba\0nk", 5)), field},
      {field + " number", Set(field, 7), field},
      {field + " null", Set(field, nullptr), field},
      {field + " array", Set(field, ojson::array({"bank"})), field},
  };
}

std::vector<GoodCase> GoodNames(const std::string& field) {
  return {
      {field + " 64 chars", Set(field, std::string(64, 'a'))},
      {field + " 1 char", Set(field, "b")},
      {field + " digit first", Set(field, "0bank")},
      {field + " punctuation", Set(field, "bank.example-eu_1")},
  };
}

std::vector<BadCase> BadTimes(const std::string& field) {
  return {
      {"time offset", Set(field, "2026-12-01T10:00:00+01:00"), field},
      {"time lowercase z", Set(field, "2026-12-01T10:00:00z"), field},
      {"time date only", Set(field, "2026-12-01"), field},
      {"time number", Set(field, 1764583200), field},
      {"time empty", Set(field, ""), field},
  };
}

std::vector<BadCase> BadKey(const std::string& field) {
  return {
      {field + " 31 bytes", Set(field, Base64UrlEncode(Repeat('k', 31))), field},
      {field + " 33 bytes", Set(field, Base64UrlEncode(Repeat('k', 33))), field},
      {field + " padded", Set(field, Base64UrlEncode(Repeat('k', 32)) + "="), field},
      {field + " std base64", Set(field, Base64Encode(Repeat('\xfb', 32))), field},
      {field + " hex", Set(field, HexEncode(Repeat('k', 32))), field},
      {field + " empty", Set(field, ""), field},
      {field + " number", Set(field, 32), field},
  };
}

}  // namespace

// --- PAE, envelope ------------------------------------------------------

TEST_CASE("PAE matches the DSSE v1 definition", "[record][pae]") {
  // The worked example of the DSSE protocol text.
  CHECK(Pae("http://example.com/HelloWorld", "hello world") == "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  CHECK(Pae("", "") == "DSSEv1 0  0 ");
  // Lengths are byte counts in decimal, with no padding; bodies may hold
  // NUL, spaces and multi-byte UTF-8.
  CHECK(Pae("t", Bytes("a\0b", 3)) == Bytes("DSSEv1 1 t 3 a\0b", 16));
  CHECK(Pae("x y", "h\xc3\xa9llo") == "DSSEv1 3 x y 6 h\xc3\xa9llo");
  Bytes big(1234, 'z');
  CHECK(Pae(kAccessPayloadType, big) ==
        "DSSEv1 44 application/vnd.access-ledger.access.v1+json 1234 " + big);
}

TEST_CASE("Payload types, kind names and vocabulary", "[record][vocabulary]") {
  CHECK(std::string(kHolderPayloadType) == "application/vnd.access-ledger.holder.v1+json");
  CHECK(std::string(kAccessorPayloadType) == "application/vnd.access-ledger.accessor.v1+json");
  CHECK(std::string(kPolicyPayloadType) == "application/vnd.access-ledger.policy.v1+json");
  CHECK(std::string(kAccessPayloadType) == "application/vnd.access-ledger.access.v1+json");
  CHECK(std::string(EntryKindName(EntryKind::kHolder)) == "holder");
  CHECK(std::string(EntryKindName(EntryKind::kAccessor)) == "accessor");
  CHECK(std::string(EntryKindName(EntryKind::kPolicy)) == "policy");
  CHECK(std::string(EntryKindName(EntryKind::kAccess)) == "access");

  for (const char* p : {"CUSTOMER_SUPPORT", "PAYMENT_INITIATION", "ACCOUNT_VERIFICATION", "FRAUD_PREVENTION",
                        "LEGAL_COMPLIANCE"}) {
    INFO(p);
    REQUIRE(FindPurpose(p) != nullptr);
    CHECK_FALSE(FindPurpose(p)->prohibited);
  }
  for (const char* p : {"TARGETED_ADVERTISING", "CROSS_SELLING", "SALE_OF_DATA"}) {
    INFO(p);
    REQUIRE(FindPurpose(p) != nullptr);
    CHECK(FindPurpose(p)->prohibited);
  }
  int prohibited = 0;
  for (const auto& p : Purposes()) prohibited += p.prohibited ? 1 : 0;
  CHECK(prohibited == 3);
  for (const char* c : {"ACCOUNT_BASIC", "BALANCES", "TRANSACTIONS", "STATEMENTS", "PAYMENT_SUPPORT",
                        "CUSTOMER_CONTACT"}) {
    INFO(c);
    CHECK(FindCategory(c) != nullptr);
  }
  CHECK(FindPurpose("customer_support") == nullptr);
  CHECK(FindPurpose("") == nullptr);
  CHECK(FindPurpose("CUSTOMER_SUPPORT ") == nullptr);
  CHECK(FindCategory("balances") == nullptr);
  CHECK(FindCategory("") == nullptr);
  CHECK(FindCategory("CUSTOMER_SUPPORT") == nullptr);
}

TEST_CASE("Ed25519Signer matches RFC 8032 test 1 and libsodium", "[record][signer]") {
  // RFC 8032 §7.1, TEST 1 (empty message).
  auto s = Ed25519Signer::FromSeed(HexOrDie("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  REQUIRE(s.ok());
  CHECK(HexEncode((*s)->public_key()) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  CHECK(HexEncode((*s)->seed()) == "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  CHECK(HexEncode((*s)->Sign("")) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");

  CHECK(Ed25519Signer::FromSeed(Bytes(31, 'a')).status().code() == Status::Code::kInvalidArgument);
  CHECK(Ed25519Signer::FromSeed(Bytes(33, 'a')).status().code() == Status::Code::kInvalidArgument);
  CHECK(Ed25519Signer::FromSeed("").status().code() == Status::Code::kInvalidArgument);

  auto a = Ed25519Signer::Generate();
  auto b = Ed25519Signer::Generate();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->public_key().size() == 32);
  CHECK((*a)->public_key() != (*b)->public_key());
  auto again = Ed25519Signer::FromSeed((*a)->seed());
  REQUIRE(again.ok());
  CHECK((*again)->public_key() == (*a)->public_key());
}

TEST_CASE("SignEnvelope produces the canonical bytes, signed over PAE", "[record][envelope]") {
  auto signer = SignerFromByte(7);
  Bytes payload = EncodeAccess(SampleAccess());
  Bytes entry = SignEnvelope(kAccessPayloadType, payload, *signer);

  // Independent check of the signature: libsodium over a hand-built PAE.
  std::string pae = "DSSEv1 44 application/vnd.access-ledger.access.v1+json " + std::to_string(payload.size()) + " " +
                    payload;
  Bytes sig = signer->Sign(pae);
  CHECK(crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                    reinterpret_cast<const unsigned char*>(pae.data()), pae.size(),
                                    reinterpret_cast<const unsigned char*>(signer->public_key().data())) == 0);
  CHECK(entry == RawEnvelope(Base64Encode(payload), kAccessPayloadType, Base64UrlEncode(signer->public_key()),
                             Base64Encode(sig)));

  auto env = ParseEnvelope(entry);
  REQUIRE(env.ok());
  CHECK(env->payload_type == kAccessPayloadType);
  CHECK(env->payload == payload);
  CHECK(env->public_key == signer->public_key());
  CHECK(env->signature == sig);
  CHECK(VerifyEnvelope(*env).ok());
  CHECK(EncodeEnvelope(*env) == entry);

  // SignEnvelopeWith with the same key gives the same bytes (Ed25519 is
  // deterministic).
  Bytes with = SignEnvelopeWith(kAccessPayloadType, payload, signer->public_key(),
                                [&](ByteView m) { return signer->Sign(m); });
  CHECK(with == entry);
}

TEST_CASE("Sign and parse round trip for every kind", "[record][envelope]") {
  auto signer = SignerFromByte(9);

  SECTION("holder") {
    HolderRecord r = SampleHolder();
    Bytes entry = SignEnvelope(kHolderPayloadType, EncodeHolder(r), *signer);
    auto p = ParseEntry(entry);
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    CHECK(p->kind == EntryKind::kHolder);
    CHECK(p->envelope.public_key == signer->public_key());
    CHECK(p->holder().holder == r.holder);
    CHECK(p->holder().signing_key == r.signing_key);
    CHECK(p->holder().vrf_key == r.vrf_key);
    CHECK(p->holder().time == r.time);
    CHECK(EncodeHolder(p->holder()) == p->envelope.payload);
    CHECK(p->envelope.payload ==
          "{\"holder\":\"bank-a\",\"signing_key\":\"" + Base64UrlEncode(r.signing_key) + "\",\"vrf_key\":\"" +
              Base64UrlEncode(r.vrf_key) + "\",\"time\":\"2026-12-01T10:00:00Z\"}");
  }
  SECTION("accessor, authorize and revoke") {
    for (auto action : {AccessorRecord::Action::kAuthorize, AccessorRecord::Action::kRevoke}) {
      AccessorRecord r = SampleAccessor();
      r.action = action;
      Bytes entry = SignEnvelope(kAccessorPayloadType, EncodeAccessor(r), *signer);
      auto p = ParseEntry(entry);
      INFO(p.status().ToString());
      REQUIRE(p.ok());
      CHECK(p->kind == EntryKind::kAccessor);
      CHECK(p->accessor().holder == r.holder);
      CHECK(p->accessor().accessor == r.accessor);
      CHECK(p->accessor().action == action);
      CHECK(p->accessor().keys == r.keys);
      CHECK(p->accessor().time == r.time);
      CHECK(EncodeAccessor(p->accessor()) == p->envelope.payload);
    }
    AccessorRecord r = SampleAccessor();
    r.action = AccessorRecord::Action::kRevoke;
    r.keys = {Repeat('\x33', 32)};
    CHECK(EncodeAccessor(r) == "{\"holder\":\"bank-a\",\"accessor\":\"messenger\",\"action\":\"revoke\",\"keys\":[\"" +
                                   Base64UrlEncode(Repeat('\x33', 32)) + "\"],\"time\":\"2026-12-01T10:00:00Z\"}");
  }
  SECTION("policy") {
    PolicyRecord r = SamplePolicy();
    Bytes entry = SignEnvelope(kPolicyPayloadType, EncodePolicy(r), *signer);
    auto p = ParseEntry(entry);
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    CHECK(p->kind == EntryKind::kPolicy);
    const PolicyRecord& g = p->policy();
    CHECK(g.holder == r.holder);
    CHECK(g.accessor == r.accessor);
    CHECK(g.version == 3);
    REQUIRE(g.purposes.size() == 2);
    CHECK(g.purposes[0].purpose == "CUSTOMER_SUPPORT");
    CHECK(g.purposes[0].categories == r.purposes[0].categories);
    CHECK(g.purposes[0].retention_days == std::optional<uint32_t>(30));
    CHECK(g.purposes[1].purpose == "PAYMENT_INITIATION");
    CHECK(g.purposes[1].categories == std::set<std::string>{"PAYMENT_SUPPORT"});
    CHECK_FALSE(g.purposes[1].retention_days.has_value());
    CHECK(g.time == r.time);
    CHECK(EncodePolicy(g) == p->envelope.payload);
    CHECK(p->envelope.payload ==
          "{\"holder\":\"bank-a\",\"accessor\":\"messenger\",\"version\":3,\"purposes\":["
          "{\"purpose\":\"CUSTOMER_SUPPORT\",\"categories\":[\"ACCOUNT_BASIC\",\"BALANCES\",\"TRANSACTIONS\"],"
          "\"retention_days\":30},"
          "{\"purpose\":\"PAYMENT_INITIATION\",\"categories\":[\"PAYMENT_SUPPORT\"]}],"
          "\"time\":\"2026-12-01T10:00:00Z\"}");
  }
  SECTION("access, with and without optional fields") {
    AccessRecord r = SampleAccess();
    Bytes entry = SignEnvelope(kAccessPayloadType, EncodeAccess(r), *signer);
    auto p = ParseEntry(entry);
    INFO(p.status().ToString());
    REQUIRE(p.ok());
    CHECK(p->kind == EntryKind::kAccess);
    const AccessRecord& g = p->access();
    CHECK(g.request_id == r.request_id);
    CHECK(g.accessor == r.accessor);
    CHECK(g.holder == r.holder);
    CHECK(g.subject == r.subject);
    CHECK(g.purpose == r.purpose);
    CHECK(g.categories == r.categories);
    CHECK(g.consent == r.consent);
    CHECK(g.time == r.time);
    CHECK(g.actor == r.actor);
    CHECK(g.detail == r.detail);
    CHECK(EncodeAccess(g) == p->envelope.payload);
    CHECK(p->envelope.payload ==
          "{\"request_id\":\"req-0001\",\"accessor\":\"messenger\",\"holder\":\"bank-a\",\"subject\":\"" +
              Base64UrlEncode(r.subject) +
              "\",\"purpose\":\"CUSTOMER_SUPPORT\",\"categories\":[\"ACCOUNT_BASIC\",\"BALANCES\"],"
              "\"consent\":\"consent-2026-001\",\"time\":\"2026-12-01T10:00:00Z\",\"actor\":\"agent-17\","
              "\"detail\":\"customer asked for their balance\"}");

    r.actor.reset();
    r.detail.reset();
    auto q = ParseEntry(SignEnvelope(kAccessPayloadType, EncodeAccess(r), *signer));
    REQUIRE(q.ok());
    CHECK_FALSE(q->access().actor.has_value());
    CHECK_FALSE(q->access().detail.has_value());
    CHECK(q->envelope.payload.find("actor") == std::string::npos);
  }
}

TEST_CASE("The signature binds the payload type", "[record][envelope]") {
  auto signer = SignerFromByte(3);
  Bytes payload = EncodeAccess(SampleAccess());
  auto env = ParseEnvelope(SignEnvelope(kAccessPayloadType, payload, *signer));
  REQUIRE(env.ok());
  REQUIRE(VerifyEnvelope(*env).ok());
  for (const char* other : {kHolderPayloadType, kAccessorPayloadType, kPolicyPayloadType}) {
    Envelope relabelled = *env;
    relabelled.payload_type = other;
    INFO(other);
    // PAE covers the type: same payload and signature, other type, no match.
    CHECK(VerifyEnvelope(relabelled).code() == Status::Code::kPermissionDenied);
    // And through ParseEntry the access payload is not a valid payload of
    // the other kind.
    CHECK(ParseEntry(EncodeEnvelope(relabelled)).status().code() == Status::Code::kInvalidArgument);
  }
}

TEST_CASE("ParseEnvelope accepts only the canonical form", "[record][envelope]") {
  auto signer = SignerFromByte(5);
  // A payload whose base64 ends in padding, so padding rules are exercised.
  AccessRecord rec = SampleAccess();
  Bytes payload;
  for (int n = 1;; n++) {
    rec.detail = std::string(n, 'd');
    payload = EncodeAccess(rec);
    if (payload.size() % 3 != 0) break;
  }
  const Parts good = PartsOf(payload, kAccessPayloadType, *signer);
  REQUIRE(good.payload_b64.back() == '=');
  const std::string canonical = good.Render();
  REQUIRE(ParseEnvelope(canonical).ok());
  REQUIRE(ParseEntry(canonical).ok());
  const std::string sigs = "[{\"keyid\":\"" + good.keyid + "\",\"sig\":\"" + good.sig_b64 + "\"}]";
  const std::string p = "\"payload\":\"" + good.payload_b64 + "\"";
  const std::string t = "\"payloadType\":\"" + good.type + "\"";
  const std::string s = "\"signatures\":" + sigs;

  auto replace_all = [](std::string v, const std::string& from, const std::string& to) {
    for (size_t pos = 0; (pos = v.find(from, pos)) != std::string::npos; pos += to.size()) v.replace(pos, from.size(), to);
    return v;
  };
  auto with = [&](std::function<void(Parts&)> f) {
    Parts x = good;
    f(x);
    return x.Render();
  };

  std::vector<std::pair<std::string, std::string>> bad = {
      {"leading space", " " + canonical},
      {"trailing newline", canonical + "\n"},
      {"space after colon", replace_all(canonical, "\":\"", "\": \"")},
      {"space after comma", replace_all(canonical, "\",\"", "\", \"")},
      {"pretty printed", ojson::parse(canonical).dump(2)},
      {"reordered keys", "{" + t + "," + p + "," + s + "}"},
      {"signatures first", "{" + s + "," + p + "," + t + "}"},
      {"reordered signature keys",
       "{" + p + "," + t + ",\"signatures\":[{\"sig\":\"" + good.sig_b64 + "\",\"keyid\":\"" + good.keyid + "\"}]}"},
      {"extra top-level field", "{" + p + "," + t + "," + s + ",\"extra\":1}"},
      {"extra signature field",
       "{" + p + "," + t + ",\"signatures\":[{\"keyid\":\"" + good.keyid + "\",\"sig\":\"" + good.sig_b64 +
           "\",\"x\":\"y\"}]}"},
      {"missing payloadType", "{" + p + "," + s + "}"},
      {"missing payload", "{" + t + "," + s + "}"},
      {"missing signatures", "{" + p + "," + t + "}"},
      {"two signatures", "{" + p + "," + t + ",\"signatures\":[" + sigs.substr(1, sigs.size() - 2) + "," +
                             sigs.substr(1, sigs.size() - 2) + "]}"},
      {"zero signatures", "{" + p + "," + t + ",\"signatures\":[]}"},
      {"signatures not an array", "{" + p + "," + t + ",\"signatures\":" + sigs.substr(1, sigs.size() - 2) + "}"},
      {"signature not an object", "{" + p + "," + t + ",\"signatures\":[\"" + good.sig_b64 + "\"]}"},
      {"signature without keyid", "{" + p + "," + t + ",\"signatures\":[{\"sig\":\"" + good.sig_b64 + "\"}]}"},
      {"payload without padding", with([](Parts& x) { x.payload_b64.erase(x.payload_b64.find('=')); })},
      {"payload in base64url",
       with([](Parts& x) { x.payload_b64 = Base64UrlEncode(*Base64Decode(x.payload_b64)); })},
      {"payload with whitespace", with([](Parts& x) { x.payload_b64.insert(8, "\\n"); })},
      {"payload empty", with([](Parts& x) { x.payload_b64 = ""; })},
      {"payload escaped slash", with([](Parts& x) { x.payload_b64.insert(4, "\\/"); })},
      // A JSON escape that decodes to the very same string: only the
      // canonical byte check can catch these.
      {"payload char as \\u escape", with([](Parts& x) {
         char buf[8];
         snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(x.payload_b64[0]));
         x.payload_b64.replace(0, 1, buf);
       })},
      {"keyid char as \\u escape", with([](Parts& x) {
         char buf[8];
         snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(x.keyid[0]));
         x.keyid.replace(0, 1, buf);
       })},
      {"type char as \\u escape", with([](Parts& x) { x.type.replace(0, 1, "\\u0061"); })},
      {"keyid 31 bytes", with([](Parts& x) { x.keyid = Base64UrlEncode(Repeat('k', 31)); })},
      {"keyid 33 bytes", with([](Parts& x) { x.keyid = Base64UrlEncode(Repeat('k', 33)); })},
      {"keyid padded", with([](Parts& x) { x.keyid += "="; })},
      {"keyid standard base64", with([](Parts& x) { x.keyid = Base64Encode(*Base64UrlDecode(x.keyid)); })},
      {"keyid empty", with([](Parts& x) { x.keyid = ""; })},
      {"sig 63 bytes", with([](Parts& x) { x.sig_b64 = Base64Encode(Repeat('s', 63)); })},
      {"sig 65 bytes", with([](Parts& x) { x.sig_b64 = Base64Encode(Repeat('s', 65)); })},
      {"sig without padding", with([](Parts& x) { x.sig_b64.erase(x.sig_b64.find('=')); })},
      {"sig in base64url", with([](Parts& x) { x.sig_b64 = Base64UrlEncode(*Base64Decode(x.sig_b64)); })},
      {"sig hex", with([](Parts& x) { x.sig_b64 = HexEncode(*Base64Decode(x.sig_b64)); })},
      {"unknown payloadType v2", with([](Parts& x) { x.type = "application/vnd.access-ledger.access.v2+json"; })},
      {"payloadType application/json", with([](Parts& x) { x.type = "application/json"; })},
      {"payloadType empty", with([](Parts& x) { x.type = ""; })},
      {"payloadType upper case", with([](Parts& x) { x.type = "APPLICATION/VND.ACCESS-LEDGER.ACCESS.V1+JSON"; })},
      {"payloadType escaped", with([](Parts& x) { x.type = "application\\/vnd.access-ledger.access.v1+json"; })},
      {"duplicate payload key", "{" + p + "," + p + "," + t + "," + s + "}"},
      {"duplicate key, other value", "{\"payload\":\"e30=\"," + p + "," + t + "," + s + "}"},
      {"duplicate keyid", "{" + p + "," + t + ",\"signatures\":[{\"keyid\":\"" + good.keyid + "\",\"keyid\":\"" +
                              good.keyid + "\",\"sig\":\"" + good.sig_b64 + "\"}]}"},
      {"invalid UTF-8 in type", with([](Parts& x) { x.type += "\xff"; })},
      {"invalid UTF-8 overlong", with([](Parts& x) { x.type += "\xc0\xaf"; })},
      {"invalid UTF-8 surrogate", with([](Parts& x) { x.type += "\xed\xa0\x80"; })},
      {"lone surrogate escape", with([](Parts& x) { x.type += "\\ud800"; })},
      {"truncated", canonical.substr(0, canonical.size() - 1)},
      {"trailing garbage", canonical + "x"},
      {"two objects", canonical + canonical},
      {"comment", "/**/" + canonical},
      {"UTF-8 BOM", "\xef\xbb\xbf" + canonical},
      {"empty", ""},
      {"not JSON", "hello"},
      {"JSON array", "[" + canonical + "]"},
      {"JSON null", "null"},
      {"JSON string", "\"" + good.payload_b64 + "\""},
      {"binary", Bytes("\x00\x01\x02\x03", 4)},
      {"NUL after", canonical + Bytes(1, '\0')},
  };
  {
    // Deep nesting in an extra field: rejected without exhausting the stack.
    std::string deep = std::string(20000, '[') + std::string(20000, ']');
    bad.push_back({"deeply nested", "{" + p + "," + t + "," + s + ",\"x\":" + deep + "}"});
    std::string deep_obj;
    for (int i = 0; i < 5000; i++) deep_obj += "{\"a\":";
    deep_obj += "1" + std::string(5000, '}');
    bad.push_back({"deeply nested objects", deep_obj});
  }
  for (const auto& [name, text] : bad) {
    auto r = ParseEnvelope(text);
    INFO("case: " << name << "\n" << text.substr(0, 400) << "\nstatus: " << r.status().ToString());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    auto e = ParseEntry(text);
    CHECK(e.status().code() == Status::Code::kInvalidArgument);
  }
}

TEST_CASE("Envelope size limit is 65535 bytes", "[record][envelope]") {
  auto signer = SignerFromByte(6);
  // Find a payload length that makes the envelope exactly 65535 bytes:
  // ParseEnvelope does not look inside the payload.
  std::string exact;
  for (const char* type : {kAccessPayloadType, kHolderPayloadType, kPolicyPayloadType, kAccessorPayloadType}) {
    Parts x = PartsOf("x", type, *signer);
    size_t overhead = x.Render().size() - x.payload_b64.size();
    if ((65535 - overhead) % 4 != 0) continue;
    size_t n = (65535 - overhead) / 4 * 3;
    x.payload_b64 = Base64Encode(Bytes(n, 'p'));
    exact = x.Render();
    break;
  }
  REQUIRE(exact.size() == 65535);
  auto ok = ParseEnvelope(exact);
  INFO(ok.status().ToString());
  CHECK(ok.ok());
  // Three more payload bytes: four more base64 characters.
  std::string over = exact;
  over.insert(12, "cGFk");
  REQUIRE(over.size() == 65539);
  auto r = ParseEnvelope(over);
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
  CHECK(r.status().message().find("65535") != std::string::npos);
  CHECK(ParseEntry(over).status().code() == Status::Code::kInvalidArgument);
  // Non-JSON beyond the limit is refused too (size first).
  CHECK(ParseEnvelope(std::string(70000, '{')).status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("A flipped payload, signature or key byte is PermissionDenied", "[record][envelope]") {
  auto signer = SignerFromByte(8);
  auto other = SignerFromByte(10);
  std::vector<std::pair<const char*, Bytes>> payloads = {
      {kHolderPayloadType, EncodeHolder(SampleHolder())},
      {kAccessorPayloadType, EncodeAccessor(SampleAccessor())},
      {kPolicyPayloadType, EncodePolicy(SamplePolicy())},
      {kAccessPayloadType, EncodeAccess(SampleAccess())},
  };
  for (const auto& [type, payload] : payloads) {
    INFO(type);
    Bytes entry = SignEnvelope(type, payload, *signer);
    REQUIRE(ParseEntry(entry).ok());
    auto env = ParseEnvelope(entry);
    REQUIRE(env.ok());

    // Payload: a one-byte change that keeps the payload valid (the year of
    // the time field), re-encoded canonically.
    Envelope changed = *env;
    size_t pos = changed.payload.find("2026-");
    REQUIRE(pos != std::string::npos);
    changed.payload[pos + 3] = '7';
    REQUIRE(EncodeEnvelope(changed) != entry);
    REQUIRE(ParseEnvelope(EncodeEnvelope(changed)).ok());
    auto r = ParseEntry(EncodeEnvelope(changed));
    INFO(r.status().ToString());
    CHECK(r.status().code() == Status::Code::kPermissionDenied);
    CHECK(VerifyEnvelope(changed).code() == Status::Code::kPermissionDenied);

    // Signature: every bit of a few bytes.
    for (size_t byte : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
      for (int bit = 0; bit < 8; bit++) {
        Envelope e = *env;
        e.signature[byte] = static_cast<char>(e.signature[byte] ^ (1 << bit));
        auto s = ParseEntry(EncodeEnvelope(e));
        INFO("sig byte " << byte << " bit " << bit << ": " << s.status().ToString());
        CHECK(s.status().code() == Status::Code::kPermissionDenied);
      }
    }
    // Key: another valid key, and a flipped key byte.
    Envelope k = *env;
    k.public_key = Bytes(other->public_key());
    CHECK(ParseEntry(EncodeEnvelope(k)).status().code() == Status::Code::kPermissionDenied);
    k.public_key = Bytes(signer->public_key());
    k.public_key[5] = static_cast<char>(k.public_key[5] ^ 0x40);
    auto kr = ParseEntry(EncodeEnvelope(k));
    // A flipped key may not even be a curve point; either way not accepted
    // as a good signature.
    CHECK(kr.status().code() == Status::Code::kPermissionDenied);
    // Signed by another key but claiming ours.
    Envelope forged = *env;
    forged.signature = other->Sign(Pae(type, payload));
    CHECK(ParseEntry(EncodeEnvelope(forged)).status().code() == Status::Code::kPermissionDenied);
  }
}

TEST_CASE("VerifyEnvelope refuses bad lengths", "[record][envelope]") {
  auto signer = SignerFromByte(2);
  auto env = ParseEnvelope(SignEnvelope(kAccessPayloadType, EncodeAccess(SampleAccess()), *signer));
  REQUIRE(env.ok());
  Envelope e = *env;
  e.public_key.pop_back();
  CHECK_FALSE(VerifyEnvelope(e).ok());
  e = *env;
  e.signature += "x";
  CHECK_FALSE(VerifyEnvelope(e).ok());
}

// --- payload schemas -----------------------------------------------------

TEST_CASE("Holder payload schema", "[record][payload]") {
  auto parse = [](const Bytes& b) { return ParseHolder(b); };
  std::vector<BadCase> bad = MissingEach({"holder", "signing_key", "vrf_key", "time"});
  bad = Concat(bad, BadNames("holder"));
  bad = Concat(bad, BadKey("signing_key"));
  bad = Concat(bad, BadKey("vrf_key"));
  bad = Concat(bad, BadTimes("time"));
  bad = Concat(bad, {
                        {"unknown field", Set("extra", 1), "unknown field \"extra\""},
                        {"unknown field null", Set("comment", nullptr), "comment"},
                        {"field name case", [](ojson& j) { j["Holder"] = j["holder"]; j.erase("holder"); }, ""},
                    });
  std::vector<GoodCase> good = GoodNames("holder");
  good.push_back({"field order does not matter", [](ojson& j) {
                    ojson k;
                    for (auto it = j.rbegin(); it != j.rend(); ++it) k[it.key()] = it.value();
                    j = k;
                  }});
  RunTables(EncodeHolder(SampleHolder()), parse, bad, good);
}

TEST_CASE("Accessor payload schema", "[record][payload]") {
  auto parse = [](const Bytes& b) { return ParseAccessor(b); };
  std::vector<BadCase> bad = MissingEach({"holder", "accessor", "action", "keys", "time"});
  bad = Concat(bad, BadNames("holder"));
  bad = Concat(bad, BadNames("accessor"));
  bad = Concat(bad, BadTimes("time"));
  std::vector<std::string> seventeen;
  for (int i = 0; i < 17; i++) seventeen.push_back(Base64UrlEncode(Repeat(static_cast<char>('A' + i), 32)));
  bad = Concat(bad, {
      {"unknown field", Set("extra", "x"), "unknown field \"extra\""},
      {"action Authorize", Set("action", "Authorize"), "action"},
      {"action delete", Set("action", "delete"), "action"},
      {"action empty", Set("action", ""), "action"},
      {"action number", Set("action", 1), "action"},
      {"keys empty", Set("keys", ojson::array()), "keys"},
      {"keys 17", Set("keys", seventeen), "keys"},
      {"keys not array", Set("keys", Base64UrlEncode(Repeat('k', 32))), "keys"},
      {"keys object", Set("keys", ojson::object()), "keys"},
      {"keys duplicate", Set("keys", {Base64UrlEncode(Repeat('k', 32)), Base64UrlEncode(Repeat('k', 32))}), "twice"},
      {"key 31 bytes", Set("keys", {Base64UrlEncode(Repeat('k', 31))}), "keys"},
      {"key 33 bytes", Set("keys", {Base64UrlEncode(Repeat('k', 33))}), "keys"},
      {"key padded", Set("keys", {Base64UrlEncode(Repeat('k', 32)) + "="}), "keys"},
      {"key number", Set("keys", {7}), "keys"},
      {"key null", Set("keys", {nullptr}), "keys"},
  });
  std::vector<GoodCase> good = Concat_Good(GoodNames("holder"), GoodNames("accessor"));
  seventeen.pop_back();
  good.push_back({"16 keys", Set("keys", seventeen)});
  good.push_back({"1 key", Set("keys", {Base64UrlEncode(Repeat('k', 32))})});
  good.push_back({"revoke", Set("action", "revoke")});
  RunTables(EncodeAccessor(SampleAccessor()), parse, bad, good);
}

TEST_CASE("Policy payload schema", "[record][payload]") {
  auto parse = [](const Bytes& b) { return ParsePolicy(b); };
  auto purpose = [](const std::string& code, ojson cats) {
    ojson p;
    p["purpose"] = code;
    p["categories"] = cats;
    return p;
  };
  auto set_first = [](const std::string& k, ojson v) {
    return [k, v](ojson& j) { j["purposes"][0][k] = v; };
  };
  std::vector<BadCase> bad = MissingEach({"holder", "accessor", "version", "purposes", "time"});
  bad = Concat(bad, BadNames("holder"));
  bad = Concat(bad, BadNames("accessor"));
  bad = Concat(bad, BadTimes("time"));
  bad = Concat(bad, {
      {"unknown field", Set("extra", ojson::array()), "unknown field \"extra\""},
      {"version 0", Set("version", 0), "version"},
      {"version negative", Set("version", -1), "version"},
      {"version fraction", Set("version", 1.5), "version"},
      {"version 1.0", Set("version", 1.0), "version"},
      {"version string", Set("version", "1"), "version"},
      {"version null", Set("version", nullptr), "version"},
      {"version 2^53+1", Set("version", (uint64_t{1} << 53) + 1), "version"},
      {"version 2^64-1", Set("version", UINT64_MAX), "version"},
      {"purposes empty", Set("purposes", ojson::array()), "purposes"},
      {"purposes not array", Set("purposes", purpose("CUSTOMER_SUPPORT", {"BALANCES"})), "purposes"},
      {"purposes 33", [&](ojson& j) {
         ojson a = ojson::array();
         for (int i = 0; i < 33; i++) a.push_back(purpose("CUSTOMER_SUPPORT", {"BALANCES"}));
         j["purposes"] = a;
       }, "purposes"},
      {"purpose element not object", Set("purposes", {"CUSTOMER_SUPPORT"}), "object"},
      {"TARGETED_ADVERTISING disclosed", [&](ojson& j) { j["purposes"].push_back(purpose("TARGETED_ADVERTISING", {"TRANSACTIONS"})); },
       "never reasonably necessary"},
      {"CROSS_SELLING disclosed", [&](ojson& j) { j["purposes"].push_back(purpose("CROSS_SELLING", {"BALANCES"})); },
       "never reasonably necessary"},
      {"SALE_OF_DATA disclosed", [&](ojson& j) { j["purposes"].push_back(purpose("SALE_OF_DATA", {"ACCOUNT_BASIC"})); },
       "never reasonably necessary"},
      {"prohibited purpose alone", Set("purposes", ojson::array({purpose("SALE_OF_DATA", {"ACCOUNT_BASIC"})})), "SALE_OF_DATA"},
      {"unknown purpose", Set("purposes", ojson::array({purpose("MARKETING", {"BALANCES"})})), "unknown purpose"},
      {"lowercase purpose", Set("purposes", ojson::array({purpose("customer_support", {"BALANCES"})})), "unknown purpose"},
      {"empty purpose", Set("purposes", ojson::array({purpose("", {"BALANCES"})})), "unknown purpose"},
      {"purpose number", set_first("purpose", 1), "purpose"},
      {"duplicate purposes", [&](ojson& j) { j["purposes"].push_back(purpose("CUSTOMER_SUPPORT", {"STATEMENTS"})); },
       "twice"},
      {"categories empty", set_first("categories", ojson::array()), "categories"},
      {"categories string", set_first("categories", "BALANCES"), "categories"},
      {"categories duplicate", set_first("categories", {"BALANCES", "BALANCES"}), "twice"},
      {"category unknown", set_first("categories", {"BALANCES", "BIOMETRICS"}), "BIOMETRICS"},
      {"category lowercase", set_first("categories", {"balances"}), "balances"},
      {"category number", set_first("categories", {1}), "categories"},
      {"categories missing", [](ojson& j) { j["purposes"][0].erase("categories"); }, "categories"},
      {"purpose missing", [](ojson& j) { j["purposes"][0].erase("purpose"); }, "purpose"},
      {"purpose extra field", set_first("note", "x"), "unknown field \"note\""},
      {"retention_days -1", set_first("retention_days", -1), "retention_days"},
      {"retention_days 36501", set_first("retention_days", 36501), "retention_days"},
      {"retention_days 2^32", set_first("retention_days", uint64_t{1} << 32), "retention_days"},
      {"retention_days fraction", set_first("retention_days", 1.5), "retention_days"},
      {"retention_days string", set_first("retention_days", "30"), "retention_days"},
      {"retention_days null", set_first("retention_days", nullptr), "retention_days"},
  });
  std::vector<GoodCase> good = Concat_Good(GoodNames("holder"), GoodNames("accessor"));
  good.push_back({"version 1", Set("version", 1)});
  good.push_back({"version 2^53", Set("version", uint64_t{1} << 53)});
  good.push_back({"retention_days 0", set_first("retention_days", 0)});
  good.push_back({"retention_days 36500", set_first("retention_days", 36500)});
  good.push_back({"no retention_days", [](ojson& j) { j["purposes"][0].erase("retention_days"); }});
  good.push_back({"every allowed purpose", [&](ojson& j) {
                    ojson a = ojson::array();
                    for (const auto& p : Purposes())
                      if (!p.prohibited) a.push_back(purpose(p.code, {"ACCOUNT_BASIC"}));
                    j["purposes"] = a;
                  }});
  good.push_back({"every category", [&](ojson& j) {
                    ojson c = ojson::array();
                    for (const auto& cat : Categories()) c.push_back(cat.code);
                    j["purposes"] = ojson::array({purpose("LEGAL_COMPLIANCE", c)});
                  }});
  RunTables(EncodePolicy(SamplePolicy()), parse, bad, good);

  // Categories are a set: order in the payload does not matter.
  ojson j = ojson::parse(EncodePolicy(SamplePolicy()));
  j["purposes"][0]["categories"] = {"TRANSACTIONS", "ACCOUNT_BASIC"};
  auto r = ParsePolicy(j.dump());
  REQUIRE(r.ok());
  CHECK(r->purposes[0].categories == std::set<std::string>{"ACCOUNT_BASIC", "TRANSACTIONS"});
  CHECK(r->purposes[0].retention_days == std::optional<uint32_t>(30));
}

TEST_CASE("Access payload schema", "[record][payload]") {
  auto parse = [](const Bytes& b) { return ParseAccess(b); };
  std::vector<BadCase> bad =
      MissingEach({"request_id", "accessor", "holder", "subject", "purpose", "categories", "consent", "time"});
  bad = Concat(bad, BadNames("holder"));
  bad = Concat(bad, BadNames("accessor"));
  bad = Concat(bad, BadTimes("time"));
  std::string e_acute = "\xc3\xa9";
  std::string detail_1025_bytes;
  for (int i = 0; i < 512; i++) detail_1025_bytes += e_acute;
  detail_1025_bytes += "a";
  bad = Concat(bad, {
      {"unknown field", Set("extra", "x"), "unknown field \"extra\""},
      {"unknown field like optional", Set("actors", "x"), "unknown field \"actors\""},
      {"request_id 129", Set("request_id", std::string(129, 'r')), "request_id"},
      {"request_id empty", Set("request_id", ""), "request_id"},
      {"request_id space", Set("request_id", "req 1"), "request_id"},
      {"request_id tab", Set("request_id", "req\t1"), "request_id"},
      {"request_id newline", Set("request_id", "req\n1"), "request_id"},
      {"request_id NUL", Set("request_id", std::string("req\0", 4)), "request_id"},
      {"request_id DEL", Set("request_id", "req\x7f"), "request_id"},
      {"request_id non-ASCII", Set("request_id", "r" + e_acute), "request_id"},
      {"request_id number", Set("request_id", 1), "request_id"},
      {"subject 31 bytes", Set("subject", Base64UrlEncode(Repeat('s', 31))), "subject"},
      {"subject 33 bytes", Set("subject", Base64UrlEncode(Repeat('s', 33))), "subject"},
      {"subject 16 bytes", Set("subject", Base64UrlEncode(Repeat('s', 16))), "subject"},
      {"subject padded", Set("subject", Base64UrlEncode(Repeat('s', 32)) + "="), "subject"},
      {"subject std base64", Set("subject", Base64Encode(Repeat('\xfb', 32))), "subject"},
      {"subject hex", Set("subject", HexEncode(Repeat('s', 32))), "subject"},
      {"subject empty", Set("subject", ""), "subject"},
      {"subject number", Set("subject", 0), "subject"},
      {"purpose unknown", Set("purpose", "MARKETING"), "unknown purpose"},
      {"purpose lowercase", Set("purpose", "customer_support"), "unknown purpose"},
      {"purpose empty", Set("purpose", ""), "unknown purpose"},
      {"purpose array", Set("purpose", {"CUSTOMER_SUPPORT"}), "purpose"},
      {"categories empty", Set("categories", ojson::array()), "categories"},
      {"categories duplicate", Set("categories", {"BALANCES", "ACCOUNT_BASIC", "BALANCES"}), "twice"},
      {"category unknown", Set("categories", {"BALANCES", "GENOME"}), "GENOME"},
      {"categories string", Set("categories", "BALANCES"), "categories"},
      {"category null", Set("categories", {nullptr}), "categories"},
      {"consent empty", Set("consent", ""), "consent"},
      {"consent 257", Set("consent", std::string(257, 'c')), "consent"},
      {"consent newline", Set("consent", "a\nb"), "consent"},
      {"consent number", Set("consent", 5), "consent"},
      {"actor empty", Set("actor", ""), "actor"},
      {"actor 129", Set("actor", std::string(129, 'a')), "actor"},
      {"actor control", Set("actor", "a\x01"), "actor"},
      {"actor null", Set("actor", nullptr), "actor"},
      {"detail 1025", Set("detail", std::string(1025, 'd')), "detail"},
      {"detail 1025 bytes of UTF-8", Set("detail", detail_1025_bytes), "detail"},
      {"detail empty", Set("detail", ""), "detail"},
      {"detail control", Set("detail", "line\rbreak"), "detail"},
      {"detail number", Set("detail", 5), "detail"},
      {"detail object", Set("detail", ojson::object()), "detail"},
  });
  std::vector<GoodCase> good = Concat_Good(GoodNames("holder"), GoodNames("accessor"));
  good.push_back({"request_id 128", Set("request_id", std::string(128, 'r'))});
  good.push_back({"request_id printable punctuation", Set("request_id", "a/b:c#d?e=f&g~!\"\\")});
  good.push_back({"consent 256", Set("consent", std::string(256, 'c'))});
  good.push_back({"consent with space and UTF-8", Set("consent", "accord n\xc2\xb0 " + e_acute)});
  good.push_back({"actor 128", Set("actor", std::string(128, 'a'))});
  good.push_back({"detail 1024", Set("detail", std::string(1024, 'd'))});
  good.push_back({"detail 1024 bytes of UTF-8", Set("detail", detail_1025_bytes.substr(0, 1024))});
  good.push_back({"no actor", Erase("actor")});
  good.push_back({"no detail", Erase("detail")});
  good.push_back({"every category", [](ojson& j) {
                    ojson c = ojson::array();
                    for (const auto& cat : Categories()) c.push_back(cat.code);
                    j["categories"] = c;
                  }});
  // Prohibited purposes can be named (and are then refused by the rules).
  for (const char* p : {"TARGETED_ADVERTISING", "CROSS_SELLING", "SALE_OF_DATA"})
    good.push_back({std::string("purpose ") + p, Set("purpose", p)});
  RunTables(EncodeAccess(SampleAccess()), parse, bad, good);
}

TEST_CASE("Payload JSON is parsed strictly", "[record][payload]") {
  const Bytes access = EncodeAccess(SampleAccess());
  const Bytes policy = EncodePolicy(SamplePolicy());
  // Text-level cases that a JSON value cannot express.
  std::vector<std::pair<std::string, Bytes>> bad_access = {
      {"duplicate key", "{\"purpose\":\"SALE_OF_DATA\"," + access.substr(1)},
      {"duplicate key, same value", "{\"holder\":\"bank-a\"," + access.substr(1)},
      {"duplicate key via escape", "{\"\\u0070urpose\":\"SALE_OF_DATA\"," + access.substr(1)},
      {"invalid UTF-8", [&] { Bytes b = access; b.insert(b.find("consent-") + 8, "\xc3\x28"); return b; }()},
      {"overlong UTF-8", [&] { Bytes b = access; b.insert(b.find("consent-") + 8, "\xc0\xaf"); return b; }()},
      {"UTF-8 surrogate", [&] { Bytes b = access; b.insert(b.find("consent-") + 8, "\xed\xa0\x80"); return b; }()},
      {"lone surrogate escape", [&] { Bytes b = access; b.insert(b.find("consent-") + 8, "\\udc00"); return b; }()},
      {"raw control character", [&] { Bytes b = access; b.insert(b.find("consent-") + 8, "\x01"); return b; }()},
      {"trailing comma", access.substr(0, access.size() - 1) + ",}"},
      {"trailing garbage", access + "x"},
      {"two objects", access + access},
      {"comment", "/*c*/" + access},
      // nlohmann::json skips a leading UTF-8 BOM; RFC 8259 parsers such as
      // JSON.parse and Go's encoding/json refuse it.
      {"UTF-8 BOM", "\xef\xbb\xbf" + access},
      {"single quotes", [&] { Bytes b = access; b[1] = '\''; return b; }()},
      {"truncated", access.substr(0, access.size() / 2)},
      {"empty", ""},
      {"not JSON", "request_id=1"},
      {"array", "[" + access + "]"},
      {"string", "\"x\""},
      {"number", "1"},
      {"null", "null"},
      {"NaN", "NaN"},
      {"deeply nested array", std::string(100000, '[') + std::string(100000, ']')},
      {"deeply nested in a field", access.substr(0, access.size() - 1) + ",\"x\":" + std::string(50, '[') +
                                       std::string(50, ']') + "}"},
  };
  for (const auto& [name, text] : bad_access) {
    auto r = ParseAccess(text);
    INFO("case: " << name << "\n" << text.substr(0, 300) << "\nstatus: " << r.status().ToString());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
  }
  CHECK(ParseAccess("{\"purpose\":\"SALE_OF_DATA\"," + access.substr(1)).status().message().find("duplicate") !=
        std::string::npos);
  // Nesting is limited to 8 levels, before any schema check.
  auto nested = [&](int levels) {
    return access.substr(0, access.size() - 1) + ",\"x\":" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  auto at8 = ParseAccess(nested(7));  // the object is level 1
  CHECK(at8.status().message().find("unknown field \"x\"") != std::string::npos);
  auto at9 = ParseAccess(nested(8));
  CHECK(at9.status().message().find("nested too deeply") != std::string::npos);
  CHECK(ParseAccess(std::string(100000, '[') + std::string(100000, ']')).status().message().find("nested too deeply") !=
        std::string::npos);
  // Duplicate keys nested inside a policy purpose.
  Bytes dup = policy;
  dup.insert(dup.find("\"purpose\":\"CUSTOMER_SUPPORT\""), "\"purpose\":\"LEGAL_COMPLIANCE\",");
  CHECK(ParsePolicy(dup).status().code() == Status::Code::kInvalidArgument);
  // Whitespace and key order do not matter inside payloads (they are
  // signed as bytes, never re-serialised).
  ojson j = ojson::parse(access);
  auto pretty = ParseAccess(j.dump(4));
  INFO(pretty.status().ToString());
  CHECK(pretty.ok());
  // Escaped ASCII is the same text.
  Bytes escaped = access;
  escaped.replace(escaped.find("\"bank-a\""), 8, "\"\\u0062ank-a\"");
  auto e = ParseAccess(escaped);
  REQUIRE(e.ok());
  CHECK(e->holder == "bank-a");
}

TEST_CASE("Payload kinds do not cross-parse", "[record][payload]") {
  CHECK(ParseHolder(EncodeAccess(SampleAccess())).status().code() == Status::Code::kInvalidArgument);
  CHECK(ParseAccess(EncodeHolder(SampleHolder())).status().code() == Status::Code::kInvalidArgument);
  CHECK(ParsePolicy(EncodeAccessor(SampleAccessor())).status().code() == Status::Code::kInvalidArgument);
  CHECK(ParseAccessor(EncodePolicy(SamplePolicy())).status().code() == Status::Code::kInvalidArgument);
}

// --- times -------------------------------------------------------------

namespace {
int64_t Timegm(int y, int mo, int d, int h, int mi, int s) {
  struct tm t = {};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  return static_cast<int64_t>(timegm(&t));
}
}  // namespace

TEST_CASE("ParseTime accepts RFC 3339 UTC with Z", "[record][time]") {
  struct Good {
    const char* text;
    int64_t want;
  };
  std::vector<Good> good = {
      {"1970-01-01T00:00:00Z", 0},
      {"2026-12-01T10:00:00Z", Timegm(2026, 12, 1, 10, 0, 0)},
      {"2026-12-01T10:00:00.5Z", Timegm(2026, 12, 1, 10, 0, 0)},
      {"2026-12-01T10:00:00.123456789Z", Timegm(2026, 12, 1, 10, 0, 0)},
      {"2026-12-01T10:00:00.0Z", Timegm(2026, 12, 1, 10, 0, 0)},
      {"2038-01-19T03:14:07Z", 2147483647},
      {"2024-02-29T12:00:00Z", 1709208000},
      {"2000-02-29T00:00:00Z", 951782400},
      {"2000-03-01T00:00:00Z", 951868800},
      {"1999-12-31T23:59:59Z", 946684799},
      {"2026-12-31T23:59:59Z", Timegm(2026, 12, 31, 23, 59, 59)},
      {"2100-02-28T00:00:00Z", Timegm(2100, 2, 28, 0, 0, 0)},
      {"2100-03-01T00:00:00Z", Timegm(2100, 3, 1, 0, 0, 0)},
      {"9999-12-31T23:59:59Z", 253402300799},
  };
  for (const auto& g : good) {
    auto r = ParseTime(g.text);
    INFO(g.text << ": " << r.status().ToString());
    REQUIRE(r.ok());
    CHECK(*r == g.want);
  }
  // Every day of a leap and a non-leap year, against timegm(3).
  for (int y : {2023, 2024}) {
    static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++)
      for (int d = 1; d <= kDays[m - 1]; d++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT13:37:42Z", y, m, d);
        auto r = ParseTime(buf);
        bool valid = !(m == 2 && d == 29 && y == 2023);
        INFO(buf);
        CHECK(r.ok() == valid);
        if (r.ok()) CHECK(*r == Timegm(y, m, d, 13, 37, 42));
      }
  }
}

TEST_CASE("ParseTime refuses everything else", "[record][time]") {
  for (const char* t : {
           "2026-12-01T10:00:00z",           // lowercase z
           "2026-12-01t10:00:00Z",           // lowercase t
           "2026-12-01 10:00:00Z",           // space separator
           "2026-12-01T10:00:00+01:00",      // offsets
           "2026-12-01T10:00:00-05:00",
           "2026-12-01T10:00:00+00:00",
           "2026-12-01T10:00:00.5+01:00",
           "2026-12-01T10:00:00",            // no zone
           "2026-12-01T10:00Z",              // no seconds
           "2026-12-01Z",
           "2026-12-01",
           "20261201T100000Z",               // basic format
           "2026-12-01T10:00:00.Z",          // empty fraction
           "2026-12-01T10:00:00,5Z",         // comma fraction
           "2026-12-01T10:00:00.1234567890Z",  // 10 fraction digits
           "2026-12-01T10:00:00.5.5Z",
           "2026-12-01T10:00:00ZZ",
           "2026-12-01T10:00:00Z ",
           " 2026-12-01T10:00:00Z",
           "2026-12-01T24:00:00Z",           // 24:00
           "2026-12-01T23:60:00Z",
           "2026-12-31T23:59:60Z",           // leap second
           "2026-13-01T10:00:00Z",
           "2026-00-01T10:00:00Z",
           "2026-12-00T10:00:00Z",
           "2026-12-32T10:00:00Z",
           "2026-04-31T10:00:00Z",
           "2026-02-30T10:00:00Z",
           "2023-02-29T10:00:00Z",           // not a leap year
           "2100-02-29T10:00:00Z",           // century, not a leap year
           "1900-02-29T10:00:00Z",
           "1969-12-31T23:59:59Z",           // before the epoch
           "0000-01-01T00:00:00Z",
           "+2026-12-01T10:00:00Z",
           "2026-1-01T10:00:00Z",
           "2026-12-1T10:00:00Z",
           "2026-12-01T1:00:00Z",
           "2026/12/01T10:00:00Z",
           "2026-12-01T10-00-00Z",
           "2O26-12-01T10:00:00Z",           // letter O
           "2026-12-01T10:00:0aZ",
           "２０２６-12-01T10:00:00Z",        // full-width digits
           "",
           "Z",
           "2026-12-01T10:00:00.123456789012Z",
       }) {
    auto r = ParseTime(t);
    INFO("'" << t << "' -> " << (r.ok() ? std::to_string(*r) : r.status().ToString()));
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
  }
}

TEST_CASE("FormatTime is the inverse of ParseTime", "[record][time]") {
  CHECK(FormatTime(0) == "1970-01-01T00:00:00Z");
  CHECK(FormatTime(1709208000) == "2024-02-29T12:00:00Z");
  CHECK(FormatTime(951782400) == "2000-02-29T00:00:00Z");
  CHECK(FormatTime(2147483647) == "2038-01-19T03:14:07Z");
  CHECK(FormatTime(253402300799) == "9999-12-31T23:59:59Z");
  CHECK(FormatTime(Timegm(2026, 12, 1, 10, 0, 0)) == "2026-12-01T10:00:00Z");

  std::mt19937_64 rng(20261201);
  std::uniform_int_distribution<int64_t> dist(0, 253402300799);
  for (int i = 0; i < 20000; i++) {
    int64_t t = dist(rng);
    std::string s = FormatTime(t);
    // Against gmtime_r.
    time_t tt = static_cast<time_t>(t);
    struct tm tm = {};
    REQUIRE(gmtime_r(&tt, &tm) != nullptr);
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    INFO(t);
    REQUIRE(s == buf);
    auto back = ParseTime(s);
    REQUIRE(back.ok());
    REQUIRE(*back == t);
  }
}

TEST_CASE("Deep nesting can hide neither values nor duplicate keys", "[record][payload]") {
  // Regression: the depth limit used to work by discarding values in the
  // parser callback, which made nlohmann::json drop them silently and skip
  // their end events, so nested arrays vanished from a known field and the
  // duplicate-key check lost track of which object a key belonged to.
  auto signer = SignerFromByte(12);
  ojson j = ojson::parse(EncodeAccess(SampleAccess()));
  j.erase("categories");
  j.erase("purpose");
  std::string head = j.dump();
  head.pop_back();  // reopen the object

  // ["BALANCES", [[[...["TRANSACTIONS"]...]]]] once parsed as {BALANCES}.
  std::string hidden = head + ",\"purpose\":\"CUSTOMER_SUPPORT\",\"categories\":[\"BALANCES\"," + std::string(13, '[') +
                       "\"TRANSACTIONS\"" + std::string(13, ']') + "]}";
  // A second "purpose" after a deep object was not seen as a duplicate.
  std::string dup = head + ",\"purpose\":\"SALE_OF_DATA\",\"categories\":[\"BALANCES\"," + std::string(6, '[') +
                    "{\"a\":" + std::string(6, '[') + std::string(6, ']') + "}" + std::string(6, ']') +
                    "],\"purpose\":\"CUSTOMER_SUPPORT\"}";
  for (const std::string& payload : {hidden, dup}) {
    INFO(payload);
    auto r = ParseAccess(payload);
    INFO(r.status().ToString());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(ParseEntry(SignEnvelope(kAccessPayloadType, payload, *signer)).status().code() ==
          Status::Code::kInvalidArgument);
  }
  // Every nesting depth from 9 to 40 in a known array field is refused
  // as too deep, whatever the content.
  for (int levels = 7; levels <= 38; levels++) {
    std::string p = head + ",\"purpose\":\"CUSTOMER_SUPPORT\",\"categories\":[\"BALANCES\"," +
                    std::string(levels, '[') + std::string(levels, ']') + "]}";
    auto r = ParseAccess(p);
    INFO(levels + 2 << " levels: " << r.status().ToString());
    CHECK(r.status().code() == Status::Code::kInvalidArgument);
    CHECK(r.status().message().find("nested too deeply") != std::string::npos);
  }
  // Duplicate keys are found at every level, after any sibling.
  std::string policy = EncodePolicy(SamplePolicy());
  std::string dup_in_purpose = policy;
  dup_in_purpose.replace(dup_in_purpose.find("\"retention_days\":30"), 19,
                         "\"retention_days\":30,\"retention_days\":36500");
  CHECK(ParsePolicy(dup_in_purpose).status().message().find("duplicate") != std::string::npos);
  std::string dup_after_nested = policy;
  dup_after_nested.insert(dup_after_nested.size() - 1, ",\"version\":4");
  CHECK(ParsePolicy(dup_after_nested).status().message().find("duplicate") != std::string::npos);
}

TEST_CASE("canonical fast paths: same answer as the JSON parser on near-canonical input", "[record]") {
  // ParseEnvelope and ParseAccess read the canonical form without the JSON
  // parser; whatever that scan does not recognise, or whose fields fail a
  // check, must reach the parser and get its answer.
  AccessRecord r;
  r.request_id = "req-1";
  r.accessor = "chat-banking";
  r.holder = "bank";
  r.subject = Bytes(32, '\x07');
  r.purpose = "CUSTOMER_SUPPORT";
  r.categories = {"ACCOUNT_BASIC", "BALANCES"};
  r.consent = "consent-1";
  r.time = "2026-01-01T00:00:00Z";
  r.actor = "agent 7";
  const Bytes canonical = EncodeAccess(r);
  auto same = [&](const Bytes& p) {
    auto got = ParseAccess(p);
    REQUIRE(got.ok());
    CHECK(got->request_id == r.request_id);
    CHECK(got->categories == r.categories);
    CHECK(got->actor == r.actor);
    CHECK(EncodeAccess(*got) == canonical);
  };
  auto refused = [&](const Bytes& p, const std::string& why) {
    auto got = ParseAccess(p);
    REQUIRE(!got.ok());
    CHECK(got.status().message().find(why) != std::string::npos);
  };
  auto replaced = [&](const std::string& from, const std::string& to) {
    Bytes p = canonical;
    auto at = p.find(from);
    REQUIRE(at != Bytes::npos);
    return p.replace(at, from.size(), to);
  };
  same(canonical);
  same(replaced("\"consent\"", " \"consent\""));          // whitespace: parser
  same(replaced("req-1", "\\u0072eq-1"));                  // an escape: parser
  same(replaced("{", "{ "));
  refused(replaced("\"ACCOUNT_BASIC\",\"BALANCES\"", "\"BALANCES\",\"BALANCES\""), "listed twice");
  refused(replaced("\"ACCOUNT_BASIC\",\"BALANCES\"", "\"BALANCES\",\"NOPE\""), "unknown data category");
  refused(replaced("[\"ACCOUNT_BASIC\",\"BALANCES\"]", "[]"), "categories");
  refused(replaced("req-1", "req 1"), "request_id");
  refused(replaced("chat-banking", "Chat"), "accessor");
  refused(replaced("2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z"), "time");
  refused(replaced("CUSTOMER_SUPPORT", "NOPE"), "unknown purpose");
  refused(replaced("\"actor\":\"agent 7\"", "\"actor\":\"\""), "actor");
  refused(replaced("\"actor\":\"agent 7\"", "\"actor\":\"agent 7\",\"actor\":\"x\""), "duplicate key");
  refused(replaced("}", ",\"extra\":\"x\"}"), "unknown field");
  refused(replaced(Base64UrlEncode(r.subject), Base64UrlEncode(Bytes(31, '\x07'))), "subject");

  auto signer = Ed25519Signer::Generate();
  REQUIRE(signer.ok());
  const Bytes entry = SignEnvelope(kAccessPayloadType, canonical, **signer);
  REQUIRE(ParseEntry(entry).ok());
  auto env_replaced = [&](const std::string& from, const std::string& to) {
    Bytes e = entry;
    auto at = e.find(from);
    REQUIRE(at != Bytes::npos);
    return e.replace(at, from.size(), to);
  };
  // Not canonical (whitespace, an escape, another key order): refused by the
  // parser's canonical-form check, as before the fast path.
  for (const Bytes& e : {env_replaced("\"payloadType\"", " \"payloadType\""),
                         env_replaced("\"sig\"", "\"\\u0073ig\""),
                         env_replaced("{\"keyid\"", "{ \"keyid\"")}) {
    auto got = ParseEnvelope(e);
    REQUIRE(!got.ok());
    CHECK(got.status().message().find("canonical") != std::string::npos);
  }
  auto bad_type = ParseEnvelope(env_replaced("access.v1", "access.v9"));
  REQUIRE(!bad_type.ok());
  CHECK(bad_type.status().message().find("unknown payloadType") != std::string::npos);
  auto env = ParseEnvelope(entry);
  REQUIRE(env.ok());
  auto short_sig = ParseEnvelope(env_replaced(Base64Encode(env->signature), Base64Encode(Bytes(63, 'x'))));
  REQUIRE(!short_sig.ok());
  CHECK(short_sig.status().message().find("64-byte") != std::string::npos);
}
