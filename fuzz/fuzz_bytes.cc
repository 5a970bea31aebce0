// Fuzz target: the encodings every parser above builds on (ledger/bytes.h):
// base64 (padded, standard), base64url (unpadded), hex, canonical decimal
// uint64, and the bounds-checked ByteReader.
// Properties: each decoder accepts only the one canonical spelling (decode
// then encode gives back the input); encode then decode is the identity;
// ByteReader never reads past its input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ledger/bytes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);

  auto b64 = ledger::Base64Decode(in);
  if (b64.ok()) FUZZ_CHECK(ledger::Base64Encode(*b64) == in, "Base64Decode accepted a non-canonical spelling");
  auto b64_back = ledger::Base64Decode(ledger::Base64Encode(in));
  FUZZ_CHECK(b64_back.ok() && *b64_back == in, "Base64Decode(Base64Encode(x)) != x");

  auto url = ledger::Base64UrlDecode(in);
  if (url.ok()) FUZZ_CHECK(ledger::Base64UrlEncode(*url) == in, "Base64UrlDecode accepted a non-canonical spelling");
  auto url_back = ledger::Base64UrlDecode(ledger::Base64UrlEncode(in));
  FUZZ_CHECK(url_back.ok() && *url_back == in, "Base64UrlDecode(Base64UrlEncode(x)) != x");

  auto hex = ledger::HexDecode(in);
  // HexDecode takes either case (bytes.h; no outside bytes go through it).
  if (hex.ok()) {
    std::string lower = in;
    for (char& c : lower) c = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    FUZZ_CHECK(ledger::HexEncode(*hex) == lower, "HexDecode accepted something that is not hex");
  }
  auto hex_back = ledger::HexDecode(ledger::HexEncode(in));
  FUZZ_CHECK(hex_back.ok() && *hex_back == in, "HexDecode(HexEncode(x)) != x");

  auto n = ledger::ParseUint64(in);
  if (n.ok()) FUZZ_CHECK(std::to_string(*n) == in, "ParseUint64 accepted a non-canonical decimal");

  auto h = ledger::HashFromBytes(in);
  FUZZ_CHECK(h.ok() == (in.size() == 32), "HashFromBytes length check");

  // ByteReader: read a mix of fields driven by the input itself.
  ledger::ByteReader r(in);
  size_t consumed = 0;
  uint8_t op = 0;
  while (r.ReadU8(&op)) {
    consumed += 1;
    uint16_t u16;
    uint64_t u64;
    ledger::ByteView v;
    switch (op % 4) {
      case 0: if (r.ReadU16(&u16)) consumed += 2; break;
      case 1: if (r.ReadU64(&u64)) consumed += 8; break;
      case 2: if (r.ReadBytes(op / 4, &v)) { consumed += v.size(); FUZZ_CHECK(v.size() == op / 4u, "ReadBytes length"); } break;
      default: break;
    }
    FUZZ_CHECK(consumed + r.remaining() == in.size(), "ByteReader lost track of its input");
  }
  return 0;
}
