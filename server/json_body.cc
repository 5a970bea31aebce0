#include "json_body.h"

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

namespace ledgerd {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// kPlain[c]: c is ASCII, printable and needs no escape in a JSON string.
struct PlainTable {
  bool v[256];
  constexpr PlainTable() : v{} {
    for (int c = 0x20; c < 0x7f; c++) v[c] = c != '"' && c != '\\';
  }
};
constexpr PlainTable kPlain;

bool IsPlainChar(char c) { return kPlain.v[static_cast<unsigned char>(c)]; }

// IsWellFormedUtf8: |s| is well-formed UTF-8 (Unicode Table 3-7: no
// overlong forms, surrogates or code points above U+10FFFF), the strings
// nlohmann/json dumps without replacing anything.
bool IsWellFormedUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c == 0xe0) len = 3, lo = 0xa0;
    else if (c == 0xed) len = 3, hi = 0x9f;
    else if (c >= 0xe1 && c <= 0xef) len = 3;
    else if (c == 0xf0) len = 4, lo = 0x90;
    else if (c == 0xf4) len = 4, hi = 0x8f;
    else if (c >= 0xf1 && c <= 0xf3) len = 4;
    else return false;
    if (n - i < len || p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < len; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xbf) return false;
    i += len;
  }
  return true;
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

bool ParseSimpleEntriesBody(std::string_view body, std::vector<std::string_view>* entries) {
  entries->clear();
  const char* p = body.data();
  const char* end = p + body.size();
  auto skip = [&] {
    while (p < end && IsJsonSpace(*p)) p++;
  };
  auto take = [&](std::string_view lit) {
    if (static_cast<size_t>(end - p) < lit.size() || std::memcmp(p, lit.data(), lit.size()) != 0) return false;
    p += lit.size();
    return true;
  };
  skip();
  if (!take("{")) return false;
  skip();
  if (!take("\"entries\"")) return false;
  skip();
  if (!take(":")) return false;
  skip();
  if (!take("[")) return false;
  skip();
  if (p < end && *p == ']') {
    p++;
  } else {
    while (true) {
      if (!take("\"")) return false;
      const char* start = p;
      while (p < end && IsPlainChar(*p)) p++;
      if (!take("\"")) return false;  // also: an escape, a control or non-ASCII byte
      entries->emplace_back(start, static_cast<size_t>(p - 1 - start));
      skip();
      if (take("]")) break;
      if (!take(",")) return false;
      skip();
    }
  }
  skip();
  if (!take("}")) return false;
  skip();
  return p == end;
}

void AppendBase64(std::string* out, std::string_view data) {
  size_t n = data.size();
  size_t at = out->size();
  out->resize(at + (n + 2) / 3 * 4);
  char* o = &(*out)[at];
  const auto* s = reinterpret_cast<const uint8_t*>(data.data());
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{s[i]} << 16) | (uint32_t{s[i + 1]} << 8) | s[i + 2];
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = kB64[(v >> 6) & 63];
    o[3] = kB64[v & 63];
    o += 4;
  }
  if (n - i == 1) {
    uint32_t v = uint32_t{s[i]} << 16;
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = o[3] = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t{s[i]} << 16) | (uint32_t{s[i + 1]} << 8);
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = kB64[(v >> 6) & 63];
    o[3] = '=';
  }
}

void AppendHashArray(std::string* out, const std::vector<ledger::Hash>& hashes) {
  out->reserve(out->size() + 2 + hashes.size() * 47);
  out->push_back('[');
  for (size_t i = 0; i < hashes.size(); i++) {
    if (i) out->push_back(',');
    out->push_back('"');
    AppendBase64(out, ledger::HashView(hashes[i]));
    out->push_back('"');
  }
  out->push_back(']');
}

void AppendJsonString(std::string* out, std::string_view s) {
  if (!IsWellFormedUtf8(s)) {
    // Replacement of invalid UTF-8 exactly as the rest of ledgerd's JSON.
    out->append(nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  // nlohmann/json's escapes (ensure_ascii off): UTF-8 is copied as is.
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); i++) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    out->push_back('\\');
    switch (c) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '\b': out->push_back('b'); break;
      case '\t': out->push_back('t'); break;
      case '\n': out->push_back('n'); break;
      case '\f': out->push_back('f'); break;
      case '\r': out->push_back('r'); break;
      default:
        out->append("u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

}  // namespace ledgerd
