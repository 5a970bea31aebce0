// Start-up shared by the tools' cpp-httplib servers (ledger-witness,
// ledger-gate, ledger-bench baseline-server): stop signals, worker pool and
// connection settings, binding (port 0: any free port), and serving until
// SIGINT or SIGTERM. Each program keeps its own flags, messages and exit
// codes. httplib stays in tools/: the ledger library never links this.
//
// Thread-safety: call these from main's thread, in order: BlockStopSignals
// before any thread starts, then ApplyHttpSettings, BindPort and
// ServeUntilStopSignal on one server.
#ifndef LEDGER_TOOLS_COMMON_HTTP_SERVE_H_
#define LEDGER_TOOLS_COMMON_HTTP_SERVE_H_

#include <httplib.h>

#include <cstddef>
#include <ctime>
#include <functional>
#include <string>

namespace ledger_tools {

// BlockStopSignals blocks SIGINT and SIGTERM in the calling thread, so that
// threads started later inherit the mask and only ServeUntilStopSignal's
// sigwait receives them, and ignores SIGPIPE (a peer that hangs up early
// must not kill the process).
void BlockStopSignals();

// HttpSettings are what differs between the tools' servers.
struct HttpSettings {
  size_t threads = 1;             // HTTP worker threads
  time_t keep_alive_seconds = 30; // idle keep-alive; also bounds how long a stop waits
  size_t max_body = 0;            // request body limit in bytes (larger: 413)
};

// ApplyHttpSettings gives |server| a pool of settings.threads workers,
// TCP_NODELAY (Nagle and delayed ACKs add ~40 ms per request otherwise),
// keep-alive for up to 100000 requests, 10 s read and write timeouts, and
// the body limit.
void ApplyHttpSettings(httplib::Server& server, const HttpSettings& settings);

// BindPort binds |server| to host:port, port 0 meaning any free port.
// Returns the bound port, or -1 with *error (if given) set to "cannot
// listen on HOST" (port 0) or "cannot listen on HOST:PORT: <errno text>".
int BindPort(httplib::Server& server, const std::string& host, int port, std::string* error);

// ServeUntilStopSignal serves on the bound |server| until SIGINT or SIGTERM
// arrives (blocked by BlockStopSignals), then calls on_signal(signo) if it
// is set and stops the server. Returns listen_after_bind's result: false if
// serving failed.
bool ServeUntilStopSignal(httplib::Server& server, const std::function<void(int)>& on_signal);

}  // namespace ledger_tools

#endif  // LEDGER_TOOLS_COMMON_HTTP_SERVE_H_
