// baseline-server: the cheapest possible HTTP server with exactly ledgerd's
// cpp-httplib settings (server/main.cc): N worker threads, TCP_NODELAY,
// long keep-alive, 10 s timeouts, 64 MiB bodies, listen backlog re-raised
// to 4096. It is the denominator of every HTTP ratio in BENCHMARKS.md.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <thread>

#include "bench.h"
#include "http_serve.h"

namespace bench {
namespace {

constexpr char kUsage[] = R"(Usage: ledger-bench baseline-server --listen HOST:PORT [flags]

Serves GET <any path> with a small fixed body (or --get-bytes of them) and
POST <any path> with a small fixed JSON object, using the same httplib settings as ledgerd
(worker threads, TCP_NODELAY, keep-alive 100000 requests / 30 s, listen
backlog raised to 4096). SIGTERM or SIGINT stop it.

Flags:
  --listen HOST:PORT   address (port 0: any free port)          [127.0.0.1:0]
  --threads N          HTTP worker threads (ledgerd's default)  [64]
  --port-file FILE     write the bound port to FILE once listening
  --get-bytes N        GET answers are N bytes (application/octet-stream),
                       e.g. 8192 for the size of a full tile; without it,
                       the 12 bytes "baseline ok\n"
)";

// Same logic as RaiseListenBacklog in server/main.cc: Debian's httplib
// compiles its backlog as 5; listen() on a listening socket only raises it.
void RaiseListenBacklog(int port) {
  for (int fd = 0; fd < 4096; fd++) {
    int accepting = 0;
    socklen_t len = sizeof accepting;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int p = addr.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
          : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port) : -1;
    if (p == port) listen(fd, 4096);
  }
}

}  // namespace

int BaselineServerMain(int argc, char** argv) {
  Flags flags(argc, argv, 2, {"listen", "threads", "port-file", "get-bytes"}, kUsage);
  std::string host;
  int port = 0;
  SplitHostPort(flags.str("listen", "127.0.0.1:0"), &host, &port);
  int threads = static_cast<int>(flags.num("threads", 64, 1, 1024));
  std::string port_file = flags.str("port-file");
  const bool sized = flags.has("get-bytes");
  const std::string get_body = sized ? std::string(flags.num("get-bytes", 0, 0, 64 << 20), 'x') : "baseline ok\n";
  const char* get_type = sized ? "application/octet-stream" : "text/plain; charset=utf-8";

  ledger_tools::BlockStopSignals();

  httplib::Server server;
  // Exactly ledgerd's settings (server/main.cc).
  ledger_tools::ApplyHttpSettings(server, {static_cast<size_t>(threads), 30, size_t{64} << 20});

  server.Get(".*", [&get_body, get_type](const httplib::Request&, httplib::Response& res) {
    res.set_content(get_body, get_type);
  });
  server.Post(".*", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });

  int bound = ledger_tools::BindPort(server, host, port, nullptr);
  if (bound < 0) Die("cannot listen on " + host + (port == 0 ? "" : ":" + std::to_string(port)));
  port = bound;
  RaiseListenBacklog(port);
  std::cout << "baseline-server: listening on http://" << host << ":" << port << " with " << threads
            << " threads" << std::endl;
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    if (std::rename(tmp.c_str(), port_file.c_str()) != 0) Die("cannot write " + port_file);
  }

  return ledger_tools::ServeUntilStopSignal(server, nullptr) ? 0 : 1;
}

}  // namespace bench
