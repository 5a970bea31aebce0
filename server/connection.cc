#include "connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace ledgerd {
namespace {

using Clock = std::chrono::steady_clock;
using ledger::Status;

// When the job a pool thread is running was queued: the accept time of the
// connection it serves.
thread_local Clock::time_point current_job_queued_at;
// Whether the current request ran over its byte budget.
thread_local bool request_over_budget = false;

// Pool runs connections on a fixed set of threads, first come first served,
// and tells how many wait for a thread (so idle keep-alive connections can
// make way).
class Pool final : public httplib::TaskQueue {
 public:
  explicit Pool(size_t n) {
    for (size_t i = 0; i < n; i++) threads_.emplace_back([this] { Work(); });
  }
  ~Pool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back({std::move(fn), Clock::now()});
      pending_.store(jobs_.size(), std::memory_order_relaxed);
    }
    cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  size_t pending() const { return pending_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    std::function<void()> fn;
    Clock::time_point queued_at;
  };

  void Work() {
    while (true) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        // On shutdown the queued connections are still served (and closed).
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        pending_.store(jobs_.size(), std::memory_order_relaxed);
      }
      current_job_queued_at = job.queued_at;
      job.fn();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::atomic<size_t> pending_{0};
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// ConnStream is one connection (plain or TLS) as an httplib::Stream whose
// reads and writes give up at the current request's deadlines. The socket
// is non-blocking; waits are poll()s in slices that also watch for the
// server stopping.
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(int fd, SSL* ssl, const ConnectionOptions& options, const std::atomic<int>* listen_fd)
      : fd_(fd), ssl_(ssl), options_(options), listen_fd_(listen_fd) {}

  // BeginRequest starts the deadlines and the byte budget of a request.
  void BeginRequest(Clock::time_point read_deadline) {
    read_deadline_ = read_deadline;
    write_started_ = false;
    response_started_ = false;
    request_bytes_ = 0;
    request_over_budget = false;
  }

  bool HasBuffered() const { return pos_ < end_ || (ssl_ && SSL_pending(ssl_) > 0); }

  // Wait polls for |events| until |deadline|; false on timeout or, for
  // reads, once the server stops (a response, e.g. a receipt for entries
  // already logged, is still sent in full).
  bool Wait(short events, Clock::time_point deadline) const {
    while (true) {
      auto now = Clock::now();
      if (now >= deadline || (events == POLLIN && listen_fd_->load() == INVALID_SOCKET)) return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
      pollfd p{fd_, events, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  bool is_readable() const override { return HasBuffered() || Wait(POLLIN, read_deadline_); }
  bool is_writable() const override { return Wait(POLLOUT, WriteDeadline()); }

  ssize_t read(char* ptr, size_t size) override {
    // httplib reads request and header lines one byte per call.
    if (size == 1 && pos_ < end_) {
      *ptr = buf_[pos_++];
      return 1;
    }
    if (pos_ == end_) {
      ssize_t n = Fill();
      if (n <= 0) return n;
    }
    size_t n = std::min(size, end_ - pos_);
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  // write holds a response's first write (httplib writes the status line
  // and headers, then the body, in two calls) and sends it with the next
  // one, or at Flush: one system call and one TCP segment per small
  // response instead of two.
  ssize_t write(const char* ptr, size_t size) override {
    bool first = !response_started_;
    response_started_ = true;
    if (first && size <= kHoldMax) {
      held_.assign(ptr, size);
      return static_cast<ssize_t>(size);
    }
    if (!held_.empty()) {
      bool ok;
      if (held_.size() + size <= kCoalesceMax) {
        held_.append(ptr, size);
        ok = Send(held_.data(), held_.size());
      } else {
        ok = Send(held_.data(), held_.size()) && Send(ptr, size);
      }
      held_.clear();
      return ok ? static_cast<ssize_t>(size) : -1;
    }
    return Send(ptr, size) ? static_cast<ssize_t>(size) : -1;
  }

  // Flush sends a held write; false if the connection failed.
  bool Flush() {
    if (held_.empty()) return true;
    bool ok = Send(held_.data(), held_.size());
    held_.clear();
    return ok;
  }

  // httplib asks for both addresses on every request; a connection's
  // addresses never change, so each is looked up once (two system calls
  // fewer per request on a kept-alive connection).
  void get_remote_ip_and_port(std::string& ip, int& port) const override { Cached(remote_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Cached(local_, false, ip, port); }
  socket_t socket() const override { return fd_; }

 private:
  static constexpr size_t kHoldMax = 4096;
  static constexpr size_t kCoalesceMax = 65536;

  // Send writes all of [ptr, ptr + size) by the write deadline.
  bool Send(const char* ptr, size_t size) {
    Clock::time_point deadline = WriteDeadline();
    size_t sent = 0;
    while (sent < size) {
      size_t chunk = std::min<size_t>(size - sent, 1 << 20);
      if (ssl_) {
        int n = SSL_write(ssl_, ptr + sent, static_cast<int>(chunk));
        if (n > 0) {
          sent += static_cast<size_t>(n);
          continue;
        }
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_WANT_WRITE ? !Wait(POLLOUT, deadline)
            : err == SSL_ERROR_WANT_READ ? !Wait(POLLIN, deadline)
                                         : true)
          return false;
      } else {
        ssize_t n = send(fd_, ptr + sent, chunk, MSG_NOSIGNAL);
        if (n > 0) {
          sent += static_cast<size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Wait(POLLOUT, deadline)) continue;
        return false;
      }
    }
    return true;
  }

  Clock::time_point WriteDeadline() const {
    if (!write_started_) {
      write_deadline_ = Clock::now() + options_.write_timeout;
      write_started_ = true;
    }
    return write_deadline_;
  }

  // Fill reads what has arrived (waiting up to the read deadline) into the
  // buffer: bytes read, 0 at the end of the stream, -1 on error, timeout or
  // a request over its byte budget.
  ssize_t Fill() {
    // Whatever was written so far (e.g. "100 Continue") must be on its way
    // before waiting for the client.
    if (!Flush()) return -1;
    pos_ = end_ = 0;
    if (request_bytes_ > options_.max_request_bytes) {
      request_over_budget = true;
      return -1;
    }
    while (true) {
      ssize_t n;
      if (ssl_) {
        int r = SSL_read(ssl_, buf_, sizeof buf_);
        if (r > 0) {
          n = r;
        } else {
          int err = SSL_get_error(ssl_, r);
          if (err == SSL_ERROR_ZERO_RETURN) return 0;
          if (err == SSL_ERROR_WANT_READ && Wait(POLLIN, read_deadline_)) continue;
          if (err == SSL_ERROR_WANT_WRITE && Wait(POLLOUT, read_deadline_)) continue;
          return -1;
        }
      } else {
        n = recv(fd_, buf_, sizeof buf_, 0);
        if (n == 0) return 0;
        if (n < 0) {
          if (errno == EINTR) continue;
          if ((errno == EAGAIN || errno == EWOULDBLOCK) && Wait(POLLIN, read_deadline_)) continue;
          return -1;
        }
      }
      request_bytes_ += static_cast<size_t>(n);
      end_ = static_cast<size_t>(n);
      return n;
    }
  }

  struct CachedAddress {
    bool known = false;
    std::string ip;
    int port = 0;
  };

  void Cached(CachedAddress& cache, bool remote, std::string& ip, int& port) const {
    if (!cache.known) {
      Address(remote, cache.ip, cache.port);
      cache.known = true;
    }
    ip = cache.ip;
    port = cache.port;
  }

  void Address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int r = remote ? getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len)
                   : getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    ip.clear();
    port = 0;
    if (r != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  int fd_;
  SSL* ssl_;
  const ConnectionOptions& options_;
  const std::atomic<int>* listen_fd_;
  Clock::time_point read_deadline_;
  mutable Clock::time_point write_deadline_;
  mutable bool write_started_ = false;
  bool response_started_ = false;
  std::string held_;
  size_t request_bytes_ = 0;
  mutable CachedAddress remote_, local_;
  char buf_[16384];
  size_t pos_ = 0, end_ = 0;
};

// DeadlineServer serves each connection with ConnStream instead of
// httplib's own socket loop (see connection.h for why). Base is
// httplib::Server or httplib::SSLServer (whose SSL_CTX it uses).
template <class Base>
class DeadlineServer final : public Base {
 public:
  template <class... Args>
  explicit DeadlineServer(const ConnectionOptions& options, Args&&... args)
      : Base(std::forward<Args>(args)...), options_(options) {
    // Only for the Keep-Alive response header; the loop below enforces them.
    this->set_keep_alive_max_count(options_.keep_alive_max_count);
    this->set_keep_alive_timeout(std::max<time_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(options_.keep_alive_timeout).count()));
    size_t threads = options_.threads;
    this->new_task_queue = [this, threads] {
      auto* pool = new Pool(threads);
      pool_.store(pool);
      return pool;
    };
  }

 private:
  static constexpr bool kTls = std::is_base_of_v<httplib::SSLServer, Base>;

  bool process_and_close_socket(socket_t sock) override {
    Clock::time_point accepted = current_job_queued_at;
    current_job_queued_at = {};
    if (accepted == Clock::time_point{}) accepted = Clock::now();  // not run by Pool
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    SSL* ssl = nullptr;
    if constexpr (kTls) {
      ssl = SSL_new(this->ssl_context());
      if (ssl) {
        SSL_set_fd(ssl, sock);
        SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      }
    }
    ConnStream strm(sock, ssl, options_, &this->svr_sock_);
    bool ret = false;
    Clock::time_point deadline = accepted + options_.read_timeout;
    if (kTls) {
      // A TLS handshake takes round trips, which a client queued past its
      // deadline cannot have made: one that has sent its hello gets up to
      // a second (at most the read timeout) for the handshake and request.
      pollfd p{sock, POLLIN, 0};
      if (poll(&p, 1, 0) == 1)
        deadline = std::max(deadline, Clock::now() + std::min<Clock::duration>(options_.read_timeout, std::chrono::seconds(1)));
    }
    if (!kTls || (ssl && Handshake(ssl, strm, deadline))) {
      size_t count = options_.keep_alive_max_count;
      for (bool first = true; count > 0 && this->svr_sock_.load() != INVALID_SOCKET; first = false, count--) {
        if (!first) {
          if (!WaitForNextRequest(strm)) break;
          deadline = Clock::now() + options_.read_timeout;
        }
        strm.BeginRequest(deadline);
        bool close = count == 1;
        bool closed = false;
        ret = this->process_request(strm, close, closed, nullptr);
        if (!strm.Flush()) ret = false;
        if (!ret || closed || close) break;
      }
    }
    if (ssl) {
      if (ret) SSL_shutdown(ssl);  // best effort close_notify; never waits
      SSL_free(ssl);
    }
    shutdown(sock, SHUT_RDWR);
    close(sock);
    return ret;
  }

  size_t Pending() const {
    Pool* pool = pool_.load();
    return pool ? pool->pending() : 0;
  }

  // WaitForNextRequest waits for a kept-alive connection's next request:
  // false once idle for the keep-alive timeout, idle for kMakeWay while
  // another connection waits for a worker, or when the server stops. (A
  // busy client's next request follows its response within microseconds,
  // so busy connections keep their worker; closing them after every
  // response would cost a new connection per request under load.)
  bool WaitForNextRequest(const ConnStream& strm) const {
    constexpr auto kMakeWay = std::chrono::milliseconds(10);
    Clock::time_point idle_since = Clock::now();
    Clock::time_point until = idle_since + options_.keep_alive_timeout;
    while (!strm.HasBuffered()) {
      if (Pending() > 0 && Clock::now() - idle_since >= kMakeWay) return false;
      if (strm.Wait(POLLIN, std::min(until, Clock::now() + kMakeWay))) return true;
      if (Clock::now() >= until || this->svr_sock_.load() == INVALID_SOCKET) return false;
    }
    return true;
  }

  static bool Handshake(SSL* ssl, const ConnStream& strm, Clock::time_point deadline) {
    while (true) {
      int r = SSL_accept(ssl);
      if (r == 1) return true;
      int err = SSL_get_error(ssl, r);
      if (err == SSL_ERROR_WANT_READ && strm.Wait(POLLIN, deadline)) continue;
      if (err == SSL_ERROR_WANT_WRITE && strm.Wait(POLLOUT, deadline)) continue;
      ERR_clear_error();
      return false;
    }
  }

  const ConnectionOptions options_;
  std::atomic<Pool*> pool_{nullptr};
};

int NoPassphrase(char*, int, int, void*) { return -1; }

// CheckTlsFiles loads the certificate and key the way the server will and
// checks they are a pair, so a mistake stops ledgerd with a clear message.
Status CheckTlsFiles(const std::string& cert_path, const std::string& key_path) {
  struct stat st;
  if (stat(key_path.c_str(), &st) != 0)
    return Status::InvalidArgument("--tls-key " + key_path + ": " + std::strerror(errno));
  if (st.st_mode & 077) {
    char mode[8];
    snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return Status::PermissionDenied("--tls-key " + key_path + " has mode " + mode +
                                    " (readable or writable by others); run: chmod 600 " + key_path);
  }
  std::unique_ptr<FILE, int (*)(FILE*)> cf(fopen(cert_path.c_str(), "r"), fclose);
  if (!cf) return Status::InvalidArgument("--tls-cert " + cert_path + ": " + std::strerror(errno));
  std::unique_ptr<X509, void (*)(X509*)> cert(PEM_read_X509(cf.get(), nullptr, NoPassphrase, nullptr), X509_free);
  ERR_clear_error();
  if (!cert) return Status::InvalidArgument("--tls-cert " + cert_path + " is not a PEM certificate");
  std::unique_ptr<FILE, int (*)(FILE*)> kf(fopen(key_path.c_str(), "r"), fclose);
  if (!kf) return Status::InvalidArgument("--tls-key " + key_path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(PEM_read_PrivateKey(kf.get(), nullptr, NoPassphrase, nullptr),
                                                     EVP_PKEY_free);
  ERR_clear_error();
  if (!key)
    return Status::InvalidArgument("--tls-key " + key_path + " is not an unencrypted PEM private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("--tls-key " + key_path + " is not the key of the certificate in " + cert_path);
  }
  return Status::OK();
}

}  // namespace

bool RequestOverBudget() { return request_over_budget; }

ledger::StatusOr<std::unique_ptr<httplib::Server>> MakeServer(const ConnectionOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty())
    return Status::InvalidArgument("--tls-cert and --tls-key go together");
  if (options.tls_cert.empty()) return std::unique_ptr<httplib::Server>(new DeadlineServer<httplib::Server>(options));
  LEDGER_RETURN_IF_ERROR(CheckTlsFiles(options.tls_cert, options.tls_key));
  auto server = std::make_unique<DeadlineServer<httplib::SSLServer>>(options, options.tls_cert.c_str(),
                                                                     options.tls_key.c_str());
  if (!server->is_valid() || SSL_CTX_check_private_key(server->ssl_context()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("cannot set up TLS with " + options.tls_cert + " and " + options.tls_key);
  }
  return std::unique_ptr<httplib::Server>(std::move(server));
}

}  // namespace ledgerd
