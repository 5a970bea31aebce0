// C2SP signed-note and tlog-checkpoint (see note.h). Everything parsed here
// may come from an untrusted peer, so parsing is strict and never reads past
// the input; verification failures are PermissionDenied, malformed input is
// InvalidArgument.
#include "ledger/note.h"

#include "note_internal.h"

#include <sodium.h>

#include <cstring>

namespace ledger {
namespace {

constexpr uint8_t kAlgEd25519 = 0x01;
constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014 em dash, space

// sodium_init must run before libsodium's key generation; a function-local
// static makes the one call thread-safe.
bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// DecodeUtf8 decodes one code point at |s[*i]| and advances *i. Returns -1
// for anything RFC 3629 forbids: truncated or stray continuation bytes,
// overlong forms, surrogates, and values above U+10FFFF.
int32_t DecodeUtf8(std::string_view s, size_t* i) {
  const auto b0 = static_cast<uint8_t>(s[*i]);
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  size_t len;
  int32_t cp, min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return -1;
  }
  if (s.size() - *i < len) return -1;
  for (size_t k = 1; k < len; k++) {
    const auto b = static_cast<uint8_t>(s[*i + k]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  *i += len;
  return cp;
}

// Unicode category Cc: C0, DEL and C1.
bool IsControl(int32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// The same set as Go's unicode.IsSpace, which golang.org/x/mod/sumdb/note
// uses for key names.
bool IsUnicodeSpace(int32_t cp) {
  switch (cp) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool IsValidKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size();) {
    int32_t cp = DecodeUtf8(name, &i);
    if (cp < 0 || cp == '+' || IsControl(cp) || IsUnicodeSpace(cp)) return false;
  }
  return true;
}

Status CheckKeyName(std::string_view name) {
  if (IsValidKeyName(name)) return Status::OK();
  return Status::InvalidArgument("invalid key name: must be non-empty UTF-8 without '+', spaces or control characters");
}

// CheckNoteChars enforces the signed-note character rules on a whole note or
// note text: valid UTF-8 and no control characters but '\n'. We also reject
// DEL and C1 controls, a little stricter than the spec's "below U+0020".
Status CheckNoteChars(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    int32_t cp = DecodeUtf8(s, &i);
    if (cp < 0) return Status::InvalidArgument("malformed note: invalid UTF-8");
    if (cp != '\n' && IsControl(cp)) return Status::InvalidArgument("malformed note: control character");
  }
  return Status::OK();
}

Status CheckNoteText(std::string_view text) {
  LEDGER_RETURN_IF_ERROR(CheckNoteChars(text));
  if (text.empty() || text.back() != '\n') return Status::InvalidArgument("malformed note: text must end with a newline");
  return Status::OK();
}

// KeyId is the note key ID of an Ed25519 (type 0x01) key.
uint32_t KeyId(std::string_view name, ByteView pub) { return note_internal::KeyId(name, kAlgEd25519, pub); }

using note_internal::Chop;
using note_internal::KeyIdHex;

}  // namespace

// ---------------------------------------------------------------- verifier

StatusOr<NoteVerifier> NoteVerifier::FromPublicKey(std::string_view name, ByteView public_key) {
  LEDGER_RETURN_IF_ERROR(CheckKeyName(name));
  if (public_key.size() != 32) return Status::InvalidArgument("Ed25519 public key must be 32 bytes");
  NoteVerifier v;
  v.name_ = std::string(name);
  std::memcpy(v.pub_.data(), public_key.data(), 32);
  v.key_id_ = KeyId(name, public_key);
  return v;
}

StatusOr<NoteVerifier> NoteVerifier::Parse(std::string_view vkey) {
  LEDGER_ASSIGN_OR_RETURN(note_internal::KeyStringParts parts,
                          note_internal::SplitKeyString(vkey, kAlgEd25519, "verifier key", "unknown algorithm",
                                                        IsValidKeyName));
  LEDGER_ASSIGN_OR_RETURN(NoteVerifier v, FromPublicKey(parts.name, parts.key));
  if (v.key_id_ != parts.key_id) return Status::InvalidArgument("verifier key: key hash does not match the key");
  return v;
}

std::string NoteVerifier::VerifierKeyString() const {
  Bytes key(1, static_cast<char>(kAlgEd25519));
  key.append(public_key());
  return name_ + "+" + KeyIdHex(key_id_) + "+" + Base64Encode(key);
}

bool NoteVerifier::Verify(ByteView msg, ByteView sig) const {
  if (sig.size() != crypto_sign_BYTES || !SodiumReady()) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                     pub_.data()) == 0;
}

// ------------------------------------------------------------------ signer

static_assert(crypto_sign_SECRETKEYBYTES == 64 && crypto_sign_PUBLICKEYBYTES == 32 &&
                  crypto_sign_SEEDBYTES == 32,
              "NoteSigner assumes libsodium's Ed25519 sizes");

NoteSigner::~NoteSigner() { sodium_memzero(secret_.data(), secret_.size()); }

StatusOr<std::unique_ptr<NoteSigner>> NoteSigner::Generate(std::string_view name) {
  LEDGER_RETURN_IF_ERROR(CheckKeyName(name));
  if (!SodiumReady()) return Status::Internal("libsodium initialisation failed");
  std::unique_ptr<NoteSigner> s(new NoteSigner());
  std::array<uint8_t, 32> pub{};
  crypto_sign_keypair(pub.data(), s->secret_.data());
  LEDGER_ASSIGN_OR_RETURN(s->verifier_,
                          NoteVerifier::FromPublicKey(name, ByteView(reinterpret_cast<const char*>(pub.data()), 32)));
  return s;
}

StatusOr<std::unique_ptr<NoteSigner>> NoteSigner::FromSeed(std::string_view name, ByteView seed) {
  LEDGER_RETURN_IF_ERROR(CheckKeyName(name));
  if (seed.size() != crypto_sign_SEEDBYTES) return Status::InvalidArgument("Ed25519 seed must be 32 bytes");
  if (!SodiumReady()) return Status::Internal("libsodium initialisation failed");
  std::unique_ptr<NoteSigner> s(new NoteSigner());
  std::array<uint8_t, 32> pub{};
  crypto_sign_seed_keypair(pub.data(), s->secret_.data(), reinterpret_cast<const unsigned char*>(seed.data()));
  LEDGER_ASSIGN_OR_RETURN(s->verifier_,
                          NoteVerifier::FromPublicKey(name, ByteView(reinterpret_cast<const char*>(pub.data()), 32)));
  return s;
}

StatusOr<std::unique_ptr<NoteSigner>> NoteSigner::ParsePrivateKey(std::string_view skey) {
  return note_internal::ParsePrivateKeyString<NoteSigner>(
      skey, kAlgEd25519, "private key", "unknown algorithm", IsValidKeyName,
      [](std::string_view name, ByteView seed) { return FromSeed(name, seed); });
}

std::string NoteSigner::PrivateKeyString() const {
  return note_internal::PrivateKeyString(kAlgEd25519, name(), verifier_.key_id(), secret_.data());
}

Bytes NoteSigner::Sign(ByteView msg) const {
  Bytes sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(&sig[0]), nullptr,
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), secret_.data());
  return sig;
}

std::string NoteSigner::SignatureLine(ByteView text) const {
  const uint32_t id = verifier_.key_id();
  Bytes raw;
  raw.reserve(4 + crypto_sign_BYTES);
  for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>((id >> s) & 0xff));
  raw.append(Sign(text));
  std::string line(kSigPrefix);
  line.append(name()).append(" ").append(Base64Encode(raw)).append("\n");
  return line;
}

StatusOr<std::string> NoteSigner::SignNote(std::string_view text) const {
  LEDGER_RETURN_IF_ERROR(CheckNoteText(text));
  std::string out(text);
  out.push_back('\n');
  out.append(SignatureLine(text));
  return out;
}

// ------------------------------------------------------------------- notes

StatusOr<Note> ParseNote(std::string_view msg) {
  LEDGER_RETURN_IF_ERROR(CheckNoteChars(msg));
  // The text is separated from the signatures by the last blank line; the
  // text keeps its final newline.
  size_t split = msg.rfind("\n\n");
  if (split == std::string_view::npos) return Status::InvalidArgument("malformed note: no blank line before signatures");
  Note note;
  note.text = std::string(msg.substr(0, split + 1));
  std::string_view sigs = msg.substr(split + 2);
  if (sigs.empty()) return Status::InvalidArgument("malformed note: no signatures");
  if (sigs.back() != '\n') return Status::InvalidArgument("malformed note: signature block must end with a newline");
  while (!sigs.empty()) {
    size_t nl = sigs.find('\n');  // present: sigs ends with '\n'
    std::string_view line = sigs.substr(0, nl);
    sigs.remove_prefix(nl + 1);
    if (note.signatures.size() == kMaxNoteSignatures)
      return Status::InvalidArgument("malformed note: more than " + std::to_string(kMaxNoteSignatures) + " signatures");
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix)
      return Status::InvalidArgument("malformed note: signature line must start with an em dash and a space");
    line.remove_prefix(kSigPrefix.size());
    std::string_view b64;
    std::string_view name = Chop(line, ' ', &b64);
    if (!IsValidKeyName(name)) return Status::InvalidArgument("malformed note: invalid key name in signature line");
    auto raw = Base64Decode(b64);
    if (!raw.ok() || raw->size() < 5) return Status::InvalidArgument("malformed note: bad signature encoding");
    NoteSignature sig;
    sig.name = std::string(name);
    ByteReader r(*raw);
    ByteView id, rest;
    r.ReadBytes(4, &id);
    r.ReadBytes(r.remaining(), &rest);
    for (char c : id) sig.key_id = sig.key_id << 8 | static_cast<uint8_t>(c);
    sig.signature = Bytes(rest);
    note.signatures.push_back(std::move(sig));
  }
  return note;
}

StatusOr<Note> OpenNote(std::string_view msg, const std::vector<NoteVerifier>& known, size_t required) {
  if (required >= known.size()) return Status::InvalidArgument("OpenNote: required key index out of range");
  // Two different keys under one (name, key ID) would make a signature's
  // meaning ambiguous; refuse rather than guess.
  for (size_t i = 0; i < known.size(); i++) {
    for (size_t j = i + 1; j < known.size(); j++) {
      if (known[i].name() == known[j].name() && known[i].key_id() == known[j].key_id() &&
          known[i].public_key() != known[j].public_key())
        return Status::InvalidArgument("OpenNote: ambiguous known keys for " + known[i].name());
    }
  }
  LEDGER_ASSIGN_OR_RETURN(Note parsed, ParseNote(msg));
  // The result lists only verified signatures, each key once, so callers
  // counting signatures (e.g. for a quorum) cannot count unverified or
  // repeated ones.
  Note out;
  out.text = std::move(parsed.text);
  bool have_required = false;
  for (auto& sig : parsed.signatures) {
    const NoteVerifier* v = nullptr;
    for (const auto& k : known) {
      if (k.name() == sig.name && k.key_id() == sig.key_id) {
        v = &k;
        break;
      }
    }
    if (v == nullptr) continue;  // unknown keys must be ignored
    if (!v->Verify(out.text, sig.signature))
      return Status::PermissionDenied("note: invalid signature by known key " + sig.name + "+" + KeyIdHex(sig.key_id));
    const NoteVerifier& req = known[required];
    if (sig.name == req.name() && sig.key_id == req.key_id()) have_required = true;
    bool dup = false;
    for (const auto& o : out.signatures) dup = dup || (o.name == sig.name && o.key_id == sig.key_id);
    if (!dup) out.signatures.push_back(std::move(sig));
  }
  if (!have_required)
    return Status::PermissionDenied("note: no signature by required key " + known[required].name() + "+" +
                                    KeyIdHex(known[required].key_id()));
  return out;
}

// ------------------------------------------------------------- checkpoints

std::string Checkpoint::Format() const {
  std::string out = origin + "\n" + std::to_string(size) + "\n" + Base64Encode(HashView(root)) + "\n";
  for (const auto& e : extensions) out.append(e).append("\n");
  return out;
}

StatusOr<Checkpoint> ParseCheckpoint(std::string_view text) {
  // A checkpoint body is note text, so the note character rules apply too.
  LEDGER_RETURN_IF_ERROR(CheckNoteText(text));
  std::vector<std::string_view> lines;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');  // present: text ends with '\n'
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  if (lines.size() < 3) return Status::InvalidArgument("checkpoint: want origin, size and root lines");
  Checkpoint cp;
  if (lines[0].empty()) return Status::InvalidArgument("checkpoint: empty origin");
  cp.origin = std::string(lines[0]);
  auto size = ParseUint64(lines[1]);
  if (!size.ok()) return Status::InvalidArgument("checkpoint: bad tree size: " + size.status().message());
  cp.size = *size;
  auto root = Base64Decode(lines[2]);
  if (!root.ok() || root->size() != 32) return Status::InvalidArgument("checkpoint: root must be base64 of 32 bytes");
  std::memcpy(cp.root.data(), root->data(), 32);
  for (size_t i = 3; i < lines.size(); i++) {
    if (lines[i].empty()) return Status::InvalidArgument("checkpoint: empty extension line");
    cp.extensions.emplace_back(lines[i]);
  }
  return cp;
}

StatusOr<Checkpoint> OpenCheckpoint(std::string_view signed_note, const NoteVerifier& log_key) {
  LEDGER_ASSIGN_OR_RETURN(Note note, OpenNote(signed_note, {log_key}, 0));
  LEDGER_ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpoint(note.text));
  if (cp.origin != log_key.name())
    return Status::PermissionDenied("checkpoint: origin \"" + cp.origin + "\" does not match log key name");
  return cp;
}

}  // namespace ledger
