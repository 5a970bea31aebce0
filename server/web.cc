#include "web.h"

#include <nlohmann/json.hpp>

namespace ledgerd {
namespace {

// The page loads its script and style sheet from this server only; no
// inline script or style, no frames, no form posts elsewhere. fetch() may
// reach this origin only.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

void SetPageHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  // The files change only with the binary; revalidating costs little.
  res.set_header("Cache-Control", "no-cache");
}

}  // namespace

void RegisterWeb(httplib::Server& server, const std::string& verifier_key) {
  for (size_t i = 0; i < kWebAssetCount; i++) {
    const WebAsset* asset = &kWebAssets[i];
    // Route patterns are regular expressions: escape the dots.
    std::string pattern;
    for (const char* c = asset->path; *c; c++) pattern += *c == '.' ? std::string("\\.") : std::string(1, *c);
    server.Get(pattern, [asset](const httplib::Request& req, httplib::Response& res) {
      if (!req.params.empty()) {
        res.status = 400;
        res.set_header("Cache-Control", "no-store");
        res.set_content(nlohmann::json{{"error", "the page takes no query parameters"}}.dump(), "application/json");
        return;
      }
      SetPageHeaders(res);
      res.set_content(reinterpret_cast<const char*>(asset->data), asset->size, asset->content_type);
    });
  }
  // The name is everything before the first '+' (SPEC.md §2).
  std::string body = nlohmann::json{{"origin", verifier_key.substr(0, verifier_key.find('+'))},
                                    {"verifier_key", verifier_key}}
                         .dump();
  server.Get("/v1/log", [body](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    if (!req.params.empty()) {
      res.status = 400;
      res.set_content(nlohmann::json{{"error", "unknown query parameter " + req.params.begin()->first}}.dump(),
                      "application/json");
      return;
    }
    res.set_content(body, "application/json");
  });
}

bool IsWebPath(const std::string& path) {
  if (path == "/v1/log") return true;
  for (size_t i = 0; i < kWebAssetCount; i++)
    if (path == kWebAssets[i].path) return true;
  return false;
}

}  // namespace ledgerd
