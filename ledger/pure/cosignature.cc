// C2SP tlog-cosignature v1, Ed25519 (see cosignature.h). Everything parsed
// here may come from an untrusted peer: parsing is strict, verification
// failures are PermissionDenied, malformed input is InvalidArgument.
#include "ledger/cosignature.h"

#include <sodium.h>

#include <cstring>

#include "ledger/merkle.h"
#include "note_internal.h"

namespace ledger {
namespace {

constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014 em dash, space
constexpr size_t kTimestampedSigSize = 8 + crypto_sign_BYTES;

static_assert(crypto_sign_SECRETKEYBYTES == 64 && crypto_sign_PUBLICKEYBYTES == 32 && crypto_sign_SEEDBYTES == 32,
              "CosignatureSigner assumes libsodium's Ed25519 sizes");

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// CheckName applies the signed-note key name rules by borrowing
// NoteVerifier's validation (the rules do not depend on the key type).
Status CheckName(std::string_view name) {
  static const std::array<char, 32> kZero{};
  auto v = NoteVerifier::FromPublicKey(name, ByteView(kZero.data(), kZero.size()));
  return v.ok() ? Status::OK() : v.status();
}

// KeyId is the note key ID of a cosignature/v1 (type 0x04) key.
uint32_t KeyId(std::string_view name, ByteView pub) { return note_internal::KeyId(name, kCosignatureV1Type, pub); }

using note_internal::KeyIdHex;

}  // namespace

std::string CosignedMessage(std::string_view checkpoint_body, uint64_t timestamp) {
  std::string msg = "cosignature/v1\ntime " + std::to_string(timestamp) + "\n";
  msg.append(checkpoint_body);
  return msg;
}

// ---------------------------------------------------------------- verifier

StatusOr<CosignatureVerifier> CosignatureVerifier::FromPublicKey(std::string_view name, ByteView public_key) {
  LEDGER_RETURN_IF_ERROR(CheckName(name));
  if (public_key.size() != 32) return Status::InvalidArgument("Ed25519 public key must be 32 bytes");
  CosignatureVerifier v;
  v.name_ = std::string(name);
  std::memcpy(v.pub_.data(), public_key.data(), 32);
  v.key_id_ = KeyId(name, public_key);
  return v;
}

StatusOr<CosignatureVerifier> CosignatureVerifier::Parse(std::string_view vkey) {
  LEDGER_ASSIGN_OR_RETURN(
      note_internal::KeyStringParts parts,
      note_internal::SplitKeyString(vkey, kCosignatureV1Type, "witness verifier key",
                                    "type is not 0x04 (cosignature/v1 Ed25519)",
                                    [](std::string_view name) { return CheckName(name).ok(); }));
  LEDGER_ASSIGN_OR_RETURN(CosignatureVerifier v, FromPublicKey(parts.name, parts.key));
  if (v.key_id_ != parts.key_id)
    return Status::InvalidArgument("witness verifier key: key hash does not match the key");
  return v;
}

std::string CosignatureVerifier::VerifierKeyString() const {
  Bytes key(1, static_cast<char>(kCosignatureV1Type));
  key.append(public_key());
  return name_ + "+" + KeyIdHex(key_id_) + "+" + Base64Encode(key);
}

StatusOr<uint64_t> CosignatureVerifier::VerifyCosignature(const NoteSignature& sig,
                                                          std::string_view checkpoint_body) const {
  if (!Matches(sig)) return Status::InvalidArgument("cosignature: not from witness key " + name_ + "+" + KeyIdHex(key_id_));
  const Status bad = Status::PermissionDenied("invalid cosignature by witness " + name_ + "+" + KeyIdHex(key_id_));
  if (sig.signature.size() != kTimestampedSigSize || !SodiumReady()) return bad;
  const uint64_t timestamp = LoadU64(sig.signature.data());
  if (timestamp > kMaxCosignatureTime) return bad;
  const std::string msg = CosignedMessage(checkpoint_body, timestamp);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.signature.data() + 8),
                                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), pub_.data()) != 0)
    return bad;
  return timestamp;
}

StatusOr<uint64_t> CosignatureVerifier::VerifyLine(std::string_view line, std::string_view checkpoint_body) const {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (line.find('\n') != std::string_view::npos) return Status::InvalidArgument("cosignature: more than one line");
  // Parse the line with the signed-note parser, as the only signature of a
  // placeholder note.
  std::string note = "x\n\n";
  note.append(line).push_back('\n');
  LEDGER_ASSIGN_OR_RETURN(Note parsed, ParseNote(note));
  return VerifyCosignature(parsed.signatures.at(0), checkpoint_body);
}

StatusOr<uint64_t> VerifyCosignature(const CosignatureVerifier& witness, const NoteSignature& sig,
                                     std::string_view checkpoint_body) {
  return witness.VerifyCosignature(sig, checkpoint_body);
}

// ------------------------------------------------------------------ signer

CosignatureSigner::~CosignatureSigner() { sodium_memzero(secret_.data(), secret_.size()); }

StatusOr<std::unique_ptr<CosignatureSigner>> CosignatureSigner::Generate(std::string_view name) {
  LEDGER_RETURN_IF_ERROR(CheckName(name));
  if (!SodiumReady()) return Status::Internal("libsodium initialisation failed");
  std::unique_ptr<CosignatureSigner> s(new CosignatureSigner());
  std::array<uint8_t, 32> pub{};
  crypto_sign_keypair(pub.data(), s->secret_.data());
  LEDGER_ASSIGN_OR_RETURN(s->verifier_, CosignatureVerifier::FromPublicKey(
                                            name, ByteView(reinterpret_cast<const char*>(pub.data()), 32)));
  return s;
}

StatusOr<std::unique_ptr<CosignatureSigner>> CosignatureSigner::FromSeed(std::string_view name, ByteView seed) {
  LEDGER_RETURN_IF_ERROR(CheckName(name));
  if (seed.size() != crypto_sign_SEEDBYTES) return Status::InvalidArgument("Ed25519 seed must be 32 bytes");
  if (!SodiumReady()) return Status::Internal("libsodium initialisation failed");
  std::unique_ptr<CosignatureSigner> s(new CosignatureSigner());
  std::array<uint8_t, 32> pub{};
  crypto_sign_seed_keypair(pub.data(), s->secret_.data(), reinterpret_cast<const unsigned char*>(seed.data()));
  LEDGER_ASSIGN_OR_RETURN(s->verifier_, CosignatureVerifier::FromPublicKey(
                                            name, ByteView(reinterpret_cast<const char*>(pub.data()), 32)));
  return s;
}

StatusOr<std::unique_ptr<CosignatureSigner>> CosignatureSigner::ParsePrivateKey(std::string_view skey) {
  return note_internal::ParsePrivateKeyString<CosignatureSigner>(
      skey, kCosignatureV1Type, "witness private key", "type is not 0x04 (cosignature/v1 Ed25519)",
      [](std::string_view name) { return CheckName(name).ok(); },
      [](std::string_view name, ByteView seed) { return FromSeed(name, seed); });
}

std::string CosignatureSigner::PrivateKeyString() const {
  return note_internal::PrivateKeyString(kCosignatureV1Type, name(), verifier_.key_id(), secret_.data());
}

StatusOr<Bytes> CosignatureSigner::Cosign(std::string_view checkpoint_body, uint64_t timestamp) const {
  if (timestamp > kMaxCosignatureTime) return Status::InvalidArgument("cosignature timestamp exceeds 2^63 - 1");
  auto cp = ParseCheckpoint(checkpoint_body);
  if (!cp.ok()) return cp.status();
  // A tree of size 0 has exactly one root; vouching for another is never
  // right.
  if (cp->size == 0 && cp->root != EmptyTreeRoot())
    return Status::InvalidArgument("checkpoint of size 0 must have the empty tree's root");
  const std::string msg = CosignedMessage(checkpoint_body, timestamp);
  const uint32_t id = verifier_.key_id();
  Bytes raw;
  raw.reserve(4 + kTimestampedSigSize);
  for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>((id >> s) & 0xff));
  AppendU64(&raw, timestamp);
  const size_t off = raw.size();
  raw.resize(off + crypto_sign_BYTES);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(&raw[off]), nullptr,
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), secret_.data());
  return raw;
}

StatusOr<std::string> CosignatureSigner::CosignLine(std::string_view checkpoint_body, uint64_t timestamp) const {
  LEDGER_ASSIGN_OR_RETURN(Bytes raw, Cosign(checkpoint_body, timestamp));
  std::string line(kSigPrefix);
  line.append(name()).append(" ").append(Base64Encode(raw)).append("\n");
  return line;
}

// ------------------------------------------------------------------ quorum

StatusOr<Checkpoint> OpenWitnessedCheckpoint(std::string_view signed_note, const NoteVerifier& log_key,
                                             const std::vector<CosignatureVerifier>& witnesses, size_t quorum,
                                             std::vector<WitnessCosignature>* cosignatures) {
  // Distinct witnesses: the same key listed twice counts once; two keys
  // under one (name, key ID) would make a line's meaning ambiguous.
  std::vector<const CosignatureVerifier*> distinct;
  for (const auto& w : witnesses) {
    bool dup = false;
    for (const auto* d : distinct) {
      if (d->name() == w.name() && d->key_id() == w.key_id()) {
        if (d->public_key() != w.public_key())
          return Status::InvalidArgument("witnesses: ambiguous keys for " + w.name() + "+" + KeyIdHex(w.key_id()));
        dup = true;
        break;
      }
    }
    if (!dup) distinct.push_back(&w);
  }
  if (quorum > distinct.size())
    return Status::InvalidArgument("witness quorum " + std::to_string(quorum) + " exceeds the " +
                                   std::to_string(distinct.size()) + " distinct witnesses given");

  // The log's signature first: this also rejects malformed notes and
  // checkpoints and an origin that is not the log key's name.
  LEDGER_ASSIGN_OR_RETURN(Checkpoint cp, OpenCheckpoint(signed_note, log_key));
  LEDGER_ASSIGN_OR_RETURN(Note note, ParseNote(signed_note));

  std::vector<bool> seen(distinct.size(), false);
  std::vector<uint64_t> latest(distinct.size(), 0);
  for (const auto& sig : note.signatures) {
    for (size_t i = 0; i < distinct.size(); i++) {
      if (!distinct[i]->Matches(sig)) continue;
      LEDGER_ASSIGN_OR_RETURN(uint64_t ts, distinct[i]->VerifyCosignature(sig, note.text));
      if (!seen[i] || ts > latest[i]) latest[i] = ts;
      seen[i] = true;
      break;
    }
  }
  size_t count = 0;
  for (bool s : seen) count += s ? 1 : 0;
  if (count < quorum)
    return Status::PermissionDenied("checkpoint has cosignatures from " + std::to_string(count) +
                                    " of the listed witnesses; quorum is " + std::to_string(quorum));
  if (cosignatures != nullptr) {
    cosignatures->clear();
    for (size_t i = 0; i < distinct.size(); i++) {
      if (seen[i]) cosignatures->push_back({distinct[i]->VerifierKeyString(), latest[i]});
    }
  }
  return cp;
}

}  // namespace ledger
