// Connection handling for ledgerd: an httplib server whose connections are
// served by our own loop with whole-request deadlines, optional TLS, and a
// worker pool that sheds idle keep-alive connections when others wait.
//
// Why: cpp-httplib 0.11.4 applies its read timeout to each read, so a client
// sending a byte now and then holds a worker thread for hours, and an idle
// keep-alive connection holds one for the whole keep-alive timeout; with more
// such connections than workers every other client starves (MEASURED.md).
// Here a request must arrive in full within read_timeout of its first byte
// (for a connection's first request: of the accept, so time spent queued
// for a worker counts), a response must be sent within write_timeout, a
// request may not exceed max_request_bytes on the wire, and a connection
// idle between requests is closed after 10 ms while another connection
// waits for a worker. So slow clients hold a worker at most read_timeout +
// write_timeout, and a client that sends its request at once is served
// within about read_timeout however many slow connections there are.
//
// Thread-safety: configure before listen(); connections are then served
// concurrently on the pool's threads.
#ifndef LEDGER_SERVER_CONNECTION_H_
#define LEDGER_SERVER_CONNECTION_H_

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "ledger/status.h"

namespace ledgerd {

struct ConnectionOptions {
  size_t threads = 64;
  // A request (request line, headers and body) must arrive in full within
  // this time of its first byte, or of the accept for a connection's first
  // request.
  std::chrono::milliseconds read_timeout{10000};
  // A response must be sent in full within this time.
  std::chrono::milliseconds write_timeout{10000};
  // A kept-alive connection idle this long between requests is closed
  // (after 10 ms if other connections wait for a worker).
  std::chrono::milliseconds keep_alive_timeout{5000};
  // Requests per connection before it is closed.
  size_t keep_alive_max_count = 100000;
  // Bytes a request may take on the wire (request line, headers, body and
  // chunk framing); more ends the connection.
  size_t max_request_bytes = (64u << 20) + (64u << 10);
  // TLS: PEM certificate chain and private key files; both empty: plain HTTP.
  std::string tls_cert;
  std::string tls_key;
};

// MakeServer returns a server (TLS when options.tls_cert is set) whose
// connections follow |options|. InvalidArgument or PermissionDenied, naming
// the file, if the certificate or key is missing, unreadable, malformed, not
// a pair, or the key is readable by group or others.
ledger::StatusOr<std::unique_ptr<httplib::Server>> MakeServer(const ConnectionOptions& options);

// RequestOverBudget tells, on a worker thread, whether the request being
// answered was cut off for exceeding max_request_bytes (so the error
// handler answers 413, not 400).
bool RequestOverBudget();

}  // namespace ledgerd

#endif  // LEDGER_SERVER_CONNECTION_H_
