// Helpers shared by the signed-note key formats (note.cc: Ed25519 note keys,
// type 0x01; cosignature.cc: cosignature/v1 keys, type 0x04). Internal to
// ledger/pure; not a public header.
#ifndef LEDGER_PURE_NOTE_INTERNAL_H_
#define LEDGER_PURE_NOTE_INTERNAL_H_

#include <sodium.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace ledger {
namespace note_internal {

// KeyId is the first 4 bytes, big-endian, of
// SHA-256(name || 0x0A || type || public key), per C2SP signed-note.
inline uint32_t KeyId(std::string_view name, uint8_t type, ByteView pub) {
  std::string prefix(name);
  prefix.push_back('\n');
  prefix.push_back(static_cast<char>(type));
  Hash h = Sha256(prefix, pub);
  return static_cast<uint32_t>(h[0]) << 24 | static_cast<uint32_t>(h[1]) << 16 | static_cast<uint32_t>(h[2]) << 8 |
         static_cast<uint32_t>(h[3]);
}

inline std::string KeyIdHex(uint32_t id) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int k = 7; k >= 0; k--, id >>= 4) out[static_cast<size_t>(k)] = kHex[id & 15];
  return out;
}

// ParseKeyIdHex accepts exactly 8 lowercase hex digits, the form we emit.
inline bool ParseKeyIdHex(std::string_view s, uint32_t* out) {
  if (s.size() != 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
    else return false;
    v = v << 4 | d;
  }
  *out = v;
  return true;
}

// Chop splits |s| at the first |sep|; |*rest| is empty if there is none.
inline std::string_view Chop(std::string_view s, char sep, std::string_view* rest) {
  size_t i = s.find(sep);
  if (i == std::string_view::npos) {
    *rest = {};
    return s;
  }
  *rest = s.substr(i + 1);
  return s.substr(0, i);
}

// KeyStringParts is a verifier key string "<name>+<key hash>+<base64(type ||
// 32-byte key)>" split and decoded (key without its type byte).
struct KeyStringParts {
  std::string_view name;
  uint32_t key_id = 0;
  Bytes key;
};

// SplitKeyString splits and decodes |vkey| for a key of |type|. |what| names
// the key in errors ("verifier key"), |wrong_type| is the error for another
// type byte, and |valid_name| applies the key-name rules. It does not check
// the key hash: the caller recomputes it with the key type's KeyId.
inline StatusOr<KeyStringParts> SplitKeyString(std::string_view vkey, uint8_t type, const std::string& what,
                                               const std::string& wrong_type, bool (*valid_name)(std::string_view)) {
  std::string_view rest, key64;
  KeyStringParts parts;
  parts.name = Chop(vkey, '+', &rest);
  std::string_view hash16 = Chop(rest, '+', &key64);
  if (!valid_name(parts.name) || !ParseKeyIdHex(hash16, &parts.key_id))
    return Status::InvalidArgument("malformed " + what + ": want <name>+<8 hex digits>+<base64>");
  auto key = Base64Decode(key64);
  if (!key.ok() || key->empty()) return Status::InvalidArgument("malformed " + what + ": bad base64 key");
  if (static_cast<uint8_t>((*key)[0]) != type) return Status::InvalidArgument(what + ": " + wrong_type);
  if (key->size() != 33) return Status::InvalidArgument(what + ": Ed25519 key must be 32 bytes");
  parts.key = key->substr(1);
  return parts;
}

// Wipe zeroes a string that held secret material.
inline void Wipe(std::string* s) {
  if (!s->empty()) sodium_memzero(&(*s)[0], s->size());
}

constexpr std::string_view kPrivateKeyPrefix = "PRIVATE+KEY+";

// ParsePrivateKeyString parses "PRIVATE+KEY+<name>+<key hash>+<base64(type ||
// 32-byte seed)>" into a signer made by |from_seed(name, seed)|; |what| names
// the key in errors ("private key") and |wrong_type| is the error for another
// type byte. The decoded seed is wiped on every path; the key hash is checked
// against the derived public key.
template <typename Signer, typename FromSeed>
StatusOr<std::unique_ptr<Signer>> ParsePrivateKeyString(std::string_view skey, uint8_t type, const std::string& what,
                                                        const std::string& wrong_type,
                                                        bool (*valid_name)(std::string_view), FromSeed from_seed) {
  const Status malformed =
      Status::InvalidArgument("malformed " + what + ": want PRIVATE+KEY+<name>+<8 hex digits>+<base64>");
  if (skey.substr(0, kPrivateKeyPrefix.size()) != kPrivateKeyPrefix) return malformed;
  std::string_view rest, key64;
  std::string_view name = Chop(skey.substr(kPrivateKeyPrefix.size()), '+', &rest);
  std::string_view hash16 = Chop(rest, '+', &key64);
  uint32_t id = 0;
  if (!valid_name(name) || !ParseKeyIdHex(hash16, &id)) return malformed;
  auto key = Base64Decode(key64);
  if (!key.ok() || key->empty()) return malformed;
  Bytes raw = std::move(*key);
  // From here |raw| holds the seed: wipe it on every path.
  StatusOr<std::unique_ptr<Signer>> signer = Status::InvalidArgument(what + ": " + wrong_type);
  if (static_cast<uint8_t>(raw[0]) == type) signer = from_seed(name, ByteView(raw).substr(1));
  Wipe(&raw);
  if (!signer.ok()) return signer.status();
  // The hash is of the public key, so it can only be checked after derivation.
  if ((*signer)->verifier().key_id() != id) return Status::InvalidArgument(what + ": key hash does not match the key");
  return signer;
}

// PrivateKeyString formats a private key string for |seed| (32 bytes). It
// builds in preallocated buffers so no reallocation leaves stray copies of
// the seed behind, and wipes the intermediates.
inline std::string PrivateKeyString(uint8_t type, std::string_view name, uint32_t key_id, const uint8_t* seed) {
  Bytes key;
  key.reserve(33);
  key.push_back(static_cast<char>(type));
  key.append(reinterpret_cast<const char*>(seed), 32);
  std::string b64 = Base64Encode(key);
  Wipe(&key);
  std::string out;
  out.reserve(kPrivateKeyPrefix.size() + name.size() + 1 + 8 + 1 + b64.size());
  out.append(kPrivateKeyPrefix).append(name).append("+").append(KeyIdHex(key_id)).append("+").append(b64);
  Wipe(&b64);
  return out;
}

}  // namespace note_internal
}  // namespace ledger

#endif  // LEDGER_PURE_NOTE_INTERNAL_H_
