// Byte strings, SHA-256 hashes, encodings, and a bounds-checked reader for
// untrusted bytes. Pure functions; all thread-safe.
#ifndef LEDGER_BYTES_H_
#define LEDGER_BYTES_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/status.h"

namespace ledger {

using Bytes = std::string;          // owned bytes (may contain NUL)
using ByteView = std::string_view;  // borrowed bytes

// Hash is a SHA-256 digest.
using Hash = std::array<uint8_t, 32>;

// HashView returns a view over the 32 bytes of |h|.
inline ByteView HashView(const Hash& h) {
  return ByteView(reinterpret_cast<const char*>(h.data()), h.size());
}
// HashFromBytes copies exactly 32 bytes into a Hash; InvalidArgument otherwise.
StatusOr<Hash> HashFromBytes(ByteView b);

// Sha256 hashes the concatenation of |a| and |b| (b may be empty). Uses
// OpenSSL's low-level SHA-256 (SHA-NI where the CPU has it).
Hash Sha256(ByteView a, ByteView b = {});
// Sha256Prefixed hashes prefix || a || b without copying.
Hash Sha256Prefixed(uint8_t prefix, ByteView a, ByteView b = {});

// Base64 (RFC 4648 §4, standard alphabet, padded).
std::string Base64Encode(ByteView data);
// Base64Decode accepts only canonical padded standard base64 (no whitespace,
// zero pad bits). InvalidArgument on anything else.
StatusOr<Bytes> Base64Decode(std::string_view text);
// Base64Url (RFC 4648 §5, URL-safe alphabet, no padding).
std::string Base64UrlEncode(ByteView data);
// Base64UrlDecode accepts only canonical unpadded URL-safe base64.
StatusOr<Bytes> Base64UrlDecode(std::string_view text);

std::string HexEncode(ByteView data);
StatusOr<Bytes> HexDecode(std::string_view text);

// ParseUint64 parses a canonical decimal (no sign, no leading zeros unless
// the value is 0, no overflow). InvalidArgument otherwise.
StatusOr<uint64_t> ParseUint64(std::string_view text);

// ByteReader reads big-endian integers and byte runs from untrusted input,
// never past its end. Each Read* returns false (and reads nothing) if the
// input is too short.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}
  bool ReadU8(uint8_t* out);
  bool ReadU16(uint16_t* out);
  bool ReadU64(uint64_t* out);
  bool ReadBytes(size_t n, ByteView* out);
  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

 private:
  ByteView data_;
};

// Big-endian appends.
void AppendU16(Bytes* out, uint16_t v);
void AppendU64(Bytes* out, uint64_t v);
uint64_t LoadU64(const void* p);

// Mix64 is SplitMix64's finaliser: a bijection on 64-bit words in which
// every output bit depends on every input bit (hash-table slots, Bloom
// filter bits). Part of the store's on-disk filter format (SPEC.md §7).
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace ledger

#endif  // LEDGER_BYTES_H_
