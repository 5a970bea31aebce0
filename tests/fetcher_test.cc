// verifier/fetcher.cc over HTTP against an in-process httplib server: the
// plain-http fast path (200 and 404 with a Content-Length, bodies received
// straight into the result, pooled keep-alive connections) and everything
// it leaves to httplib (redirects, chunked answers, server errors), plus
// connections the server closes (after its keep-alive count, or idle).
// ~3 s, mostly the retry backoff of the 500 case and an idle timeout.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../verifier/fetcher.h"

namespace {

// BinaryBody is |n| pseudo-random bytes with "\r\n\r\n" sprinkled in, so a
// body that is not exactly what was sent cannot pass by luck.
std::string BinaryBody(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  for (size_t i = 0; i + 4 <= n; i += 997) s.replace(i, 4, "\r\n\r\n");
  return s;
}

// TestServer runs an httplib server on 127.0.0.1 and a free port.
struct TestServer {
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::atomic<int> requests{0};

  void Start() {
    port = svr.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { svr.listen_after_bind(); });
    for (int i = 0; i < 500 && !svr.is_running(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(svr.is_running());
  }
  ~TestServer() {
    svr.stop();
    if (thread.joinable()) thread.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port) + "/log"; }
};

}  // namespace

TEST_CASE("fetcher over HTTP: fast path, fallbacks to httplib and closed connections", "[verifier][fetcher]") {
  const std::string big = BinaryBody(300000, 1);     // larger than one read
  const std::string small = BinaryBody(1000, 2);
  TestServer ts;
  ts.svr.set_keep_alive_max_count(3);  // the server closes every third request's connection
  ts.svr.set_keep_alive_timeout(1);
  ts.svr.set_pre_routing_handler([&](const httplib::Request&, httplib::Response&) {
    ts.requests++;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  ts.svr.Get("/log/tile/entries/000", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(big, "application/octet-stream");
  });
  ts.svr.Get("/log/small", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(small, "application/octet-stream");
  });
  ts.svr.Get("/log/empty", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("", "application/octet-stream");
  });
  ts.svr.Get("/log/missing", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("{\"error\":\"no such tile\"}", "application/json");
  });
  ts.svr.Get("/log/moved", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/log/small");
  });
  ts.svr.Get("/log/chunked", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/octet-stream", [&](size_t offset, httplib::DataSink& sink) {
      if (offset < big.size()) {
        sink.write(big.data() + offset, std::min<size_t>(70000, big.size() - offset));
      } else {
        sink.done();
      }
      return true;
    });
  });
  ts.svr.Get("/log/broken", [&](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content("{\"error\":\"down\"}", "application/json");
  });
  ts.Start();

  auto opened = verifier::Fetcher::Open(ts.Url());
  REQUIRE(opened.ok());
  verifier::Fetcher& f = **opened;
  CHECK_FALSE(f.is_directory());

  SECTION("200 and 404 answers, repeated over pooled and server-closed connections") {
    for (int i = 0; i < 7; i++) {
      auto b = f.Get("tile/entries/000");
      REQUIRE(b.ok());
      CHECK(*b == big);
      auto s = f.Get("small");
      REQUIRE(s.ok());
      CHECK(*s == small);
      auto e = f.Get("empty");
      REQUIRE(e.ok());
      CHECK(e->empty());
      auto m = f.Get("missing");
      CHECK(m.status().IsNotFound());
      CHECK(m.status().message() == ts.Url() + "/missing answered HTTP 404");
    }
    // Each fetch is exactly one request: nothing was retried or fetched twice.
    CHECK(ts.requests.load() == 28);
  }

  SECTION("a pooled connection the server closed while idle is replaced") {
    auto a = f.Get("small");
    REQUIRE(a.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past the server's 1 s keep-alive
    auto b = f.Get("tile/entries/000");
    REQUIRE(b.ok());
    CHECK(*b == big);
  }

  SECTION("redirects and chunked answers go through httplib and give the same bytes") {
    auto r = f.Get("moved");
    REQUIRE(r.ok());
    CHECK(*r == small);
    auto c = f.Get("chunked");
    REQUIRE(c.ok());
    CHECK(*c == big);
    auto again = f.Get("small");  // the fast path still works afterwards
    REQUIRE(again.ok());
    CHECK(*again == small);
  }

  SECTION("a server error is retried, then reported as unavailable") {
    int before = ts.requests.load();
    auto e = f.Get("broken");
    CHECK(e.status().code() == ledger::Status::Code::kUnavailable);
    CHECK(e.status().message().find("answered HTTP 500") != std::string::npos);
    // One try on the fast path, then httplib's four attempts.
    CHECK(ts.requests.load() - before == 5);
  }

  SECTION("concurrent fetches each get their own connection and exact bytes") {
    std::vector<std::thread> threads;
    std::atomic<int> good{0};
    for (int t = 0; t < 4; t++) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10; i++) {
          auto b = f.Get(i % 2 ? "tile/entries/000" : "small");
          if (b.ok() && *b == (i % 2 ? big : small)) good++;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(good.load() == 40);
  }
}

TEST_CASE("fetcher over HTTP: an unreachable log is unavailable", "[verifier][fetcher]") {
  // A port that was free a moment ago: bound, then closed without listening.
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  REQUIRE(port > 0);
  auto f = verifier::Fetcher::Open("http://127.0.0.1:" + std::to_string(port));
  REQUIRE(f.ok());
  auto r = (*f)->Get("checkpoint");
  CHECK(r.status().code() == ledger::Status::Code::kUnavailable);
}

TEST_CASE("fetcher: answer heads the plain-http path reads itself, and those it leaves to httplib") {
  constexpr uint64_t kLimit = 1000;
  struct Case {
    const char* head;
    bool accepted;
    int status;
    uint64_t length;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n", true, 200, 12, true},
      {"HTTP/1.1 404 Not Found\r\ncontent-LENGTH:7 \r\nConnection: close\r\n", true, 404, 7, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n", true, 200, 0, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive\r\n", true, 200, 0, true},
      {"HTTP/1.1 200\r\nContent-Length: 1000\r\n", true, 200, 1000, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n", false, 0, 0, false},     // over the limit
      {"HTTP/1.1 200 OK\r\n", false, 0, 0, false},                             // no length
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n", false, 0, 0, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n", false, 0, 0, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n", false, 0, 0, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n", false, 0, 0, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", false, 0, 0, false},
      {"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n", false, 0, 0, false},
      {"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n", false, 0, 0, false},
      {"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n", false, 0, 0, false},
      {"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n", false, 0, 0, false},
      {"HTTP/1.x 200 OK\r\nContent-Length: 0\r\n", false, 0, 0, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3", false, 0, 0, false},            // last line unterminated
      {"", false, 0, 0, false},
  };
  for (const Case& c : cases) {
    INFO(c.head);
    auto head = verifier::ParseResponseHead(c.head, kLimit);
    REQUIRE(head.has_value() == c.accepted);
    if (!c.accepted) continue;
    CHECK(head->status == c.status);
    CHECK(head->content_length == c.length);
    CHECK(head->keep_alive == c.keep_alive);
  }
}
