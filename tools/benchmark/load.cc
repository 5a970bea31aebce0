// load: a closed-loop HTTP load generator. C threads each hold one
// keep-alive connection (httplib::Client, TCP_NODELAY) and send the next
// request as soon as the previous answer arrived, rotating through the
// given paths and bodies. Only 2xx answers count as requests; everything
// else (other statuses, connection failures) is counted as an error.
#include <httplib.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "bench.h"
#include "ledger/bytes.h"

namespace bench {
namespace {

constexpr char kUsage[] = R"(Usage: ledger-bench load --url http://HOST:PORT [flags]

Closed-loop load: every connection (one thread, one keep-alive connection)
sends its next request as soon as the previous answer arrived. Requests
rotate through the paths and bodies given; each connection starts at a
different offset. Only 2xx answers are counted as requests (and in the
latency percentiles); other statuses and connection failures are errors.
Prints one JSON object: requests, errors, seconds, rps, p50_ms, p90_ms,
p99_ms, p999_ms, max_ms, mean_ms, an error breakdown, all_requests
(successes including warm-up) and client_cpu_s (this process's CPU time).

Flags:
  --url http://HOST:PORT   server to load                               (required)
  --method GET|POST        request method                               [GET]
  --path P                 request path (with query)                    [/]
  --paths FILE             request paths, one per line (instead of --path)
  --body-file FILE         POST bodies, one per line, rotated
  --content-type T         POST Content-Type                            [application/json]
  --connections C          concurrent connections (threads)             [64]
  --seconds S              measured duration                            [10]
  --warmup S               unmeasured warm-up before it                 [1]
  --unique-entries         make every entry of every POST body unique: the
                           first 16 base64 characters (12 bytes) of each
                           string in the body's "entries" array are replaced
                           by a per-request value (process nonce, thread,
                           counter, position), so rotating bodies never
                           submits duplicates. Entries must be >= 12 bytes.
)";

using Clock = std::chrono::steady_clock;

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read " + path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
  }
  if (lines.empty()) Die(path + " has no lines");
  return lines;
}

// EntryOffsets finds where each string of the "entries" array starts in a
// body of the form {"entries":["...", ...]} (as gen-bodies writes it).
std::vector<size_t> EntryOffsets(const std::string& body) {
  std::vector<size_t> out;
  size_t p = body.find("\"entries\"");
  if (p != std::string::npos) p = body.find('[', p);
  if (p == std::string::npos) Die("--unique-entries: body has no \"entries\" array");
  p++;
  for (;;) {
    while (p < body.size() && (body[p] == ' ' || body[p] == ',' || body[p] == '\n')) p++;
    if (p >= body.size() || body[p] == ']') break;
    if (body[p] != '"') Die("--unique-entries: \"entries\" must hold only strings");
    size_t end = body.find('"', p + 1);
    if (end == std::string::npos) Die("--unique-entries: unterminated string in body");
    if (end - (p + 1) < 16) Die("--unique-entries: every entry must be at least 12 bytes");
    out.push_back(p + 1);
    p = end + 1;
  }
  if (out.empty()) Die("--unique-entries: empty \"entries\" array");
  if (out.size() > 65535) Die("--unique-entries: at most 65535 entries per body");
  return out;
}

struct ThreadResult {
  std::vector<uint32_t> latencies_us;  // successes completed inside the window
  uint64_t ok = 0;
  uint64_t ok_all = 0;  // successes including warm-up and the tail
  std::map<std::string, uint64_t> errors;  // "status_503", "transport_Connection", ...
  std::string first_error;
};

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  if (i >= sorted.size()) i = sorted.size() - 1;
  return sorted[i] / 1000.0;
}

}  // namespace

int LoadMain(int argc, char** argv) {
  Flags flags(argc, argv, 2,
              {"url", "method", "path", "paths", "body-file", "content-type", "connections", "seconds", "warmup"},
              kUsage, {"unique-entries"});
  std::string url = flags.required("url");
  if (url.rfind("http://", 0) != 0) Die("--url must start with http://", 2);
  while (url.size() > 7 && url.back() == '/') url.pop_back();
  std::string method = flags.str("method", "GET");
  if (method != "GET" && method != "POST") Die("--method must be GET or POST", 2);
  std::vector<std::string> paths;
  if (flags.has("paths")) {
    if (flags.has("path")) Die("give --path or --paths, not both", 2);
    paths = ReadLines(flags.str("paths"));
  } else {
    paths.push_back(flags.str("path", "/"));
  }
  std::vector<std::string> bodies;
  if (flags.has("body-file")) {
    if (method != "POST") Die("--body-file needs --method POST", 2);
    bodies = ReadLines(flags.str("body-file"));
  } else if (method == "POST") {
    bodies.push_back("");
  }
  bool unique = flags.has("unique-entries");
  if (unique && !flags.has("body-file")) Die("--unique-entries needs --body-file", 2);
  std::vector<std::vector<size_t>> offsets;
  if (unique)
    for (const auto& b : bodies) offsets.push_back(EntryOffsets(b));
  std::string content_type = flags.str("content-type", "application/json");
  size_t connections = flags.num("connections", 64, 1, 4096);
  double seconds = flags.real("seconds", 10);
  double warmup = flags.real("warmup", 1);
  if (seconds <= 0) Die("--seconds must be positive", 2);

  signal(SIGPIPE, SIG_IGN);
  uint32_t nonce = static_cast<uint32_t>(std::random_device{}());

  std::vector<ThreadResult> results(connections);
  std::atomic<size_t> ready{0};
  std::atomic<bool> go{false};
  Clock::time_point window_start, window_end;

  auto worker = [&](size_t tid) {
    ThreadResult& r = results[tid];
    r.latencies_us.reserve(1 << 16);
    httplib::Client cli(url);
    cli.set_tcp_nodelay(true);
    cli.set_keep_alive(true);
    cli.set_connection_timeout(5, 0);
    cli.set_read_timeout(60, 0);
    cli.set_write_timeout(60, 0);
    // Spread connections over the rotation so they do not move in lockstep.
    size_t pi = tid * 7919 % paths.size();
    size_t bi = bodies.empty() ? 0 : tid * 7919 % bodies.size();
    uint32_t counter = 0;
    std::string body, answer_head;
    ready++;
    while (!go.load()) std::this_thread::yield();
    for (;;) {
      if (Clock::now() >= window_end) break;
      const std::string& path = paths[pi];
      pi = (pi + 1) % paths.size();
      if (method == "POST") {
        body = bodies[bi];
        if (unique) {
          counter++;
          const auto& offs = offsets[bi];
          for (size_t e = 0; e < offs.size(); e++) {
            unsigned char tag[12];
            std::memcpy(tag, &nonce, 4);
            tag[4] = static_cast<unsigned char>(tid >> 8);
            tag[5] = static_cast<unsigned char>(tid);
            std::memcpy(tag + 6, &counter, 4);
            tag[10] = static_cast<unsigned char>(e >> 8);
            tag[11] = static_cast<unsigned char>(e);
            std::string b64 = ledger::Base64Encode(ledger::ByteView(reinterpret_cast<const char*>(tag), 12));
            std::memcpy(&body[offs[e]], b64.data(), 16);
          }
        }
        bi = (bi + 1) % bodies.size();
      }
      // Time only the request itself, not preparing its body.
      auto t0 = Clock::now();
      // GET answers are read and dropped (only their first bytes are kept,
      // for an error message): the load generator shares the cores with the
      // server, and copying tiles into strings is no part of the figure.
      answer_head.clear();
      httplib::Result res = method == "GET" ? cli.Get(path, [&answer_head](const char* data, size_t n) {
                                                if (answer_head.size() < 200)
                                                  answer_head.append(data, std::min(n, 200 - answer_head.size()));
                                                return true;
                                              })
                                            : cli.Post(path.c_str(), body, content_type.c_str());
      auto t1 = Clock::now();
      bool in_window = t1 >= window_start && t1 < window_end;
      if (res && res->status >= 200 && res->status < 300) {
        r.ok_all++;
        if (in_window) {
          r.ok++;
          r.latencies_us.push_back(static_cast<uint32_t>(
              std::min<int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count(), UINT32_MAX)));
        }
      } else {
        std::string kind;
        if (res) {
          kind = "status_" + std::to_string(res->status);
          if (r.first_error.empty()) r.first_error = kind + ": " + (method == "GET" ? answer_head : res->body.substr(0, 200));
        } else {
          kind = "transport_" + httplib::to_string(res.error());
          if (r.first_error.empty()) r.first_error = kind;
        }
        if (in_window) r.errors[kind]++;
        // Do not spin on a dead server.
        if (!res) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(connections);
  for (size_t i = 0; i < connections; i++) threads.emplace_back(worker, i);
  while (ready.load() < connections) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto start = Clock::now();
  window_start = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
  window_end = window_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.store(true);
  for (auto& t : threads) t.join();

  std::vector<uint32_t> all;
  uint64_t ok = 0, ok_all = 0, errors = 0;
  std::map<std::string, uint64_t> error_kinds;
  std::string first_error;
  for (auto& r : results) {
    ok += r.ok;
    ok_all += r.ok_all;
    all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
    for (const auto& [k, v] : r.errors) {
      error_kinds[k] += v;
      errors += v;
    }
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(all.begin(), all.end());
  double sum = 0;
  for (uint32_t v : all) sum += v;
  auto round3 = [](double v) { return std::round(v * 1000.0) / 1000.0; };
  nlohmann::json out;
  out["url"] = url;
  out["method"] = method;
  out["connections"] = connections;
  out["paths"] = paths.size();
  if (!bodies.empty()) out["bodies"] = bodies.size();
  out["seconds"] = seconds;
  out["warmup"] = warmup;
  out["requests"] = ok;
  out["errors"] = errors;
  out["error_kinds"] = error_kinds;
  if (!first_error.empty()) out["first_error"] = first_error;
  out["rps"] = round3(static_cast<double>(ok) / seconds);
  out["p50_ms"] = round3(Percentile(all, 0.50));
  out["p90_ms"] = round3(Percentile(all, 0.90));
  out["p99_ms"] = round3(Percentile(all, 0.99));
  out["p999_ms"] = round3(Percentile(all, 0.999));
  out["all_requests"] = ok_all;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  out["client_cpu_s"] = round3(static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
  out["max_ms"] = round3(all.empty() ? 0 : all.back() / 1000.0);
  out["mean_ms"] = round3(all.empty() ? 0 : sum / static_cast<double>(all.size()) / 1000.0);
  std::cout << out.dump() << std::endl;
  return ok > 0 ? 0 : 1;
}

}  // namespace bench
