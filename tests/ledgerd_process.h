// Test helper: runs the ledgerd binary (LEDGERD_PATH) as a child process on
// 127.0.0.1 with an ephemeral port, for the end-to-end and crash tests.
// Header-only; POSIX only.
//
//   ledger_test::TempDir tmp;
//   ledger_test::LedgerdProcess server(tmp.path() + "/data");
//   server.Start({"--max-body", "4096"});
//   httplib::Client cli("127.0.0.1", server.port());
//   ... server.Stop();  // SIGTERM and wait; server.Kill() sends SIGKILL
//
// Not thread-safe: one thread owns a LedgerdProcess.
#ifndef LEDGER_TESTS_LEDGERD_PROCESS_H_
#define LEDGER_TESTS_LEDGERD_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "test_util.h"

#ifndef LEDGERD_PATH
#error "LEDGERD_PATH must be defined to the ledgerd binary's path"
#endif

namespace ledger_test {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string TrimTrailingWhitespace(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// LedgerdProcess runs `ledgerd --listen 127.0.0.1:0 --port-file <data>.port
// --data <data> <extra args...>`, with its stdout and stderr appended to
// <data>.log. The destructor SIGKILLs a still-running server.
class LedgerdProcess {
 public:
  explicit LedgerdProcess(std::string data_dir)
      : data_dir_(std::move(data_dir)), port_file_(data_dir_ + ".port"), log_file_(data_dir_ + ".log") {}
  ~LedgerdProcess() {
    if (pid_ > 0) Kill();
  }
  LedgerdProcess(const LedgerdProcess&) = delete;
  LedgerdProcess& operator=(const LedgerdProcess&) = delete;

  // Start launches the server and waits (up to |timeout|) until it has
  // written its port file. Throws std::runtime_error (with the server's log)
  // if it exits or does not come up in time.
  void Start(const std::vector<std::string>& extra_args = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    if (pid_ > 0) throw std::runtime_error("ledgerd already running");
    // A client writing to a killed server must see EPIPE, not die of it.
    signal(SIGPIPE, SIG_IGN);
    unlink(port_file_.c_str());
    port_ = 0;

    std::vector<std::string> args = {LEDGERD_PATH, "--listen", "127.0.0.1:0", "--port-file", port_file_,
                                     "--data", data_dir_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    // Everything the child needs is prepared before fork: after fork in a
    // multithreaded parent only async-signal-safe calls are allowed.
    int log_fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("cannot open " + log_file_ + ": " + std::strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      close(log_fd);
      throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      // Die with the test process so a crashed test leaves no server behind.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, STDIN_FILENO);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      signal(SIGPIPE, SIG_DFL);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    pid_ = pid;

    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      std::string text = TrimTrailingWhitespace(ReadWholeFile(port_file_));
      if (!text.empty()) {
        port_ = std::atoi(text.c_str());
        if (port_ <= 0 || port_ > 65535) throw std::runtime_error("bad port file contents: " + text);
        break;
      }
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        throw std::runtime_error("ledgerd exited during startup (" + DescribeStatus(status) + "); log:\n" + Log());
      }
      if (std::chrono::steady_clock::now() > deadline) {
        Kill();
        throw std::runtime_error("ledgerd did not write its port file in time; log:\n" + Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    vkey_ = TrimTrailingWhitespace(ReadWholeFile(data_dir_ + "/log.vkey"));
    if (vkey_.empty()) throw std::runtime_error("no verifier key in " + data_dir_ + "/log.vkey");
  }

  // Stop sends SIGTERM and waits up to |timeout| for a clean exit, then
  // SIGKILLs. Returns the raw wait status (0 for a clean exit with code 0),
  // or -1 if the server had to be killed or was not running.
  int Stop(std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 && errno != EINTR) {
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Kill();
    return -1;
  }

  // Kill sends SIGKILL and reaps the process.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  // Exited reports (and reaps) a server that has exited on its own.
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  const std::string& vkey() const { return vkey_; }
  const std::string& data_dir() const { return data_dir_; }
  // Log returns everything the server has written to stdout and stderr.
  std::string Log() const { return ReadWholeFile(log_file_); }

  static std::string DescribeStatus(int status) {
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
  }

 private:
  std::string data_dir_;
  std::string port_file_;
  std::string log_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string vkey_;
};

// ---- HTTP and JSON helpers shared by the end-to-end tests ----

// MakeClient returns a keep-alive client for the server on |port|.
inline std::unique_ptr<httplib::Client> MakeClient(int port) {
  auto cli = std::make_unique<httplib::Client>("127.0.0.1", port);
  cli->set_keep_alive(true);
  cli->set_tcp_nodelay(true);  // else Nagle and delayed ACKs add ~40 ms per POST
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(30, 0);
  cli->set_write_timeout(30, 0);
  return cli;
}

// QueryEscape percent-encodes everything but RFC 3986 unreserved characters.
inline std::string QueryEscape(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// EntriesBody returns {"entries": [base64...]} for a POST /v1/entries.
inline std::string EntriesBody(const std::vector<std::string>& entries) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& e : entries) arr.push_back(ledger::Base64Encode(e));
  return nlohmann::json{{"entries", std::move(arr)}}.dump();
}

// DecodeHash decodes a JSON base64 string of exactly 32 bytes.
inline bool DecodeHash(const nlohmann::json& j, ledger::Hash* out) {
  if (!j.is_string()) return false;
  auto raw = ledger::Base64Decode(j.get<std::string>());
  if (!raw.ok()) return false;
  auto h = ledger::HashFromBytes(*raw);
  if (!h.ok()) return false;
  *out = *h;
  return true;
}

// DecodeHashes decodes a JSON array of base64 hashes.
inline bool DecodeHashes(const nlohmann::json& j, std::vector<ledger::Hash>* out) {
  if (!j.is_array()) return false;
  out->clear();
  for (const auto& h : j) {
    ledger::Hash v;
    if (!DecodeHash(h, &v)) return false;
    out->push_back(v);
  }
  return true;
}

// NaiveRoot is RFC 6962's MTH over leaves[begin, end), written directly
// from the definition, independent of the library's tree code.
inline ledger::Hash NaiveRoot(const std::vector<ledger::Hash>& leaves, uint64_t begin, uint64_t end) {
  uint64_t n = end - begin;
  if (n == 0) return ledger::EmptyTreeRoot();
  if (n == 1) return leaves[begin];
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return ledger::HashChildren(NaiveRoot(leaves, begin, begin + k), NaiveRoot(leaves, begin + k, end));
}

}  // namespace ledger_test

#endif  // LEDGER_TESTS_LEDGERD_PROCESS_H_
