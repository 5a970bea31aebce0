#include "ledger/bytes.h"

// The low-level SHA256_* calls are deprecated in OpenSSL 3 but are ~3.5x
// faster than EVP one-shots for 65-byte inputs (MEASURED.md).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <cstring>

namespace ledger {

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kFailedPrecondition: return "FailedPrecondition";
    case Code::kResourceExhausted: return "ResourceExhausted";
    case Code::kOutOfRange: return "OutOfRange";
    case Code::kCorruption: return "Corruption";
    case Code::kIOError: return "IOError";
    case Code::kUnavailable: return "Unavailable";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

StatusOr<Hash> HashFromBytes(ByteView b) {
  if (b.size() != 32) return Status::InvalidArgument("hash must be 32 bytes, got " + std::to_string(b.size()));
  Hash h;
  std::memcpy(h.data(), b.data(), 32);
  return h;
}

Hash Sha256(ByteView a, ByteView b) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, a.data(), a.size());
  if (!b.empty()) SHA256_Update(&ctx, b.data(), b.size());
  Hash h;
  SHA256_Final(h.data(), &ctx);
  return h;
}

Hash Sha256Prefixed(uint8_t prefix, ByteView a, ByteView b) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, a.data(), a.size());
  if (!b.empty()) SHA256_Update(&ctx, b.data(), b.size());
  Hash h;
  SHA256_Final(h.data(), &ctx);
  return h;
}

namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Encode(ByteView data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = p[i] << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (pad) out.append("==");
  } else if (rest == 2) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.push_back('=');
  }
  return out;
}

// DecodeTable maps a character to its 6-bit value, or -1.
// (constexpr: built at compile time, so usable from any static initialiser.)
struct DecodeTable {
  int8_t v[256];
  constexpr explicit DecodeTable(const char* alphabet) : v{} {
    for (int i = 0; i < 256; i++) v[i] = -1;
    for (int i = 0; i < 64; i++) v[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  }
};

constexpr DecodeTable kStdTable(kStd), kUrlTable(kUrl);

StatusOr<Bytes> Decode(std::string_view text, bool url) {
  const char* what = url ? "base64url" : "base64";
  size_t n = text.size();
  size_t pad = 0;
  if (!url) {
    if (n % 4 != 0) return Status::InvalidArgument(std::string("bad ") + what + ": length not a multiple of 4");
    if (n > 0 && text[n - 1] == '=') pad++;
    if (n > 1 && text[n - 2] == '=') pad++;
  } else if (n % 4 == 1) {
    return Status::InvalidArgument(std::string("bad ") + what + ": impossible length");
  }
  size_t body = n - pad;
  // Four characters (three bytes) at a time through the table; an invalid
  // character makes some table value negative, so OR-ing them finds it.
  const int8_t* table = (url ? kUrlTable : kStdTable).v;
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  size_t quads = body / 4;
  Bytes out(quads * 3 + (body % 4) * 3 / 4, '\0');
  char* o = out.data();
  for (size_t q = 0; q < quads; q++, in += 4, o += 3) {
    int a = table[in[0]], b = table[in[1]], c = table[in[2]], d = table[in[3]];
    if ((a | b | c | d) < 0) return Status::InvalidArgument(std::string("bad ") + what + ": invalid character");
    uint32_t v = static_cast<uint32_t>(a) << 18 | static_cast<uint32_t>(b) << 12 | static_cast<uint32_t>(c) << 6 |
                 static_cast<uint32_t>(d);
    o[0] = static_cast<char>(v >> 16);
    o[1] = static_cast<char>(v >> 8);
    o[2] = static_cast<char>(v);
  }
  // The last 1-3 characters, bit by bit.
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = quads * 4; i < body; i++) {
    int v = table[text[i] & 0xff];
    if (v < 0) return Status::InvalidArgument(std::string("bad ") + what + ": invalid character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *o++ = static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero for a canonical encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return Status::InvalidArgument(std::string("bad ") + what + ": non-canonical trailing bits");
  return out;
}

}  // namespace

std::string Base64Encode(ByteView data) { return Encode(data, kStd, true); }
StatusOr<Bytes> Base64Decode(std::string_view text) { return Decode(text, false); }
std::string Base64UrlEncode(ByteView data) { return Encode(data, kUrl, false); }
StatusOr<Bytes> Base64UrlDecode(std::string_view text) { return Decode(text, true); }

std::string HexEncode(ByteView data) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

StatusOr<Bytes> HexDecode(std::string_view text) {
  if (text.size() % 2) return Status::InvalidArgument("bad hex: odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("bad hex: invalid character");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

StatusOr<uint64_t> ParseUint64(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("empty number");
  if (text.size() > 1 && text[0] == '0') return Status::InvalidArgument("number has a leading zero");
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status::InvalidArgument("not a decimal number");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return Status::InvalidArgument("number out of range");
    v = v * 10 + d;
  }
  return v;
}

bool ByteReader::ReadU8(uint8_t* out) {
  if (data_.size() < 1) return false;
  *out = static_cast<uint8_t>(data_[0]);
  data_.remove_prefix(1);
  return true;
}

bool ByteReader::ReadU16(uint16_t* out) {
  if (data_.size() < 2) return false;
  *out = static_cast<uint16_t>(static_cast<uint8_t>(data_[0]) << 8 | static_cast<uint8_t>(data_[1]));
  data_.remove_prefix(2);
  return true;
}

bool ByteReader::ReadU64(uint64_t* out) {
  if (data_.size() < 8) return false;
  *out = LoadU64(data_.data());
  data_.remove_prefix(8);
  return true;
}

bool ByteReader::ReadBytes(size_t n, ByteView* out) {
  if (data_.size() < n) return false;
  *out = data_.substr(0, n);
  data_.remove_prefix(n);
  return true;
}

void AppendU16(Bytes* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

void AppendU64(Bytes* out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>((v >> s) & 0xff));
}

uint64_t LoadU64(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | b[i];
  return v;
}

}  // namespace ledger
