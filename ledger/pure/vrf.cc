// ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381, suite string 0x03) on libsodium's
// public edwards25519 API. See ledger/vrf.h for the decoding rules.
//
// libsodium facts this file relies on (1.0.18 and later):
//   - crypto_core_ed25519_add/sub accept any encoding that decodes to a point
//     on the curve (small order, torsion component, non-canonical y and
//     "negative zero" x included) and always write canonical encodings.
//   - crypto_core_ed25519_is_valid_point accepts exactly the canonical
//     encodings of points of the prime-order subgroup other than the identity.
//   - crypto_scalarmult_ed25519_noclamp requires such a point and returns -1,
//     as does crypto_scalarmult_ed25519_base_noclamp, when the scalar is zero
//     or the result is the identity. Both clear bit 255 of the scalar, which
//     is harmless here because every scalar passed is reduced (< L < 2^253).
#include "ledger/vrf.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

namespace ledger {
namespace {

constexpr uint8_t kSuite = 0x03;
constexpr uint8_t kEncodeToCurveFront = 0x01;
constexpr uint8_t kChallengeFront = 0x02;
constexpr uint8_t kProofToHashFront = 0x03;
constexpr uint8_t kDomainBack = 0x00;
constexpr size_t kPointSize = 32;
constexpr size_t kScalarSize = 32;
constexpr size_t kChallengeSize = 16;

using Point = std::array<uint8_t, kPointSize>;
using Scalar = std::array<uint8_t, kScalarSize>;

// The canonical encoding of the identity element (0, 1).
constexpr Point kIdentity = {1};

// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
constexpr Scalar kOrder = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                           0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

const uint8_t* U8(ByteView v) { return reinterpret_cast<const uint8_t*>(v.data()); }

Bytes ToBytes(const uint8_t* p, size_t n) { return Bytes(reinterpret_cast<const char*>(p), n); }

bool EnsureSodium() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// IsCanonicalScalar reports whether the little-endian |s| is below L.
bool IsCanonicalScalar(const uint8_t* s) {
  for (int i = kScalarSize - 1; i >= 0; i--) {
    if (s[i] < kOrder[i]) return true;
    if (s[i] > kOrder[i]) return false;
  }
  return false;  // s == L
}

// DecodesStrictly reports whether |p| passes the byte-level checks of RFC 8032
// section 5.1.3 decoding that libsodium's decoder skips: y (the low 255 bits)
// must be below 2^255 - 19, and x = 0 (y = 1 or y = -1) must not come with the
// sign bit set. Whether y has a matching x is checked separately.
bool DecodesStrictly(const uint8_t* p) {
  // y >= p iff bytes 1..30 are 0xff, the low 7 bits of byte 31 are all set
  // and byte 0 is at least 0xed.
  bool top_all_ones = (p[31] & 0x7f) == 0x7f;
  for (size_t i = 1; i < 31 && top_all_ones; i++) top_all_ones = p[i] == 0xff;
  if (top_all_ones && p[0] >= 0xed) return false;
  if (p[31] & 0x80) {
    // y = 1: 01 00 .. 00; y = -1 = p - 1: ec ff .. ff 7f (sign bit masked).
    bool zero_rest = (p[31] & 0x7f) == 0;
    for (size_t i = 1; i < 31 && zero_rest; i++) zero_rest = p[i] == 0;
    if (zero_rest && p[0] == 0x01) return false;
    if (top_all_ones && p[0] == 0xec) return false;
  }
  return true;
}

// ClearCofactor sets |out| to 8 * |in| by three doublings. Works for any point
// on the curve; false if |in| does not decode to one.
bool ClearCofactor(const uint8_t* in, Point* out) {
  if (crypto_core_ed25519_add(out->data(), in, in) != 0) return false;
  for (int i = 0; i < 2; i++) {
    Point t = *out;
    if (crypto_core_ed25519_add(out->data(), t.data(), t.data()) != 0) return false;
  }
  return true;
}

// MulBase sets |out| to s * B for a reduced scalar |s|, writing the identity
// when libsodium refuses to (s = 0).
void MulBase(const Scalar& s, Point* out) {
  if (crypto_scalarmult_ed25519_base_noclamp(out->data(), s.data()) != 0) *out = kIdentity;
}

// Mul sets |out| to s * P for a reduced scalar |s| and a point |p| that
// crypto_core_ed25519_is_valid_point accepts, so libsodium's only reason to
// fail is an identity result, which is written explicitly.
void Mul(const Scalar& s, const Point& p, Point* out) {
  if (crypto_scalarmult_ed25519_noclamp(out->data(), s.data(), p.data()) != 0) *out = kIdentity;
}

// EncodeToCurve is ECVRF_encode_to_curve_try_and_increment with the public
// key as salt. False only if all 256 counters fail (probability ~2^-256).
bool EncodeToCurve(const Point& pk, ByteView alpha, Point* h) {
  const uint8_t front[2] = {kSuite, kEncodeToCurveFront};
  for (unsigned ctr = 0; ctr < 256; ctr++) {
    const uint8_t back[2] = {static_cast<uint8_t>(ctr), kDomainBack};
    crypto_hash_sha512_state st;
    uint8_t digest[crypto_hash_sha512_BYTES];
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, front, sizeof(front));
    crypto_hash_sha512_update(&st, pk.data(), pk.size());
    crypto_hash_sha512_update(&st, U8(alpha), alpha.size());
    crypto_hash_sha512_update(&st, back, sizeof(back));
    crypto_hash_sha512_final(&st, digest);
    // The candidate is the first 32 bytes; any point on the curve qualifies,
    // then the cofactor is cleared and the identity is skipped.
    if (!DecodesStrictly(digest)) continue;
    if (!ClearCofactor(digest, h)) continue;
    if (*h == kIdentity) continue;
    return true;
  }
  return false;
}

// Challenge is ECVRF_challenge_generation: the first 16 bytes of
// SHA-512(suite || 0x02 || Y || H || Gamma || U || V || 0x00).
std::array<uint8_t, kChallengeSize> Challenge(const Point& y, const Point& h, const Point& gamma,
                                              const Point& u, const Point& v) {
  const uint8_t front[2] = {kSuite, kChallengeFront};
  const uint8_t back = kDomainBack;
  crypto_hash_sha512_state st;
  uint8_t digest[crypto_hash_sha512_BYTES];
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, front, sizeof(front));
  for (const Point* p : {&y, &h, &gamma, &u, &v}) crypto_hash_sha512_update(&st, p->data(), p->size());
  crypto_hash_sha512_update(&st, &back, 1);
  crypto_hash_sha512_final(&st, digest);
  std::array<uint8_t, kChallengeSize> c;
  std::memcpy(c.data(), digest, c.size());
  return c;
}

// PadChallenge widens a 16-byte challenge to a 32-byte little-endian scalar.
Scalar PadChallenge(const uint8_t* c) {
  Scalar s{};
  std::memcpy(s.data(), c, kChallengeSize);
  return s;
}

struct DecodedProof {
  Point gamma;
  std::array<uint8_t, kChallengeSize> c;
  Scalar s;
};

// DecodeProof is ECVRF_decode_proof with the stricter Gamma rule of vrf.h.
Status DecodeProof(ByteView proof, DecodedProof* out) {
  if (proof.size() != kVrfProofSize) {
    return Status::InvalidArgument("VRF proof must be 80 bytes, got " + std::to_string(proof.size()));
  }
  const uint8_t* p = U8(proof);
  std::memcpy(out->gamma.data(), p, kPointSize);
  std::memcpy(out->c.data(), p + kPointSize, kChallengeSize);
  std::memcpy(out->s.data(), p + kPointSize + kChallengeSize, kScalarSize);
  if (crypto_core_ed25519_is_valid_point(out->gamma.data()) != 1) {
    return Status::InvalidArgument("VRF proof Gamma is not a canonical point of the prime-order subgroup");
  }
  if (!IsCanonicalScalar(out->s.data())) return Status::InvalidArgument("VRF proof s is not below the group order");
  return Status::OK();
}

// GammaToHash is the hashing step of ECVRF_proof_to_hash:
// SHA-512(suite || 0x03 || 8 * Gamma || 0x00).
Bytes GammaToHash(const Point& gamma) {
  Point g8;
  if (!ClearCofactor(gamma.data(), &g8)) std::abort();  // gamma was validated
  const uint8_t front[2] = {kSuite, kProofToHashFront};
  const uint8_t back = kDomainBack;
  crypto_hash_sha512_state st;
  uint8_t beta[crypto_hash_sha512_BYTES];
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, front, sizeof(front));
  crypto_hash_sha512_update(&st, g8.data(), g8.size());
  crypto_hash_sha512_update(&st, &back, 1);
  crypto_hash_sha512_final(&st, beta);
  return ToBytes(beta, sizeof(beta));
}

}  // namespace

StatusOr<std::unique_ptr<VrfSecretKey>> VrfSecretKey::Generate() {
  if (!EnsureSodium()) return Status::Internal("libsodium initialisation failed");
  uint8_t seed[kVrfSeedSize];
  randombytes_buf(seed, sizeof(seed));
  auto key = FromSeed(ByteView(reinterpret_cast<const char*>(seed), sizeof(seed)));
  sodium_memzero(seed, sizeof(seed));
  return key;
}

StatusOr<std::unique_ptr<VrfSecretKey>> VrfSecretKey::FromSeed(ByteView seed) {
  if (seed.size() != kVrfSeedSize) {
    return Status::InvalidArgument("VRF seed must be 32 bytes, got " + std::to_string(seed.size()));
  }
  if (!EnsureSodium()) return Status::Internal("libsodium initialisation failed");
  std::unique_ptr<VrfSecretKey> key(new VrfSecretKey());
  std::memcpy(key->seed_.data(), seed.data(), kVrfSeedSize);

  // RFC 8032 section 5.1.5: x is the clamped first half of SHA-512(seed),
  // the second half keys the nonce.
  uint8_t h[crypto_hash_sha512_BYTES];
  crypto_hash_sha512(h, key->seed_.data(), kVrfSeedSize);
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
  std::memcpy(key->nonce_key_.data(), h + 32, 32);
  // Reduce x mod L (same multiple of B, and scalar_mul wants reduced input).
  std::memset(h + 32, 0, 32);
  crypto_core_ed25519_scalar_reduce(key->scalar_.data(), h);
  sodium_memzero(h, sizeof(h));
  // x mod L is never zero for a clamped x, so the product is never the identity.
  MulBase(key->scalar_, &key->public_key_);
  return key;
}

VrfSecretKey::~VrfSecretKey() {
  sodium_memzero(seed_.data(), seed_.size());
  sodium_memzero(scalar_.data(), scalar_.size());
  sodium_memzero(nonce_key_.data(), nonce_key_.size());
}

Bytes VrfSecretKey::Prove(ByteView alpha) const {
  Point h;
  // Failure needs 256 consecutive hash outputs off the curve: never happens.
  if (!EncodeToCurve(public_key_, alpha, &h)) std::abort();

  Point gamma;
  Mul(scalar_, h, &gamma);

  // RFC 8032 section 5.1.6 nonce: k = SHA-512(nonce_key || H) mod L.
  uint8_t k_wide[crypto_hash_sha512_BYTES];
  crypto_hash_sha512_state st;
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, nonce_key_.data(), nonce_key_.size());
  crypto_hash_sha512_update(&st, h.data(), h.size());
  crypto_hash_sha512_final(&st, k_wide);
  sodium_memzero(&st, sizeof(st));
  Scalar k;
  crypto_core_ed25519_scalar_reduce(k.data(), k_wide);
  sodium_memzero(k_wide, sizeof(k_wide));

  Point kb, kh;
  MulBase(k, &kb);
  Mul(k, h, &kh);
  std::array<uint8_t, kChallengeSize> c = Challenge(public_key_, h, gamma, kb, kh);

  // s = k + c * x mod L.
  Scalar c_wide = PadChallenge(c.data());
  Scalar cx, s;
  crypto_core_ed25519_scalar_mul(cx.data(), c_wide.data(), scalar_.data());
  crypto_core_ed25519_scalar_add(s.data(), k.data(), cx.data());
  sodium_memzero(k.data(), k.size());
  sodium_memzero(cx.data(), cx.size());

  Bytes pi;
  pi.reserve(kVrfProofSize);
  pi.append(reinterpret_cast<const char*>(gamma.data()), gamma.size());
  pi.append(reinterpret_cast<const char*>(c.data()), c.size());
  pi.append(reinterpret_cast<const char*>(s.data()), s.size());
  return pi;
}

StatusOr<Bytes> VrfVerify(ByteView public_key, ByteView alpha, ByteView proof) {
  if (!EnsureSodium()) return Status::Internal("libsodium initialisation failed");
  if (public_key.size() != kVrfPublicKeySize) {
    return Status::InvalidArgument("VRF public key must be 32 bytes, got " + std::to_string(public_key.size()));
  }
  Point y;
  std::memcpy(y.data(), public_key.data(), y.size());
  // ECVRF_validate_key, strengthened: prime-order subgroup, canonical, not
  // the identity.
  if (crypto_core_ed25519_is_valid_point(y.data()) != 1) {
    return Status::InvalidArgument("VRF public key is not a canonical point of the prime-order subgroup");
  }
  DecodedProof d;
  LEDGER_RETURN_IF_ERROR(DecodeProof(proof, &d));

  Point h;
  if (!EncodeToCurve(y, alpha, &h)) return Status::Internal("VRF hash to curve failed");

  // U = s*B - c*Y, V = s*H - c*Gamma.
  Scalar c_wide = PadChallenge(d.c.data());
  Point sb, cy, sh, cg, u, v;
  MulBase(d.s, &sb);
  Mul(c_wide, y, &cy);
  Mul(d.s, h, &sh);
  Mul(c_wide, d.gamma, &cg);
  if (crypto_core_ed25519_sub(u.data(), sb.data(), cy.data()) != 0 ||
      crypto_core_ed25519_sub(v.data(), sh.data(), cg.data()) != 0) {
    return Status::Internal("VRF point subtraction failed");
  }
  std::array<uint8_t, kChallengeSize> c = Challenge(y, h, d.gamma, u, v);
  if (sodium_memcmp(c.data(), d.c.data(), c.size()) != 0) {
    return Status::PermissionDenied("VRF proof does not verify");
  }
  return GammaToHash(d.gamma);
}

StatusOr<Bytes> VrfProofToHash(ByteView proof) {
  if (!EnsureSodium()) return Status::Internal("libsodium initialisation failed");
  DecodedProof d;
  LEDGER_RETURN_IF_ERROR(DecodeProof(proof, &d));
  return GammaToHash(d.gamma);
}

StatusOr<Bytes> SubjectVrfInput(std::string_view customer_id, std::string_view period) {
  static constexpr std::string_view kPrefix = "ledger-subject-v1";
  if (customer_id.empty()) return Status::InvalidArgument("customer id is empty");
  if (customer_id.size() > 256) {
    return Status::InvalidArgument("customer id is longer than 256 bytes: " + std::to_string(customer_id.size()));
  }
  auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  bool ok = period.size() == 7 && digit(period[0]) && digit(period[1]) && digit(period[2]) &&
            digit(period[3]) && period[4] == '-' && digit(period[5]) && digit(period[6]);
  if (ok) {
    int month = (period[5] - '0') * 10 + (period[6] - '0');
    ok = month >= 1 && month <= 12;
  }
  if (!ok) return Status::InvalidArgument("period must be YYYY-MM with month 01 to 12");

  Bytes out;
  out.reserve(kPrefix.size() + 2 + customer_id.size() + period.size());
  out.append(kPrefix);
  AppendU16(&out, static_cast<uint16_t>(customer_id.size()));
  out.append(customer_id);
  out.append(period);
  return out;
}

StatusOr<Bytes> SubjectTagFromBeta(ByteView beta) {
  if (beta.size() != kVrfOutputSize) {
    return Status::InvalidArgument("VRF output must be 64 bytes, got " + std::to_string(beta.size()));
  }
  return Bytes(beta.substr(0, kSubjectTagSize));
}

}  // namespace ledger
