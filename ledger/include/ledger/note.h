// C2SP signed-note and tlog-checkpoint: Ed25519 note keys, verifier key
// strings, signing and verifying notes, checkpoint bodies. Pure.
//
// Verifier key string: "<name>+<hash>+<base64(0x01 || 32-byte public key)>"
// where <hash> is 8 lowercase hex digits of the key ID, the first 4 bytes of
// SHA-256(name || 0x0A || 0x01 || public key). A private key string is
// "PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>" as in Go's
// golang.org/x/mod/sumdb/note.
//
// Thread-safety: NoteSigner and NoteVerifier are immutable after
// construction and safe to share between threads.
#ifndef LEDGER_NOTE_H_
#define LEDGER_NOTE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {

constexpr size_t kMaxNoteSignatures = 100;

// NoteVerifier checks Ed25519 signatures from one named key.
class NoteVerifier {
 public:
  // Parse parses a verifier key string. InvalidArgument if malformed, if the
  // algorithm byte is not 0x01, or if the hash does not match.
  static StatusOr<NoteVerifier> Parse(std::string_view vkey);
  // FromPublicKey builds a verifier for |name| and a 32-byte public key.
  static StatusOr<NoteVerifier> FromPublicKey(std::string_view name, ByteView public_key);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  ByteView public_key() const { return ByteView(reinterpret_cast<const char*>(pub_.data()), 32); }
  // VerifierKeyString returns "<name>+<hash>+<base64>".
  std::string VerifierKeyString() const;
  // Verify returns true if |sig| (64 bytes) is a valid signature of |msg|.
  bool Verify(ByteView msg, ByteView sig) const;

 private:
  std::string name_;
  uint32_t key_id_ = 0;
  std::array<uint8_t, 32> pub_{};
};

// NoteSigner signs notes with one named Ed25519 key. The secret key is
// wiped (sodium_memzero) when the signer is destroyed.
class NoteSigner {
 public:
  // Generate makes a new random key for |name|. InvalidArgument if the name
  // is empty or contains '+', whitespace or control characters.
  static StatusOr<std::unique_ptr<NoteSigner>> Generate(std::string_view name);
  // FromSeed builds a signer from a 32-byte Ed25519 seed.
  static StatusOr<std::unique_ptr<NoteSigner>> FromSeed(std::string_view name, ByteView seed);
  // ParsePrivateKey parses "PRIVATE+KEY+<name>+<hash>+<base64>".
  static StatusOr<std::unique_ptr<NoteSigner>> ParsePrivateKey(std::string_view skey);
  ~NoteSigner();
  NoteSigner(const NoteSigner&) = delete;
  NoteSigner& operator=(const NoteSigner&) = delete;

  const std::string& name() const { return verifier_.name(); }
  const NoteVerifier& verifier() const { return verifier_; }
  // PrivateKeyString returns the private key string. Secret: never log it.
  std::string PrivateKeyString() const;
  // Sign returns the 64-byte Ed25519 signature of |msg|.
  Bytes Sign(ByteView msg) const;
  // SignatureLine returns "— <name> <base64(key_id || sig)>\n" for |text|.
  std::string SignatureLine(ByteView text) const;
  // SignNote returns text + "\n" + the signature line. |text| must be a
  // valid note text (ends with "\n", no control characters but "\n").
  StatusOr<std::string> SignNote(std::string_view text) const;

 private:
  NoteSigner() = default;
  NoteVerifier verifier_;
  std::array<uint8_t, 64> secret_{};  // libsodium secret key: seed || pub
};

struct NoteSignature {
  std::string name;
  uint32_t key_id = 0;
  Bytes signature;  // bytes after the 4-byte key ID
};

struct Note {
  std::string text;                        // ends with "\n"
  std::vector<NoteSignature> signatures;   // all signature lines, in order
};

// ParseNote splits a signed note into text and signature lines without
// verifying anything. InvalidArgument if malformed: not valid UTF-8, control
// characters other than '\n', no blank line separating the signatures,
// signature lines not of the form "— <name> <base64>" with at least 4+1
// decoded bytes, empty signature block, more than 100 signatures, or a text
// not ending in "\n".
StatusOr<Note> ParseNote(std::string_view msg);

// OpenNote parses |msg| and verifies it: every signature whose (name, key
// ID) matches a verifier in |known| must verify; unknown keys are ignored.
// At least one signature by |known[required]| must be present and valid.
// InvalidArgument for malformed notes, PermissionDenied if the required
// signature is missing or any known-key signature fails.
StatusOr<Note> OpenNote(std::string_view msg, const std::vector<NoteVerifier>& known, size_t required = 0);

// Checkpoint is the body of a C2SP tlog-checkpoint.
struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;  // extra lines, without "\n"

  // Format returns "<origin>\n<size>\n<base64 root>\n" + extension lines.
  std::string Format() const;
};

// ParseCheckpoint parses a checkpoint body strictly: non-empty origin, a
// canonical decimal size, a base64 root of exactly 32 bytes, optional
// non-empty extension lines. InvalidArgument otherwise.
StatusOr<Checkpoint> ParseCheckpoint(std::string_view text);

// OpenCheckpoint verifies a signed checkpoint note against the log key and
// parses its body; the origin must equal the log key's name.
StatusOr<Checkpoint> OpenCheckpoint(std::string_view signed_note, const NoteVerifier& log_key);

}  // namespace ledger

#endif  // LEDGER_NOTE_H_
