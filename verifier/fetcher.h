// Fetcher reads the files of a C2SP tlog-tiles log — "checkpoint",
// "tile/<L>/<N>[.p/<W>]", "tile/entries/<N>[.p/<W>]" — either from the log's
// base URL over HTTP(S) or from a mirror directory laid out the same way.
// It returns bytes and nothing more: everything it returns is untrusted and
// checked by the caller (signatures, hashes, roots).
//
// HTTP: a pool of keep-alive httplib clients (TCP_NODELAY, connect/read
// timeouts), one per concurrent call, so a few threads fetch bundles at once
// over a few connections; transient failures (connection errors, 429, 5xx)
// are retried with backoff. HTTP types stay in fetcher.cc.
//
// Thread-safety: Get may be called from any number of threads at once.
#ifndef LEDGER_VERIFIER_FETCHER_H_
#define LEDGER_VERIFIER_FETCHER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ledger/bytes.h"
#include "ledger/status.h"

namespace verifier {

class Fetcher {
 public:
  virtual ~Fetcher() = default;

  // Open returns a fetcher for |location|: "http://host[:port][/prefix]" or
  // "https://...", else a directory path (which must exist).
  // InvalidArgument for a malformed URL or a missing directory.
  static ledger::StatusOr<std::unique_ptr<Fetcher>> Open(const std::string& location);

  // Get returns the bytes at |path| (relative to the log's base, e.g.
  // "checkpoint" or "tile/0/000"). NotFound if the log has no such file
  // (HTTP 404, or no file in the mirror); Unavailable when the log cannot
  // be reached after retries; IOError for any other failure.
  virtual ledger::StatusOr<ledger::Bytes> Get(const std::string& path) = 0;

  // Describe names |path| at this source (a URL or a file name) for messages.
  virtual std::string Describe(const std::string& path) const = 0;

  // is_directory tells whether the source is a local mirror.
  virtual bool is_directory() const = 0;
};

// ResponseHead is what the HTTP fetcher's plain-http path reads from the
// head of an answer.
struct ResponseHead {
  int status = 0;               // 200 or 404
  uint64_t content_length = 0;  // the body's bytes
  bool keep_alive = false;      // the connection may carry another request
};

// ParseResponseHead reads |head| (untrusted): the status line and header
// lines, each ending "\r\n", without the blank line that ends the head.
// It returns the head only if the plain-http path reads the body itself:
// HTTP/1.0 or 1.1, status 200 or 404, exactly one Content-Length (digits
// only) of at most |max_length|, no Transfer-Encoding. nullopt for anything
// else, which the httplib path then handles (redirects, retries, chunked
// bodies, errors).
std::optional<ResponseHead> ParseResponseHead(std::string_view head, uint64_t max_length);

}  // namespace verifier

#endif  // LEDGER_VERIFIER_FETCHER_H_
