#include "ledger/vrf.h"

#include <sodium.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "test_util.h"

using namespace ledger;

namespace {

struct Vector {
  Bytes sk, pk, alpha, pi, beta;
};

Bytes Hex(const std::string& s) {
  auto b = HexDecode(s);
  REQUIRE(b.ok());
  return *b;
}

std::vector<Vector> LoadVectors() {
  auto j = nlohmann::json::parse(ledger_test::ReadFileOrDie(ledger_test::VectorPath("vrf.json")));
  std::vector<Vector> out;
  for (const auto& v : j.at("vectors")) {
    out.push_back({Hex(v.at("sk")), Hex(v.at("pk")), Hex(v.at("alpha")), Hex(v.at("pi")), Hex(v.at("beta"))});
  }
  return out;
}

std::unique_ptr<VrfSecretKey> KeyFromSeed(ByteView seed) {
  auto k = VrfSecretKey::FromSeed(seed);
  REQUIRE(k.ok());
  return std::move(*k);
}

// AddOrder returns s + L (little-endian, 32 bytes); s < L so it cannot overflow.
Bytes AddOrder(ByteView s) {
  static const uint8_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10};
  Bytes out(32, '\0');
  unsigned carry = 0;
  for (int i = 0; i < 32; i++) {
    unsigned sum = static_cast<uint8_t>(s[i]) + kL[i] + carry;
    out[i] = static_cast<char>(sum & 0xff);
    carry = sum >> 8;
  }
  REQUIRE(carry == 0);
  return out;
}

bool IsRejection(const Status& st) {
  return st.code() == Status::Code::kInvalidArgument || st.code() == Status::Code::kPermissionDenied;
}

// Points of small order (order 1, 2, 4 and 8), canonically encoded.
const char* const kSmallOrderHex[] = {
    "0100000000000000000000000000000000000000000000000000000000000000",  // identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  // order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  // order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  // order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  // order 8
};

// Encodings that are not canonical or do not decode at all.
const char* const kBadEncodingHex[] = {
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p + 1 (identity)
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p (order 4)
    "0100000000000000000000000000000000000000000000000000000000000080",  // identity, x = -0
    "0200000000000000000000000000000000000000000000000000000000000000",  // y = 2: not on curve
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

}  // namespace

TEST_CASE("VRF matches the RFC 9381 test vectors") {
  auto vectors = LoadVectors();
  REQUIRE(vectors.size() == 3);
  for (const auto& v : vectors) {
    auto key = KeyFromSeed(v.sk);
    CHECK(HexEncode(key->public_key()) == HexEncode(v.pk));
    CHECK(key->seed() == v.sk);
    Bytes pi = key->Prove(v.alpha);
    CHECK(HexEncode(pi) == HexEncode(v.pi));

    auto beta = VrfVerify(v.pk, v.alpha, v.pi);
    REQUIRE(beta.ok());
    CHECK(HexEncode(*beta) == HexEncode(v.beta));

    auto beta2 = VrfProofToHash(v.pi);
    REQUIRE(beta2.ok());
    CHECK(*beta2 == v.beta);
  }
}

TEST_CASE("VRF public key equals the Ed25519 public key of the seed") {
  for (const auto& v : LoadVectors()) {
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    REQUIRE(crypto_sign_seed_keypair(pk, sk, reinterpret_cast<const unsigned char*>(v.sk.data())) == 0);
    CHECK(Bytes(reinterpret_cast<const char*>(pk), sizeof(pk)) == v.pk);
  }
}

TEST_CASE("VRF rejects every single-bit flip of a proof") {
  auto v = LoadVectors()[1];
  int invalid = 0, denied = 0;
  for (size_t byte = 0; byte < kVrfProofSize; byte++) {
    for (int bit = 0; bit < 8; bit++) {
      Bytes bad = v.pi;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      auto r = VrfVerify(v.pk, v.alpha, bad);
      INFO("byte " << byte << " bit " << bit);
      REQUIRE_FALSE(r.ok());
      CHECK(IsRejection(r.status()));
      if (r.status().IsInvalidArgument()) invalid++;
      else denied++;
    }
  }
  // Both outcomes occur: flips that break decoding and flips that decode.
  CHECK(invalid > 0);
  CHECK(denied > 0);
}

TEST_CASE("VRF proof length must be exactly 80 bytes") {
  auto v = LoadVectors()[0];
  for (size_t n : {0, 1, 32, 48, 79, 81, 96}) {
    Bytes bad = v.pi;
    bad.resize(n, '\0');
    auto r = VrfVerify(v.pk, v.alpha, bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsInvalidArgument());
    CHECK(VrfProofToHash(bad).status().IsInvalidArgument());
  }
}

TEST_CASE("VRF rejects non-canonical s") {
  for (const auto& v : LoadVectors()) {
    ByteView s = ByteView(v.pi).substr(48, 32);
    // s + L is congruent to s: a verifier that reduced s would accept it.
    Bytes bad = v.pi.substr(0, 48) + AddOrder(s);
    auto r = VrfVerify(v.pk, v.alpha, bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsInvalidArgument());
    CHECK(VrfProofToHash(bad).status().IsInvalidArgument());
  }
  auto v = LoadVectors()[0];
  Bytes l = AddOrder(Bytes(32, '\0'));
  for (const Bytes& s : {l, Bytes(32, '\xff')}) {
    Bytes bad = v.pi.substr(0, 48) + s;
    CHECK(VrfVerify(v.pk, v.alpha, bad).status().IsInvalidArgument());
  }
}

TEST_CASE("VRF rejects a Gamma that is not a prime-order point") {
  auto v = LoadVectors()[0];
  std::vector<Bytes> gammas;
  for (const char* h : kSmallOrderHex) gammas.push_back(Hex(h));
  for (const char* h : kBadEncodingHex) gammas.push_back(Hex(h));
  // Gamma plus a point of order 8: on the curve, canonical, not in the subgroup.
  Bytes mixed(32, '\0');
  Bytes t8 = Hex(kSmallOrderHex[4]);
  REQUIRE(crypto_core_ed25519_add(reinterpret_cast<unsigned char*>(&mixed[0]),
                                  reinterpret_cast<const unsigned char*>(v.pi.data()),
                                  reinterpret_cast<const unsigned char*>(t8.data())) == 0);
  gammas.push_back(mixed);
  for (const Bytes& g : gammas) {
    INFO("Gamma " << HexEncode(g));
    Bytes bad = g + v.pi.substr(32);
    auto r = VrfVerify(v.pk, v.alpha, bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsInvalidArgument());
    CHECK(VrfProofToHash(bad).status().IsInvalidArgument());
  }
}

TEST_CASE("VRF rejects small-order, non-canonical and malformed public keys") {
  auto v = LoadVectors()[0];
  std::vector<Bytes> keys;
  for (const char* h : kSmallOrderHex) keys.push_back(Hex(h));
  for (const char* h : kBadEncodingHex) keys.push_back(Hex(h));
  Bytes mixed(32, '\0');
  Bytes t8 = Hex(kSmallOrderHex[4]);
  REQUIRE(crypto_core_ed25519_add(reinterpret_cast<unsigned char*>(&mixed[0]),
                                  reinterpret_cast<const unsigned char*>(v.pk.data()),
                                  reinterpret_cast<const unsigned char*>(t8.data())) == 0);
  keys.push_back(mixed);  // valid key plus torsion
  keys.push_back("");
  keys.push_back(v.pk.substr(0, 31));
  keys.push_back(v.pk + '\0');
  for (const Bytes& pk : keys) {
    INFO("pk " << HexEncode(pk));
    auto r = VrfVerify(pk, v.alpha, v.pi);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsInvalidArgument());
  }
}

TEST_CASE("VRF proof fails for another alpha or another key") {
  auto vs = LoadVectors();
  for (size_t i = 0; i < vs.size(); i++) {
    const auto& v = vs[i];
    for (const Bytes& alpha : {Bytes("x"), v.alpha + '\0', Bytes("\x72\x72")}) {
      auto r = VrfVerify(v.pk, alpha, v.pi);
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == Status::Code::kPermissionDenied);
    }
    const auto& other = vs[(i + 1) % vs.size()];
    auto r = VrfVerify(other.pk, v.alpha, v.pi);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kPermissionDenied);
  }
}

TEST_CASE("VRF secret keys round-trip and are deterministic") {
  CHECK(VrfSecretKey::FromSeed("").status().IsInvalidArgument());
  CHECK(VrfSecretKey::FromSeed(Bytes(31, 'a')).status().IsInvalidArgument());
  CHECK(VrfSecretKey::FromSeed(Bytes(33, 'a')).status().IsInvalidArgument());

  for (int i = 0; i < 8; i++) {
    auto g = VrfSecretKey::Generate();
    REQUIRE(g.ok());
    const auto& key = *g;
    REQUIRE(key->public_key().size() == kVrfPublicKeySize);
    REQUIRE(key->seed().size() == kVrfSeedSize);
    CHECK(crypto_core_ed25519_is_valid_point(reinterpret_cast<const unsigned char*>(key->public_key().data())) == 1);
    auto again = KeyFromSeed(key->seed());
    CHECK(again->public_key() == key->public_key());

    Bytes alpha = "alpha-" + std::to_string(i);
    Bytes pi = key->Prove(alpha);
    REQUIRE(pi.size() == kVrfProofSize);
    CHECK(again->Prove(alpha) == pi);
    auto beta = VrfVerify(key->public_key(), alpha, pi);
    REQUIRE(beta.ok());
    CHECK(beta->size() == kVrfOutputSize);
    CHECK(*VrfProofToHash(pi) == *beta);
    // Outputs differ across inputs.
    auto beta_other = VrfVerify(key->public_key(), alpha + "!", key->Prove(alpha + "!"));
    REQUIRE(beta_other.ok());
    CHECK(*beta_other != *beta);
  }
  auto a = VrfSecretKey::Generate();
  auto b = VrfSecretKey::Generate();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->seed() != (*b)->seed());
  CHECK(VrfVerify((*b)->public_key(), "m", (*a)->Prove("m")).status().code() == Status::Code::kPermissionDenied);
}

TEST_CASE("Subject VRF input encoding") {
  auto in = SubjectVrfInput("acme", "2024-05");
  REQUIRE(in.ok());
  CHECK(*in == Bytes("ledger-subject-v1\x00\x04" "acme2024-05", 17 + 2 + 4 + 7));

  Bytes id256(256, 'c');
  auto long_in = SubjectVrfInput(id256, "1999-12");
  REQUIRE(long_in.ok());
  CHECK(*long_in == "ledger-subject-v1" + Bytes("\x01\x00", 2) + id256 + "1999-12");

  // Arbitrary bytes in the id are fine: the length prefix keeps it unambiguous.
  Bytes binary_id("a\x00-b", 4);
  REQUIRE(SubjectVrfInput(binary_id, "2024-01").ok());
  CHECK(*SubjectVrfInput("ab", "2024-01") != *SubjectVrfInput("a", "2024-01"));

  struct Case {
    std::string id, period;
    bool ok;
  };
  const Case cases[] = {
      {"c", "0000-01", true},   {"c", "9999-12", true},  {"c", "2024-10", true},
      {"", "2024-01", false},   {Bytes(257, 'c'), "2024-01", false},
      {"c", "2024-00", false},  {"c", "2024-13", false}, {"c", "2024-1", false},
      {"c", "2024-011", false}, {"c", "24-01", false},   {"c", "2024/01", false},
      {"c", "202a-01", false},  {"c", " 2024-01", false}, {"c", "2024-01 ", false},
      {"c", "", false},         {"c", "2024-1a", false}, {"c", "-2024-01", false},
      {"c", "2024--1", false},  {"c", "2024-+1", false}, {"c", "2024_01", false},
  };
  for (const auto& c : cases) {
    INFO("id size " << c.id.size() << " period '" << c.period << "'");
    auto r = SubjectVrfInput(c.id, c.period);
    CHECK(r.ok() == c.ok);
    if (!c.ok) CHECK(r.status().IsInvalidArgument());
  }
}

TEST_CASE("Subject tags are stable per period and differ across periods and customers") {
  auto key = KeyFromSeed(LoadVectors()[0].sk);
  auto tag = [&](const std::string& id, const std::string& period) {
    auto alpha = SubjectVrfInput(id, period);
    REQUIRE(alpha.ok());
    auto beta = VrfVerify(key->public_key(), *alpha, key->Prove(*alpha));
    REQUIRE(beta.ok());
    auto t = SubjectTagFromBeta(*beta);
    REQUIRE(t.ok());
    REQUIRE(t->size() == kSubjectTagSize);
    CHECK(*t == beta->substr(0, kSubjectTagSize));
    return *t;
  };
  Bytes jan = tag("customer-42", "2024-01");
  CHECK(tag("customer-42", "2024-01") == jan);
  CHECK(tag("customer-42", "2024-02") != jan);
  CHECK(tag("customer-42", "2025-01") != jan);
  CHECK(tag("customer-43", "2024-01") != jan);

  CHECK(SubjectTagFromBeta(Bytes(63, 'b')).status().IsInvalidArgument());
  CHECK(SubjectTagFromBeta(Bytes(65, 'b')).status().IsInvalidArgument());
  CHECK(SubjectTagFromBeta("").status().IsInvalidArgument());
}
