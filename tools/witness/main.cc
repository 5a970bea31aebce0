// ledger-witness: a C2SP tlog-witness for Access Ledger logs (and any other
// C2SP checkpoint log). See README.md in this folder.
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "cli/flags.h"
#include "http_serve.h"
#include "ledger/files.h"
#include "witness.h"

namespace {

constexpr char kUsage[] = R"(Usage: ledger-witness --config FILE [options]

A transparency log witness (C2SP tlog-witness). It cosigns checkpoints of
the logs in its config (C2SP tlog-cosignature v1, Ed25519) once it has
verified that each is consistent with the latest one it cosigned for that
log, and keeps that latest checkpoint durably in its state directory.

  POST /add-checkpoint        "old <size>\n", consistency proof lines, "\n",
                              then the signed checkpoint. 200 with the
                              cosignature line; 400 malformed; 403 bad or no
                              log signature; 404 unknown origin; 409
                              "<size>\n" (text/x.tlog.size) when old is not
                              the latest cosigned size, or an equal size has
                              another root; 422 bad consistency proof
  GET  /checkpoint/<origin>   latest cosigned checkpoint of a log (origin
                              URL-escaped, e.g. example.com%2Flog), with the
                              log's signature and the witness's cosignature
  GET  /logs                  JSON: [{"origin", "size", "root", "time"}]

Config (JSON):
  {"name": "witness.example/w1",       the witness's key name
   "key": "witness.key",               private key file; created (0600) on
                                       first start; relative to the config
   "logs": [{"origin": "example.com/log",
             "key": "example.com/log+1234abcd+AQ..."}]}
                                       or "keys": [...] for several keys

Options:
  --config FILE         config file                                [required]
  --state DIR           state directory (latest cosigned checkpoint per
                        log; created 0700)                       [./var/witness]
  --listen HOST:PORT    address to listen on (port 0: any)   [127.0.0.1:7380]
  --port-file FILE      write the bound port to FILE once listening
  --help                show this help

On start it prints its verifier key and writes it to DIR/witness.vkey.
SIGTERM or SIGINT stop it cleanly.
)";

struct Flags {
  std::string config;
  std::string state = "./var/witness";
  std::string host = "127.0.0.1";
  int port = 7380;
  std::string port_file;
};

[[noreturn]] void Die(const std::string& msg, int code = 1) { ledger_cli::Die("ledger-witness", msg, code); }

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  ledger_cli::FlagReader flags("ledger-witness", kUsage, argc, argv);
  std::string a, value;
  while (flags.Next(&a, &value)) {
    if (a == "--config") f.config = value;
    else if (a == "--state") f.state = value;
    else if (a == "--port-file") f.port_file = value;
    else if (a == "--listen") flags.ParseListen(value, &f.host, &f.port);
    else flags.Unknown(a);
  }
  if (f.config.empty()) Die("--config is required (see --help)", 2);
  if (f.state.empty()) Die("--state must not be empty", 2);
  return f;
}

void MakeDirs(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); i++) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty() && mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
        Die("cannot create " + partial + ": " + std::strerror(errno));
    }
    if (i < dir.size()) partial.push_back(dir[i]);
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// PercentDecode decodes %XX escapes strictly ('+' stays '+'); false on a
// malformed escape.
bool PercentDecode(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
    i += 2;
  }
  return true;
}

void Send(httplib::Response& res, const witness::Response& r) {
  res.status = r.status;
  res.set_content(r.body, r.content_type.c_str());
  res.set_header("Cache-Control", "no-store");
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);

  ledger_tools::BlockStopSignals();

  auto config = witness::LoadConfig(flags.config);
  if (!config.ok()) Die("config " + flags.config + ": " + config.status().message());

  MakeDirs(flags.state);
  // One witness process per state directory: two would each trust their own
  // memory and could cosign conflicting checkpoints.
  std::string lock_path = flags.state + "/lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) Die("cannot open " + lock_path + ": " + std::strerror(errno));
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    Die("state directory " + flags.state + " is in use by another ledger-witness (" + std::strerror(errno) + ")");

  bool created = false;
  auto signer = witness::LoadOrCreateCosignatureKey(config->key_path, config->name, &created);
  if (!signer.ok()) Die(signer.status().message());
  const std::string vkey = (*signer)->verifier().VerifierKeyString();
  if (auto s = ledger::WriteFileAtomic(flags.state + "/witness.vkey", vkey + "\n", 0644); !s.ok()) Die(s.message());

  auto w = witness::Witness::Open(*config, std::move(*signer), flags.state);
  if (!w.ok()) Die("refusing to start: " + w.status().ToString());

  httplib::Server server;
  // 16 workers; a 10 s keep-alive (a stop waits that long at most for idle
  // connections); 1 MiB bodies: a checkpoint with 100 signatures and 63
  // proof lines is under 20 KiB.
  ledger_tools::ApplyHttpSettings(server, {16, 10, 1 << 20});

  witness::Witness* wp = w->get();
  server.Post("/add-checkpoint", [wp](const httplib::Request& req, httplib::Response& res) {
    Send(res, wp->AddCheckpoint(req.body));
  });
  server.Get("/add-checkpoint", [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "POST");
    res.set_content("use POST\n", "text/plain; charset=utf-8");
  });
  server.Get("/checkpoint/(.+)", [wp](const httplib::Request& req, httplib::Response& res) {
    // Decode the raw target ourselves: strict %XX, '+' is a plus.
    std::string_view target = req.target;
    target = target.substr(0, target.find('?'));
    constexpr std::string_view kPrefix = "/checkpoint/";
    std::string origin;
    if (target.substr(0, kPrefix.size()) != kPrefix || !PercentDecode(target.substr(kPrefix.size()), &origin) ||
        origin.empty()) {
      res.status = 400;
      res.set_content("malformed origin in path\n", "text/plain; charset=utf-8");
      return;
    }
    Send(res, wp->LatestCheckpoint(origin));
  });
  server.Get("/logs", [wp](const httplib::Request&, httplib::Response& res) { Send(res, wp->Logs()); });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* reason = res.status == 404 ? "not found" : res.status == 413 ? "request body too large" : "error";
    res.set_content(std::string(reason) + "\n", "text/plain; charset=utf-8");
  });

  std::string bind_error;
  int port = ledger_tools::BindPort(server, flags.host, flags.port, &bind_error);
  if (port < 0) Die(bind_error);

  std::cout << "ledger-witness: name         " << (*w)->signer().name() << "\n"
            << "ledger-witness: verifier key " << vkey << "\n"
            << "ledger-witness: " << (created ? "created" : "loaded") << " key " << config->key_path
            << "; verifier key also in " << flags.state << "/witness.vkey\n";
  for (const auto& lc : config->logs) std::cout << "ledger-witness: log          " << lc.origin << "\n";
  std::cout << "ledger-witness: state        " << flags.state << "\n"
            << "ledger-witness: listening on http://" << flags.host << ":" << port << std::endl;
  if (!flags.port_file.empty()) {
    if (auto s = ledger::WriteFileAtomic(flags.port_file, std::to_string(port) + "\n", 0644); !s.ok()) Die(s.message());
  }

  bool ok = ledger_tools::ServeUntilStopSignal(server, [](int sig) {
    std::cout << "ledger-witness: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", shutting down" << std::endl;
  });
  if (!ok && server.is_running()) std::cerr << "ledger-witness: server stopped unexpectedly\n";
  std::cout << "ledger-witness: stopped" << std::endl;
  close(lock_fd);
  return 0;
}
