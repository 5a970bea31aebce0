// Fuzz target: request targets of every ledgerd endpoint (SPEC.md, "HTTP
// API"), parsed as cpp-httplib parses them (path, then query parameters)
// and checked by server/query.h as server/api.cc does, plus the path-borne
// values (tile paths, entry indexes, subject tags).
// Input: a request target, e.g. "/v1/proof/inclusion?index=3&size=10".
// Properties: a query that passes the checks for an endpoint names only
// that endpoint's parameters, each at most once; numbers read from it are
// canonical decimals that format back to the raw value.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "ledger/bytes.h"
#include "ledger/tiles.h"
#include "query.h"

namespace {

struct Endpoint {
  const char* path;  // exact path, or prefix when it ends in '/'
  std::vector<std::string_view> allowed;
  std::vector<const char*> numbers;  // read with ParseQueryUint
};

const std::vector<Endpoint>& Endpoints() {
  static const std::vector<Endpoint> e = {
      {"/checkpoint", {}, {}},
      {"/tile/", {}, {}},
      {"/v1/entries", {"proof"}, {}},
      {"/v1/entries/", {}, {}},
      {"/v1/proof/inclusion", {"index", "size"}, {"index", "size"}},
      {"/v1/proof/consistency", {"from", "to"}, {"from", "to"}},
      {"/v1/proof/by-hash", {"hash", "size"}, {"size"}},
      {"/v1/proof/tlog-proof", {"index"}, {"index"}},
      {"/v1/subjects/", {"offset", "limit"}, {"offset", "limit"}},
  };
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string target(reinterpret_cast<const char*>(data), size);
  // As httplib's request-line parsing: the path is URL-decoded (no '+'
  // conversion), the query split into parameters.
  size_t q = target.find('?');
  std::string path = httplib::detail::decode_url(target.substr(0, q), false);
  httplib::Params params;
  if (q != std::string::npos) httplib::detail::parse_query_text(target.substr(q + 1), params);

  for (const Endpoint& ep : Endpoints()) {
    std::string p = ep.path;
    bool prefix = p.back() == '/';
    if (prefix ? path.rfind(p, 0) != 0 : path != p) continue;
    if (!ledgerd::CheckQueryParams(target, params, ep.allowed).ok()) continue;
    for (const auto& [k, v] : params) {
      bool known = false;
      for (std::string_view a : ep.allowed) known = known || k == a;
      FUZZ_CHECK(known, "an unknown parameter passed CheckQueryParams");
      FUZZ_CHECK(params.count(k) == 1, "a repeated parameter passed CheckQueryParams");
    }
    for (const char* n : ep.numbers) {
      auto v = ledgerd::ParseQueryUint(params, n, std::nullopt);
      if (v.ok()) FUZZ_CHECK(std::to_string(*v) == params.find(n)->second, "a non-canonical number was accepted");
      auto with_default = ledgerd::ParseQueryUint(params, n, uint64_t{7});
      FUZZ_CHECK(with_default.ok() == (v.ok() || params.count(n) == 0), "the fallback changed the verdict");
    }
    std::string rest = path.substr(p.size());
    if (p == "/tile/") {
      auto id = ledger::ParseTilePath(path.substr(1));
      if (id.ok()) FUZZ_CHECK(ledger::FormatTilePath(*id) == path.substr(1), "non-canonical tile path accepted");
    } else if (p == "/v1/entries/") {
      auto index = ledger::ParseUint64(rest);
      if (index.ok()) FUZZ_CHECK(std::to_string(*index) == rest, "non-canonical entry index accepted");
    } else if (p == "/v1/subjects/") {
      auto tag = ledger::Base64UrlDecode(rest);
      if (tag.ok()) FUZZ_CHECK(ledger::Base64UrlEncode(*tag) == rest, "non-canonical subject tag accepted");
    }
    if (!ep.allowed.empty() && params.count("hash") == 1) {
      auto raw = ledger::Base64Decode(params.find("hash")->second);
      if (raw.ok()) FUZZ_CHECK(ledger::Base64Encode(*raw) == params.find("hash")->second, "non-canonical hash accepted");
    }
  }
  return 0;
}
