#include "fetcher.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace verifier {
namespace {

using ledger::Status;

// Four attempts with 100, 200, 400 ms of backoff ride out a restarting
// server or a dropped keep-alive connection without hiding a dead log.
constexpr int kAttempts = 4;
// Tiles and bundles are at most 16 MiB; a minute covers slow links.
constexpr time_t kReadTimeoutSeconds = 60;
constexpr time_t kConnectTimeoutSeconds = 10;

class HttpFetcher : public Fetcher {
 public:
  HttpFetcher(std::string base_url, std::string origin, std::string prefix)
      : base_url_(std::move(base_url)), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  ledger::StatusOr<ledger::Bytes> Get(const std::string& path) override {
    std::string target = prefix_ + "/" + path;
    std::string last_error;
    for (int attempt = 0; attempt < kAttempts; attempt++) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 << (attempt - 1)));
      std::unique_ptr<httplib::Client> client = Acquire();
      httplib::Result res = client->Get(target.c_str());
      if (!res) {
        // The connection may be dead; a fresh client reconnects.
        last_error = "cannot fetch " + Describe(path) + ": " + httplib::to_string(res.error());
        continue;
      }
      int status = res->status;
      if (status == 200) {
        ledger::Bytes body = std::move(res->body);
        Release(std::move(client));
        return body;
      }
      Release(std::move(client));
      if (status == 404) return Status::NotFound(Describe(path) + " answered HTTP 404");
      if (status == 429 || status >= 500) {
        last_error = Describe(path) + " answered HTTP " + std::to_string(status);
        continue;
      }
      return Status::IOError(Describe(path) + " answered HTTP " + std::to_string(status));
    }
    return Status::Unavailable(last_error);
  }

  std::string Describe(const std::string& path) const override { return base_url_ + "/" + path; }
  bool is_directory() const override { return false; }

 private:
  std::unique_ptr<httplib::Client> Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(origin_);
    // Nagle + delayed ACK would add ~40 ms to every small tile request.
    c->set_tcp_nodelay(true);
    c->set_keep_alive(true);
    c->set_connection_timeout(kConnectTimeoutSeconds, 0);
    c->set_read_timeout(kReadTimeoutSeconds, 0);
    c->set_write_timeout(kReadTimeoutSeconds, 0);
    // Tiles are immutable and the checkpoint is signed; a redirect to a
    // CDN or mirror is fine because nothing fetched is trusted.
    c->set_follow_location(true);
    return c;
  }

  void Release(std::unique_ptr<httplib::Client> c) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(c));
  }

  std::string base_url_;
  std::string origin_;  // scheme://host:port
  std::string prefix_;  // path under which the log lives, no trailing '/'
  std::mutex mu_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

class DirFetcher : public Fetcher {
 public:
  explicit DirFetcher(std::string dir) : dir_(std::move(dir)) {}

  ledger::StatusOr<ledger::Bytes> Get(const std::string& path) override {
    // Callers build paths from numbers; refuse anything that could leave
    // the mirror.
    if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos)
      return Status::InvalidArgument("bad mirror path " + path);
    std::string file = Describe(path);
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound("no file " + file);
      return Status::IOError("cannot open " + file + ": " + std::strerror(errno));
    }
    ledger::Bytes out;
    struct stat st;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return Status::IOError("cannot read " + file + ": " + std::strerror(err));
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  std::string Describe(const std::string& path) const override { return dir_ + "/" + path; }
  bool is_directory() const override { return true; }

 private:
  std::string dir_;
};

}  // namespace

ledger::StatusOr<std::unique_ptr<Fetcher>> Fetcher::Open(const std::string& location) {
  auto scheme_end = location.find("://");
  if (scheme_end == std::string::npos) {
    std::string dir = location;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    struct stat st;
    if (dir.empty() || ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Status::InvalidArgument("--log must be an http(s):// URL or an existing mirror directory, got \"" +
                                     location + "\"");
    return std::unique_ptr<Fetcher>(new DirFetcher(dir));
  }
  std::string scheme = location.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return Status::InvalidArgument("--log must be an http:// or https:// URL, got \"" + location + "\"");
  size_t host_start = scheme_end + 3;
  size_t path_start = location.find('/', host_start);
  std::string origin = location.substr(0, path_start);
  std::string prefix = path_start == std::string::npos ? "" : location.substr(path_start);
  if (origin.size() == host_start || location.find_first_of("?# ") != std::string::npos)
    return Status::InvalidArgument("--log must be a URL like http://127.0.0.1:8080, got \"" + location + "\"");
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  httplib::Client probe(origin);
  if (!probe.is_valid()) return Status::InvalidArgument("--log: cannot use URL \"" + location + "\"");
  std::string base = origin + prefix;
  return std::unique_ptr<Fetcher>(new HttpFetcher(base, origin, prefix));
}

}  // namespace verifier
