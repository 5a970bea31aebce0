// RFC 9381 verifiable random function ECVRF-EDWARDS25519-SHA512-TAI (suite
// string 0x03), built on libsodium's public edwards25519 API, and the
// subject tags the ledger derives from it.
//
// A VRF is a keyed hash whose output (beta, 64 bytes) anyone holding the
// public key can check against an 80-byte proof (pi = Gamma 32 || c 16 ||
// s 32). Keys are Ed25519-style: a 32-byte seed, the secret scalar is the
// clamped first half of SHA-512(seed) and the public key is its multiple of
// the base point, so the public key of a seed equals its Ed25519 public key.
//
// Decoding is stricter than RFC 9381 requires, never looser:
//   - a public key must be the canonical encoding of a point of the
//     prime-order subgroup other than the identity (this rejects every point
//     of small order, every point with a torsion component and every
//     non-canonical encoding);
//   - Gamma must satisfy the same rule;
//   - s must be canonical, s < L (the group order).
// Honest proofs always meet these rules, so the stricter decoding rejects
// only proofs that were crafted or damaged. Hash-to-curve candidates are
// decoded as RFC 8032 section 5.1.3 specifies (canonical y, any point on the
// curve, including those of small order) before the cofactor is cleared.
//
// Status codes: InvalidArgument for malformed input (a wrong length, a key or
// Gamma that does not decode or is rejected by the rules above, s >= L);
// PermissionDenied for a well-formed proof that does not verify.
//
// Thread-safety: the free functions are pure and thread-safe. A VrfSecretKey
// is immutable after construction; its const methods may be called from
// several threads at once.
#ifndef LEDGER_VRF_H_
#define LEDGER_VRF_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {

constexpr size_t kVrfSeedSize = 32;
constexpr size_t kVrfPublicKeySize = 32;
constexpr size_t kVrfProofSize = 80;   // Gamma 32 || c 16 || s 32
constexpr size_t kVrfOutputSize = 64;  // beta, SHA-512 sized
constexpr size_t kSubjectTagSize = 32;

// VrfSecretKey holds a VRF seed and the values derived from it (secret
// scalar, nonce key, public key). All secret material is wiped with
// sodium_memzero when the key is destroyed. Not copyable or movable: keys
// are handed around as std::unique_ptr so secrets are never duplicated.
class VrfSecretKey {
 public:
  // Generate makes a key from a fresh random seed. Internal if libsodium
  // cannot be initialised; otherwise succeeds.
  static StatusOr<std::unique_ptr<VrfSecretKey>> Generate();
  // FromSeed builds the key for a 32-byte seed (RFC 9381's SK). Deterministic.
  // InvalidArgument if |seed| is not 32 bytes; Internal if libsodium cannot
  // be initialised.
  static StatusOr<std::unique_ptr<VrfSecretKey>> FromSeed(ByteView seed);

  VrfSecretKey(const VrfSecretKey&) = delete;
  VrfSecretKey& operator=(const VrfSecretKey&) = delete;
  ~VrfSecretKey();

  // public_key returns the 32-byte public key (RFC 9381's PK_string). The view
  // is valid while this key lives.
  ByteView public_key() const { return View(public_key_); }
  // seed returns the 32-byte secret seed, for saving the key. The view is
  // valid while this key lives; treat the bytes as secret.
  ByteView seed() const { return View(seed_); }

  // Prove returns the 80-byte proof for |alpha| (ECVRF_prove). Deterministic:
  // the same key and alpha always give the same proof. Always succeeds.
  Bytes Prove(ByteView alpha) const;

 private:
  VrfSecretKey() = default;
  static ByteView View(const std::array<uint8_t, 32>& a) {
    return ByteView(reinterpret_cast<const char*>(a.data()), a.size());
  }

  std::array<uint8_t, 32> seed_{};
  std::array<uint8_t, 32> scalar_{};      // x mod L
  std::array<uint8_t, 32> nonce_key_{};   // second half of SHA-512(seed)
  std::array<uint8_t, 32> public_key_{};  // x * B
};

// VrfVerify checks |proof| for |alpha| under |public_key| (ECVRF_verify) and
// on success returns the 64-byte VRF output beta. InvalidArgument if the
// public key is not 32 bytes or is rejected by the decoding rules in the file
// comment, or if the proof is malformed (not 80 bytes, Gamma rejected,
// s >= L); PermissionDenied if the proof is well formed but does not verify.
StatusOr<Bytes> VrfVerify(ByteView public_key, ByteView alpha, ByteView proof);

// VrfProofToHash returns the 64-byte beta of |proof| (ECVRF_proof_to_hash).
// It decodes the proof but does NOT verify it: use only on proofs that are
// trusted or are verified separately, or use VrfVerify, which returns beta.
// InvalidArgument if the proof is malformed (as for VrfVerify).
StatusOr<Bytes> VrfProofToHash(ByteView proof);

// SubjectVrfInput returns the VRF input (alpha) for a customer's subject in
// one period. The encoding is unambiguous:
//   "ledger-subject-v1" (17 ASCII bytes, no terminator)
//   || uint16 big-endian length of customer_id || customer_id
//   || period (exactly 7 ASCII bytes, "YYYY-MM")
// customer_id is arbitrary bytes, 1 to 256 long. period must be four ASCII
// digits, '-', and a month 01 to 12. InvalidArgument otherwise.
StatusOr<Bytes> SubjectVrfInput(std::string_view customer_id, std::string_view period);

// SubjectTagFromBeta returns the subject tag of a VRF output: the first
// kSubjectTagSize (32) bytes of the 64-byte beta. InvalidArgument if |beta|
// is not 64 bytes.
StatusOr<Bytes> SubjectTagFromBeta(ByteView beta);

}  // namespace ledger

#endif  // LEDGER_VRF_H_
