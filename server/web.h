// Web: the customer page that ledgerd serves at / (SPEC.md §6, "GET /") and
// GET /v1/log, which tells the page the log's origin and verifier key. The
// page's files (server/web/) are embedded into the binary at build time
// (server/embed_web.cmake), so ledgerd needs nothing on disk to serve them.
//
// Thread-safety: the assets are immutable; RegisterWeb is called once before
// the server starts, and the handlers may then run concurrently.
#ifndef LEDGER_SERVER_WEB_H_
#define LEDGER_SERVER_WEB_H_

#include <httplib.h>

#include <cstddef>
#include <string>

namespace ledgerd {

// WebAsset is one embedded file: the path it is served at, its media type
// and its bytes (static storage, never freed).
struct WebAsset {
  const char* path;
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

// Defined in the generated web_assets.cc.
extern const WebAsset kWebAssets[];
extern const size_t kWebAssetCount;

// RegisterWeb installs GET / and the page's other files, and GET /v1/log
// answering {"origin", "verifier_key"} for |verifier_key| (SPEC.md §2
// form). Call it before any catch-all route: httplib tries routes in the
// order they were registered.
void RegisterWeb(httplib::Server& server, const std::string& verifier_key);

// IsWebPath reports whether |path| is one RegisterWeb serves (for 405s
// and metrics labels).
bool IsWebPath(const std::string& path);

}  // namespace ledgerd

#endif  // LEDGER_SERVER_WEB_H_
