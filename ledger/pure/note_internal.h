// Helpers shared by the signed-note key formats (note.cc: Ed25519 note keys,
// type 0x01; cosignature.cc: cosignature/v1 keys, type 0x04). Internal to
// ledger/pure; not a public header.
#ifndef LEDGER_PURE_NOTE_INTERNAL_H_
#define LEDGER_PURE_NOTE_INTERNAL_H_

#include <sodium.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ledger/bytes.h"

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

// Wipe zeroes a string that held secret material.
inline void Wipe(std::string* s) {
  if (!s->empty()) sodium_memzero(&(*s)[0], s->size());
}

}  // namespace note_internal
}  // namespace ledger

#endif  // LEDGER_PURE_NOTE_INTERNAL_H_
