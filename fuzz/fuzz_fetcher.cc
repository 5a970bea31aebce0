// Fuzz target: the head of an HTTP answer as ledger-verify's plain-http
// fetcher reads it (verifier/fetcher.h, ParseResponseHead) before it reads
// a tile or bundle body itself.
// Input: the bytes of a head (status line and header lines, each ending
// "\r\n", without the blank line).
// Properties: an accepted head has status 200 or 404 and a Content-Length
// within the limit that appears, as those digits, on one content-length
// line; it says nothing about chunked bodies; the same values written back
// as a plain head parse to the same values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fetcher.h"
#include "fuzz_common.h"

namespace {

constexpr uint64_t kLimit = uint64_t{64} << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  auto parsed = verifier::ParseResponseHead(head, kLimit);
  if (!parsed) return 0;
  FUZZ_CHECK(parsed->status == 200 || parsed->status == 404, "accepted status is 200 or 404");
  FUZZ_CHECK(parsed->content_length <= kLimit, "accepted length is within the limit");
  FUZZ_CHECK(head.size() >= 2 && head.substr(head.size() - 2) == "\r\n", "an accepted head ends its last line");
  std::string lower = Lower(head);
  FUZZ_CHECK(lower.find("\r\ncontent-length:") != std::string::npos, "an accepted head has a content-length line");
  FUZZ_CHECK(lower.find("\r\ntransfer-encoding:") == std::string::npos, "an accepted head has no transfer-encoding");
  FUZZ_CHECK(lower.find(std::to_string(parsed->content_length)) != std::string::npos ||
                 parsed->content_length == 0,
             "the length read appears in the head");
  std::string plain = "HTTP/1.1 " + std::to_string(parsed->status) + " X\r\nContent-Length: " +
                      std::to_string(parsed->content_length) + "\r\n" +
                      (parsed->keep_alive ? "" : "Connection: close\r\n");
  auto again = verifier::ParseResponseHead(plain, kLimit);
  FUZZ_CHECK(again && again->status == parsed->status && again->content_length == parsed->content_length &&
                 again->keep_alive == parsed->keep_alive,
             "the values written back as a plain head parse the same");
  // A smaller limit than the length refuses the head (the httplib path reads it).
  if (parsed->content_length > 0)
    FUZZ_CHECK(!verifier::ParseResponseHead(head, parsed->content_length - 1), "the limit is enforced");
  return 0;
}
