// C2SP tlog-cosignature v1 (Ed25519): witness cosignatures on checkpoints,
// and a quorum check for a checkpoint carrying them. Pure.
//
// A cosigner (witness) key is an Ed25519 key with signature type 0x04. Its
// key ID is the first 4 bytes, big-endian, of
//   SHA-256(<name> || 0x0A || 0x04 || 32-byte public key)
// Verifier key string (a C2SP signed-note vkey with type 0x04):
//   <name>+<8 hex digits of the key ID>+<base64(0x04 || public key)>
// Private key string (this project's convention, mirroring note.h):
//   PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x04 || 32-byte seed)>
//
// A cosignature is a signed-note signature line
//   — <name> <base64(key ID(4) || timestamp u64be(8) || Ed25519 sig(64))>
// where the Ed25519 signature covers the message
//   "cosignature/v1\n" "time <timestamp>\n" <checkpoint body>
// (the checkpoint's note text, including extension lines and the final
// newline). The timestamp is POSIX seconds, at most 2^63 - 1.
//
// Thread-safety: CosignatureSigner and CosignatureVerifier are immutable
// after construction and safe to share between threads.
#ifndef LEDGER_COSIGNATURE_H_
#define LEDGER_COSIGNATURE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/note.h"
#include "ledger/status.h"

namespace ledger {

// Signature type byte of cosignature/v1 Ed25519 keys.
constexpr uint8_t kCosignatureV1Type = 0x04;
// Largest timestamp a cosignature may carry (2^63 - 1).
constexpr uint64_t kMaxCosignatureTime = (uint64_t{1} << 63) - 1;

// CosignedMessage returns the message a cosignature/v1 signs:
// "cosignature/v1\ntime <timestamp>\n" + |checkpoint_body|.
std::string CosignedMessage(std::string_view checkpoint_body, uint64_t timestamp);

// CosignatureVerifier checks cosignatures from one named witness key.
class CosignatureVerifier {
 public:
  // Parse parses a verifier key string "<name>+<hash>+<base64(0x04||pub)>".
  // InvalidArgument if malformed, if the type byte is not 0x04, or if the
  // hash does not match the name and key.
  static StatusOr<CosignatureVerifier> Parse(std::string_view vkey);
  // FromPublicKey builds a verifier for |name| and a 32-byte public key.
  // InvalidArgument for an invalid key name (empty, '+', spaces, control
  // characters) or a key of the wrong length.
  static StatusOr<CosignatureVerifier> FromPublicKey(std::string_view name, ByteView public_key);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  ByteView public_key() const { return ByteView(reinterpret_cast<const char*>(pub_.data()), 32); }
  // VerifierKeyString returns "<name>+<hash>+<base64(0x04 || pub)>".
  std::string VerifierKeyString() const;

  // Matches reports whether a note signature line claims to be from this
  // key (same name and key ID). It says nothing about validity.
  bool Matches(const NoteSignature& sig) const { return sig.name == name_ && sig.key_id == key_id_; }

  // VerifyCosignature checks that |sig| (a parsed note signature line) is a
  // valid cosignature/v1 by this key on |checkpoint_body| and returns its
  // timestamp. InvalidArgument if the line is not from this key (name or
  // key ID differ); PermissionDenied if it is but is not a valid
  // cosignature (not 8+64 bytes, timestamp above 2^63 - 1, or a signature
  // that does not verify).
  StatusOr<uint64_t> VerifyCosignature(const NoteSignature& sig, std::string_view checkpoint_body) const;

  // VerifyLine is VerifyCosignature for one signature line
  // ("— <name> <base64>", with or without its final "\n").
  StatusOr<uint64_t> VerifyLine(std::string_view line, std::string_view checkpoint_body) const;

 private:
  std::string name_;
  uint32_t key_id_ = 0;
  std::array<uint8_t, 32> pub_{};
};

// CosignatureSigner makes cosignature/v1 signatures with one named Ed25519
// witness key. The secret key is wiped when the signer is destroyed.
class CosignatureSigner {
 public:
  // Generate makes a new random key for |name|. InvalidArgument for an
  // invalid key name.
  static StatusOr<std::unique_ptr<CosignatureSigner>> Generate(std::string_view name);
  // FromSeed builds a signer from a 32-byte Ed25519 seed.
  static StatusOr<std::unique_ptr<CosignatureSigner>> FromSeed(std::string_view name, ByteView seed);
  // ParsePrivateKey parses "PRIVATE+KEY+<name>+<hash>+<base64(0x04||seed)>".
  // InvalidArgument if malformed, of another type, or if the hash does not
  // match.
  static StatusOr<std::unique_ptr<CosignatureSigner>> ParsePrivateKey(std::string_view skey);
  ~CosignatureSigner();
  CosignatureSigner(const CosignatureSigner&) = delete;
  CosignatureSigner& operator=(const CosignatureSigner&) = delete;

  const std::string& name() const { return verifier_.name(); }
  const CosignatureVerifier& verifier() const { return verifier_; }
  // PrivateKeyString returns the private key string. Secret: never log it.
  std::string PrivateKeyString() const;

  // Cosign returns the raw signature bytes of a note signature line:
  // key ID(4) || timestamp u64be(8) || Ed25519 signature(64).
  // InvalidArgument if |checkpoint_body| is not a well-formed checkpoint
  // body (ParseCheckpoint), is of size 0 with a root other than the empty
  // tree's, or |timestamp| exceeds 2^63 - 1.
  StatusOr<Bytes> Cosign(std::string_view checkpoint_body, uint64_t timestamp) const;
  // CosignLine returns "— <name> <base64(Cosign(...))>\n"; same errors.
  StatusOr<std::string> CosignLine(std::string_view checkpoint_body, uint64_t timestamp) const;

 private:
  CosignatureSigner() = default;
  CosignatureVerifier verifier_;
  std::array<uint8_t, 64> secret_{};  // libsodium secret key: seed || pub
};

// VerifyCosignature is |witness|.VerifyCosignature(|sig|, |checkpoint_body|).
StatusOr<uint64_t> VerifyCosignature(const CosignatureVerifier& witness, const NoteSignature& sig,
                                     std::string_view checkpoint_body);

// A verified cosignature found by OpenWitnessedCheckpoint.
struct WitnessCosignature {
  std::string witness;  // the witness's verifier key string
  uint64_t timestamp = 0;
};

// OpenWitnessedCheckpoint verifies a signed checkpoint that carries witness
// cosignatures:
//  - the note must be well formed and carry a valid signature by |log_key|
//    (whose name must equal the checkpoint origin), as OpenCheckpoint;
//  - every signature line from a listed witness (same name and key ID) must
//    be a valid cosignature on the checkpoint body, else PermissionDenied,
//    as the signed-note rule for known keys; lines from other keys are
//    ignored;
//  - at least |quorum| DISTINCT listed witnesses must have cosigned (several
//    lines from one witness, or one witness listed twice, count once),
//    else PermissionDenied.
// InvalidArgument for a malformed note or checkpoint, for two listed
// witnesses with the same name and key ID but different keys, or for a
// quorum larger than the number of distinct listed witnesses. If
// |cosignatures| is not null it receives one entry per distinct witness
// that cosigned (its latest timestamp), in the order of |witnesses|.
StatusOr<Checkpoint> OpenWitnessedCheckpoint(std::string_view signed_note, const NoteVerifier& log_key,
                                             const std::vector<CosignatureVerifier>& witnesses, size_t quorum,
                                             std::vector<WitnessCosignature>* cosignatures = nullptr);

}  // namespace ledger

#endif  // LEDGER_COSIGNATURE_H_
