#include "fetcher.h"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
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
// A Content-Length is trusted for a reservation only up to the largest
// file a log serves; a larger body still arrives, growing as it goes.
constexpr uint64_t kMaxReserve = uint64_t{16} << 20;

// ParseLength reads a Content-Length value (decimal digits only); false if
// it is absent or malformed.
bool ParseLength(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// HeaderIs tells whether |line| is header |name| (lower case, with the
// colon) and sets |value| to its trimmed value.
bool HeaderIs(std::string_view line, std::string_view name, std::string_view* value) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); i++) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != name[i]) return false;
  }
  std::string_view v = line.substr(name.size());
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  *value = v;
  return true;
}

bool EqualsLower(std::string_view v, std::string_view lower) {
  if (v.size() != lower.size()) return false;
  for (size_t i = 0; i < v.size(); i++) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<ResponseHead> ParseResponseHead(std::string_view h, uint64_t max_length) {
  size_t eol = h.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view status_line = h.substr(0, eol);
  // "HTTP/1.x SSS reason"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ')
    return std::nullopt;
  if (status_line[7] != '0' && status_line[7] != '1') return std::nullopt;
  if (status_line.size() > 12 && status_line[12] != ' ') return std::nullopt;
  ResponseHead out;
  for (size_t i = 9; i < 12; i++) {
    if (status_line[i] < '0' || status_line[i] > '9') return std::nullopt;
    out.status = out.status * 10 + (status_line[i] - '0');
  }
  if (out.status != 200 && out.status != 404) return std::nullopt;
  bool close = status_line[7] != '1';  // HTTP/1.0 closes unless told otherwise
  bool have_length = false;
  for (size_t pos = eol + 2; pos < h.size();) {
    size_t e = h.find("\r\n", pos);
    if (e == std::string_view::npos) return std::nullopt;  // every line ends "\r\n"
    std::string_view line = h.substr(pos, e - pos);
    pos = e + 2;
    std::string_view v;
    if (HeaderIs(line, "content-length:", &v)) {
      if (have_length || !ParseLength(std::string(v), &out.content_length)) return std::nullopt;
      have_length = true;
    } else if (HeaderIs(line, "transfer-encoding:", &v)) {
      return std::nullopt;  // chunked: the httplib path reads it
    } else if (HeaderIs(line, "connection:", &v)) {
      if (EqualsLower(v, "close")) close = true;
      if (EqualsLower(v, "keep-alive")) close = false;
    }
  }
  if (!have_length || out.content_length > max_length) return std::nullopt;
  out.keep_alive = !close;
  return out;
}

namespace {

// PlainHttp is the fast path for the one request an audit makes thousands
// of times: GET of a tile or bundle over plain http:// answered 200 or 404
// with a Content-Length. The body is received straight into the returned
// bytes with large recv() calls and socket timeouts (httplib reads 4 KiB at
// a time, each read preceded by a poll(), then copies into its own string:
// ~75 system calls and two copies per 150 KB bundle). Anything else -- a
// redirect, 429/5xx, chunked encoding, a malformed answer, a connection that
// fails -- is left to the httplib path, which handles it as before; so
// PlainHttp never decides a fetch failed.
//
// Thread-safety: Get may be called from any number of threads at once; each
// call uses its own connection from the pool.
class PlainHttp {
 public:
  enum class Result { kOk, kNotFound, kOther };

  PlainHttp(std::string host, std::string port, std::string host_header)
      : host_(std::move(host)), port_(std::move(port)), host_header_(std::move(host_header)) {}
  ~PlainHttp() {
    for (int fd : idle_) ::close(fd);
  }

  // Get fetches |target| into |body|: kOk (200), kNotFound (404), or kOther
  // when the httplib path must do the request.
  Result Get(const std::string& target, ledger::Bytes* body) {
    std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + host_header_ +
                          "\r\nAccept: */*\r\nUser-Agent: ledger-verify\r\nConnection: keep-alive\r\n\r\n";
    // A pooled connection the server has since closed fails at once; one
    // retry on a fresh connection covers that.
    for (int attempt = 0; attempt < 2; attempt++) {
      bool reused = false;
      int fd = Acquire(&reused);
      if (fd < 0) return Result::kOther;
      bool keep = false;
      Result r = Exchange(fd, request, body, &keep);
      if (r != Result::kOther && keep) {
        Release(fd);
      } else {
        ::close(fd);
      }
      if (r != Result::kOther || !reused) return r;
    }
    return Result::kOther;
  }

 private:
  // Largest answer head read; tiles and bundles are at most 16 MiB.
  static constexpr size_t kMaxHead = 64 << 10;
  static constexpr uint64_t kMaxBody = uint64_t{64} << 20;
  static constexpr size_t kReadChunk = 256 << 10;

  int Acquire(bool* reused) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        int fd = idle_.back();
        idle_.pop_back();
        *reused = true;
        return fd;
      }
    }
    *reused = false;
    return Connect();
  }

  void Release(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(fd);
  }

  static void SetTimeout(int fd, int option, time_t seconds) {
    struct timeval tv;
    tv.tv_sec = seconds;
    tv.tv_usec = 0;
    ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
  }

  // Connect opens a connection to the log (-1 on any failure).
  int Connect() {
    struct addrinfo hints;
    std::memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* list = nullptr;
    if (::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &list) != 0) return -1;
    int fd = -1;
    for (struct addrinfo* a = list; a != nullptr; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      // Linux bounds a blocking connect() by the send timeout.
      SetTimeout(fd, SO_SNDTIMEO, kConnectTimeoutSeconds);
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(list);
    if (fd < 0) return -1;
    int one = 1;
    // Nagle + delayed ACK would add ~40 ms to every request.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SetTimeout(fd, SO_SNDTIMEO, kReadTimeoutSeconds);
    SetTimeout(fd, SO_RCVTIMEO, kReadTimeoutSeconds);
    return fd;
  }

  static bool SendAll(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  // RecvSome reads up to |n| bytes into |p|: the count, or 0 at end of
  // stream, on a timeout or on an error.
  static size_t RecvSome(int fd, char* p, size_t n) {
    for (;;) {
      ssize_t r = ::recv(fd, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 ? static_cast<size_t>(r) : 0;
    }
  }

  // Exchange sends the request on |fd| and reads one answer. |keep| tells
  // whether the connection may carry another request.
  Result Exchange(int fd, const std::string& request, ledger::Bytes* body, bool* keep) {
    *keep = false;
    if (!SendAll(fd, request)) return Result::kOther;
    // The head, and whatever part of the body came with it.
    std::string head;
    size_t head_end = std::string::npos;
    size_t scanned = 0;
    while (head_end == std::string::npos) {
      if (head.size() >= kMaxHead) return Result::kOther;
      size_t old = head.size();
      head.resize(old + 16384);
      size_t n = RecvSome(fd, &head[old], 16384);
      head.resize(old + n);
      if (n == 0) return Result::kOther;
      head_end = head.find("\r\n\r\n", scanned > 3 ? scanned - 3 : 0);
      scanned = head.size();
    }
    auto parsed = ParseResponseHead(std::string_view(head.data(), head_end + 2), kMaxBody);
    if (!parsed) return Result::kOther;
    const int status = parsed->status;
    const uint64_t length = parsed->content_length;
    const bool close = !parsed->keep_alive;
    size_t extra = head.size() - (head_end + 4);
    if (extra > length) return Result::kOther;  // more than one answer: not ours
    ledger::Bytes out;
    out.resize(static_cast<size_t>(length));
    if (extra > 0) std::memcpy(&out[0], head.data() + head_end + 4, extra);
    size_t got = extra;
    while (got < length) {
      size_t n = RecvSome(fd, &out[got], std::min<size_t>(length - got, kReadChunk));
      if (n == 0) return Result::kOther;
      got += n;
    }
    *keep = !close;
    if (status == 404) return Result::kNotFound;
    *body = std::move(out);
    return Result::kOk;
  }

  std::string host_;
  std::string port_;
  std::string host_header_;
  std::mutex mu_;
  std::vector<int> idle_;
};

// PlainHttpFor returns the fast path for |origin| ("http://host[:port]"),
// or null when the httplib path must serve every request (https, user
// info, anything unusual in the authority).
std::unique_ptr<PlainHttp> PlainHttpFor(const std::string& origin) {
  const std::string scheme = "http://";
  if (origin.compare(0, scheme.size(), scheme) != 0) return nullptr;
  std::string authority = origin.substr(scheme.size());
  if (authority.empty() || authority.find_first_of("@/?# ") != std::string::npos) return nullptr;
  std::string host, port = "80";
  if (authority[0] == '[') {  // [IPv6]:port
    size_t close = authority.find(']');
    if (close == std::string::npos) return nullptr;
    host = authority.substr(1, close - 1);
    std::string rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return nullptr;
      port = rest.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return nullptr;
  return std::make_unique<PlainHttp>(host, port, authority);
}

// SafeTarget tells whether |target| can go on a request line as it is
// (printable ASCII, no space, query or fragment); otherwise httplib, which
// encodes paths, sends it.
bool SafeTarget(const std::string& target) {
  if (target.empty() || target[0] != '/') return false;
  for (char c : target)
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return false;
  return true;
}

class HttpFetcher : public Fetcher {
 public:
  HttpFetcher(std::string base_url, std::string origin, std::string prefix)
      : base_url_(std::move(base_url)),
        origin_(std::move(origin)),
        prefix_(std::move(prefix)),
        plain_(PlainHttpFor(origin_)) {}

  ledger::StatusOr<ledger::Bytes> Get(const std::string& path) override {
    std::string target = prefix_ + "/" + path;
    if (plain_ && SafeTarget(target)) {
      ledger::Bytes body;
      switch (plain_->Get(target, &body)) {
        case PlainHttp::Result::kOk:
          return body;
        case PlainHttp::Result::kNotFound:
          return Status::NotFound(Describe(path) + " answered HTTP 404");
        case PlainHttp::Result::kOther:
          break;  // redirects, errors, retries: as below
      }
    }
    std::string last_error;
    for (int attempt = 0; attempt < kAttempts; attempt++) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 << (attempt - 1)));
      std::unique_ptr<httplib::Client> client = Acquire();
      // The body goes straight into |body|, sized once from Content-Length:
      // httplib's own std::string body grows by doubling from 4 KiB reads,
      // which for a 150 KB entry bundle meant six reallocations, copies and
      // fresh pages to fault in (measured: ~4 % of an online audit's CPU).
      ledger::Bytes body;
      auto on_response = [&body](const httplib::Response& r) {
        body.clear();  // a retried or redirected request starts over
        uint64_t length = 0;
        if (r.status == 200 && ParseLength(r.get_header_value("Content-Length"), &length))
          body.reserve(static_cast<size_t>(std::min<uint64_t>(length, kMaxReserve)));
        return true;
      };
      auto on_data = [&body](const char* data, size_t n) {
        body.append(data, n);
        return true;
      };
      httplib::Result res = client->Get(target, on_response, on_data);
      if (!res) {
        // The connection may be dead; a fresh client reconnects.
        last_error = "cannot fetch " + Describe(path) + ": " + httplib::to_string(res.error());
        continue;
      }
      int status = res->status;
      if (status == 200) {
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
  std::unique_ptr<PlainHttp> plain_;  // null: every request through httplib
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
    // Read straight into the result, sized from fstat (plus one byte, to
    // see the end in the same loop); a file that grows meanwhile still
    // reads whole, as the buffer then grows.
    ledger::Bytes out;
    struct stat st;
    size_t want = (::fstat(fd, &st) == 0 && st.st_size > 0) ? static_cast<size_t>(st.st_size) + 1 : 1 << 16;
    out.resize(want);
    size_t got = 0;
    for (;;) {
      if (got == out.size()) out.resize(out.size() * 2);
      ssize_t n = ::read(fd, &out[got], out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return Status::IOError("cannot read " + file + ": " + std::strerror(err));
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    out.resize(got);
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
