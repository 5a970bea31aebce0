// Hostile HTTP, access control, rate limits, timeouts and TLS against a real
// ledgerd in ledger mode (SPEC.md §6, §8-§11): every endpoint gets malformed
// input and must answer its documented status with a JSON {"error"} body,
// raw malformed HTTP must be refused cleanly, slow clients must not starve
// others, and afterwards the tree is exactly what it was. See RELIABILITY.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/vrf.h"
#include "ledgerd_process.h"

namespace {

using json = nlohmann::json;
using ledger_test::EntriesBody;
using ledger_test::LedgerdProcess;
using ledger_test::MakeClient;
using ledger_test::QueryEscape;
using ledger_test::TempDir;
using Clock = std::chrono::steady_clock;

std::unique_ptr<ledger::Ed25519Signer> NewKey() {
  auto k = ledger::Ed25519Signer::Generate();
  REQUIRE(k.ok());
  return std::move(*k);
}

std::string Key(const ledger::Ed25519Signer& k) { return ledger::Base64UrlEncode(k.public_key()); }

std::string Now() { return ledger::FormatTime(static_cast<int64_t>(time(nullptr))); }

// ExpectJsonError checks a status and a JSON {"error": "<non-empty>"} body.
void ExpectJsonError(int status, const std::string& content_type, const std::string& body, int want,
                     const std::string& what) {
  INFO(what << " -> " << status << " " << body.substr(0, 300));
  CHECK(status == want);
  CHECK(content_type == "application/json");
  json j = json::parse(body, nullptr, false);
  bool has_error = j.is_object() && j.contains("error") && j["error"].is_string() &&
                   !j["error"].get<std::string>().empty();
  CHECK(has_error);
}

// World is a ledgerd in ledger mode with two holders, their accessors,
// policies and one revoked key, set up through the HTTP API.
//   bank-a: app-1 (keys app1, revoked: revoked), app-2 (key app2)
//   bank-b: app-b (key appb)
class World {
 public:
  World() : server(tmp.path() + "/data") {
    bank_a = NewKey(), bank_b = NewKey(), app1 = NewKey(), app2 = NewKey(), appb = NewKey();
    revoked = NewKey(), stranger = NewKey();
    auto vrf_a = ledger::VrfSecretKey::Generate(), vrf_b = ledger::VrfSecretKey::Generate();
    REQUIRE(vrf_a.ok());
    REQUIRE(vrf_b.ok());
    json holders{{"holders",
                  {{{"name", "bank-a"}, {"signing_key", Key(*bank_a)}, {"vrf_key", ledger::Base64UrlEncode((*vrf_a)->public_key())}},
                   {{"name", "bank-b"}, {"signing_key", Key(*bank_b)}, {"vrf_key", ledger::Base64UrlEncode((*vrf_b)->public_key())}}}}};
    holders_file = tmp.path() + "/holders.json";
    std::ofstream(holders_file) << holders.dump();
    secrets = {ledger::Base64UrlEncode(bank_a->seed()), ledger::Base64UrlEncode(bank_b->seed()),
               ledger::Base64UrlEncode(app1->seed()),   ledger::Base64UrlEncode(app2->seed()),
               ledger::Base64UrlEncode(appb->seed()),   ledger::Base64UrlEncode(revoked->seed()),
               ledger::Base64Encode(app1->seed()),      ledger::Base64UrlEncode((*vrf_a)->seed())};
  }

  void Start(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--holders", holders_file});
    server.Start(extra);
    // The log's private key file: it must never be printed.
    std::string key = ledger_test::TrimTrailingWhitespace(ledger_test::ReadWholeFile(server.data_dir() + "/log.key"));
    REQUIRE(!key.empty());
    secrets.push_back(key);
    secrets.push_back(key.substr(key.size() - 44));  // its base64 key material (33 bytes)
    cli = MakeClient(server.port());
    MustLog({Accessor(*bank_a, "bank-a", "app-1", "authorize", {app1.get(), revoked.get()})});
    MustLog({Accessor(*bank_a, "bank-a", "app-2", "authorize", {app2.get()})});
    MustLog({Accessor(*bank_b, "bank-b", "app-b", "authorize", {appb.get()})});
    MustLog({Policy(*app1, "bank-a", "app-1", 1), Policy(*app2, "bank-a", "app-2", 1), Policy(*appb, "bank-b", "app-b", 1)});
    MustLog({Accessor(*bank_a, "bank-a", "app-1", "revoke", {revoked.get()})});
  }

  static std::string Accessor(const ledger::Ed25519Signer& by, const std::string& holder, const std::string& accessor,
                              const std::string& action, std::vector<const ledger::Ed25519Signer*> keys) {
    ledger::AccessorRecord r;
    r.holder = holder;
    r.accessor = accessor;
    r.action = action == "revoke" ? ledger::AccessorRecord::Action::kRevoke : ledger::AccessorRecord::Action::kAuthorize;
    for (auto* k : keys) r.keys.emplace_back(k->public_key());
    r.time = Now();
    return ledger::SignEnvelope(ledger::kAccessorPayloadType, ledger::EncodeAccessor(r), by);
  }
  static std::string Policy(const ledger::Ed25519Signer& by, const std::string& holder, const std::string& accessor,
                            uint64_t version) {
    ledger::PolicyRecord p;
    p.holder = holder;
    p.accessor = accessor;
    p.version = version;
    p.purposes = {{"CUSTOMER_SUPPORT", {"ACCOUNT_BASIC", "BALANCES"}, 90}};
    p.time = Now();
    return ledger::SignEnvelope(ledger::kPolicyPayloadType, ledger::EncodePolicy(p), by);
  }
  std::string Access(const ledger::Ed25519Signer& by, const std::string& holder, const std::string& accessor) {
    ledger::AccessRecord r;
    r.request_id = "req-" + std::to_string(++request_counter);
    r.accessor = accessor;
    r.holder = holder;
    r.subject = std::string(32, static_cast<char>(request_counter & 0xff));
    r.purpose = "CUSTOMER_SUPPORT";
    r.categories = {"BALANCES"};
    r.consent = "consent-" + std::to_string(request_counter);
    r.time = Now();
    return ledger::SignEnvelope(ledger::kAccessPayloadType, ledger::EncodeAccess(r), by);
  }

  httplib::Result Post(const std::vector<std::string>& entries) {
    return cli->Post("/v1/entries", EntriesBody(entries), "application/json");
  }
  // MustLog posts entries that must all be logged; returns the response.
  json MustLog(const std::vector<std::string>& entries) {
    auto res = Post(entries);
    REQUIRE(res);
    INFO(res->body.substr(0, 500));
    REQUIRE(res->status == 200);
    json j = json::parse(res->body);
    for (const auto& r : j["receipts"]) REQUIRE(r.contains("index"));
    return j;
  }
  // Checkpoint returns the current checkpoint text (size and root line).
  std::string Checkpoint() {
    auto res = cli->Get("/checkpoint");
    REQUIRE(res);
    REQUIRE(res->status == 200);
    return res->body.substr(0, res->body.find("\n\n"));
  }
  // Settle waits until the subject index commitment that follows accesses
  // (SPEC.md §14, --index-interval-ms) is in and the size holds still.
  void Settle() {
    uint64_t last = Size();
    for (int stable = 0; stable < 3;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      uint64_t now = Size();
      stable = now == last ? stable + 1 : 0;
      last = now;
    }
  }
  uint64_t Size() {
    auto res = cli->Get("/healthz");
    REQUIRE(res);
    return json::parse(res->body)["size"].get<uint64_t>();
  }
  // ExpectNoSecrets checks that nothing ledgerd printed or answered holds a
  // key seed or the log's private key.
  void ExpectNoSecrets(const std::string& also = "") {
    std::string seen = server.Log() + also;
    for (const auto& s : secrets) {
      INFO("secret " << s.substr(0, 6) << "... in ledgerd's output or answers");
      CHECK(seen.find(s) == std::string::npos);
    }
  }

  TempDir tmp;
  LedgerdProcess server;
  std::string holders_file;
  std::unique_ptr<ledger::Ed25519Signer> bank_a, bank_b, app1, app2, appb, revoked, stranger;
  std::unique_ptr<httplib::Client> cli;
  std::vector<std::string> secrets;
  int request_counter = 0;
};

// ---- raw sockets ----

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early (e.g. oversize headers)
    off += static_cast<size_t>(n);
  }
}

// ReadUntilClosed reads until the peer closes or |ms| pass without data.
std::string ReadUntilClosed(int fd, int ms) {
  std::string out;
  char buf[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) break;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct RawResponse {
  bool any = false;  // a response arrived
  int status = 0;
  std::string content_type;
  std::string body;
};

// ParseFirst parses the first HTTP response in |raw|.
RawResponse ParseFirst(const std::string& raw) {
  RawResponse r;
  if (raw.rfind("HTTP/1.1 ", 0) != 0) return r;
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.any = true;
  r.status = std::atoi(raw.c_str() + 9);
  std::string head = raw.substr(0, end);
  size_t length = 0;
  std::istringstream lines(head);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon), value = line.substr(colon + 2);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "content-type") r.content_type = value;
    if (name == "content-length") length = std::stoul(value);
  }
  r.body = raw.substr(end + 4, length);
  return r;
}

// RawExchange sends |request| on a fresh connection and returns everything
// the server sends back before closing (or |ms| of silence).
std::string RawExchange(int port, const std::string& request, int ms = 5000, bool half_close = true) {
  int fd = Connect(port);
  SendAll(fd, request);
  if (half_close) shutdown(fd, SHUT_WR);
  std::string out = ReadUntilClosed(fd, ms);
  close(fd);
  return out;
}

}  // namespace

TEST_CASE("hostile HTTP: every endpoint refuses malformed input with its status, nothing changes", "[hostile]") {
  World w;
  // A small --max-body keeps the oversize rows cheap; a short read timeout
  // the stalled rows.
  w.Start({"--max-body", "1048576", "--read-timeout-ms", "1500", "--index-interval-ms", "1"});
  INFO("ledgerd log:\n" << w.server.Log());
  // Accesses to serve proofs of, and a tile's worth of state.
  for (int i = 0; i < 4; i++) w.MustLog({w.Access(*w.app1, "bank-a", "app-1"), w.Access(*w.app2, "bank-a", "app-2")});
  w.Settle();
  const std::string before = w.Checkpoint();
  const uint64_t size = w.Size();
  REQUIRE(size >= 17);  // 2 holders, 3 accessors, 3 policies, 1 revocation, 8 accesses, index commitments
  const std::string n = std::to_string(size);
  const std::string ct = "application/json";

  // A valid access, and variants of it that must be refused.
  const std::string good = w.Access(*w.app1, "bank-a", "app-1");
  auto env = ledger::ParseEnvelope(good);
  REQUIRE(env.ok());
  env->signature[10] ^= 1;
  const std::string bad_sig = ledger::EncodeEnvelope(*env);
  auto envelope = [&](const std::string& payload, const std::string& type = ledger::kAccessPayloadType) {
    return ledger::SignEnvelope(type, payload, *w.app1);
  };
  std::string deep_payload = std::string(5000, '[') + std::string(5000, ']');
  std::string deep(200000, '[');
  std::string deep_closed = deep + std::string(200000, ']');
  std::string deep_objects;
  for (int i = 0; i < 50000; i++) deep_objects += "{\"a\":";
  deep_objects += "1" + std::string(50000, '}');

  struct Row {
    std::string method, path, body, content_type;
    int status;
  };
  std::vector<Row> rows = {
      // POST /v1/entries: JSON shapes.
      {"POST", "/v1/entries", R"({"entries":[")", ct, 400},
      {"POST", "/v1/entries", R"({"entries":["YQ==")", ct, 400},
      {"POST", "/v1/entries", R"({"entr)", ct, 400},
      {"POST", "/v1/entries", deep, ct, 400},
      {"POST", "/v1/entries", deep_closed, ct, 400},
      {"POST", "/v1/entries", deep_objects, ct, 400},
      {"POST", "/v1/entries", R"({"entries":)" + deep_closed + "}", ct, 400},
      {"POST", "/v1/entries", R"({"entries":[)" + deep_closed + "]}", ct, 400},
      {"POST", "/v1/entries", R"({"entries":true})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":{"0":"YQ=="}})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":[1e999]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":[18446744073709551616]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":[-1]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":[null]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":[{}]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":["YQ=="],"entries":["YQ=="]})", ct, 400},
      {"POST", "/v1/entries", "\xEF\xBB\xBF{\"entries\":[\"YQ==\"]}", ct, 400},   // BOM
      {"POST", "/v1/entries", "{\"entries\":[\"\xFF\xFE\"]}", ct, 400},           // invalid UTF-8
      {"POST", "/v1/entries", "{\"entries\":[\"YQ==\"],\"\xC3\x28\":1}", ct, 400},  // invalid UTF-8 key
      {"POST", "/v1/entries", std::string("{\"entries\":[\"YQ==\0\"]}", 21), ct, 400},  // NUL
      {"POST", "/v1/entries", R"({"entries":["YQ=="]} trailing)", ct, 400},
      // Bad base64.
      {"POST", "/v1/entries", R"({"entries":["%%%%"]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":["YQ="]})", ct, 400},
      {"POST", "/v1/entries", R"({"entries":["Y\u0051=="]})", ct, 400},  // escapes decode to "YQ==": not an envelope
      {"POST", "/v1/entries", R"({"entries":["====")" + std::string("\"]}"), ct, 400},
      // Ledger mode: entries that are not valid signed envelopes.
      {"POST", "/v1/entries", EntriesBody({"hello"}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({good + " "}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({bad_sig}), ct, 403},
      {"POST", "/v1/entries", EntriesBody({good, bad_sig}), ct, 403},
      {"POST", "/v1/entries", EntriesBody({good, "x"}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope(deep_payload)}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope("{\"request_id\":\"\xFF\"}")}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope("not json")}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope("{}")}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope(R"({"holder":"bank-a","accessor":"app-1","version":18446744073709551616,"purposes":[{"purpose":"CUSTOMER_SUPPORT","categories":["BALANCES"]}],"time":"2026-12-01T10:00:00Z"})", ledger::kPolicyPayloadType)}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope(R"({"holder":"bank-a","accessor":"app-1","version":-1,"purposes":[{"purpose":"CUSTOMER_SUPPORT","categories":["BALANCES"]}],"time":"2026-12-01T10:00:00Z"})", ledger::kPolicyPayloadType)}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope(R"({"holder":"bank-a","accessor":"app-1","version":1e300,"purposes":[{"purpose":"CUSTOMER_SUPPORT","categories":["BALANCES"]}],"time":"2026-12-01T10:00:00Z"})", ledger::kPolicyPayloadType)}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope(R"({"holder":"bank-a","accessor":"app-1","version":"2","purposes":[{"purpose":"CUSTOMER_SUPPORT","categories":["BALANCES"]}],"time":"2026-12-01T10:00:00Z"})", ledger::kPolicyPayloadType)}), ct, 400},
      {"POST", "/v1/entries", EntriesBody({envelope(R"({"holder":"bank-a","accessor":"app-1","version":2,"purposes":[{"purpose":"CUSTOMER_SUPPORT","categories":["BALANCES"],"retention_days":4294967297}],"time":"2026-12-01T10:00:00Z"})", ledger::kPolicyPayloadType)}), ct, 400},
      // Sizes.
      {"POST", "/v1/entries", EntriesBody({std::string(70000, 'e')}), ct, 413},
      {"POST", "/v1/entries", EntriesBody({std::string(900000, 'e')}), ct, 413},
      {"POST", "/v1/entries", "{\"entries\":[\"" + std::string(2 << 20, 'A') + "\"]}", ct, 413},
      {"POST", "/v1/entries", EntriesBody(std::vector<std::string>(1001, good)), ct, 400},
      // Content types.
      {"POST", "/v1/entries", EntriesBody({good}), "application/json-seq", 415},
      // (A malformed multipart body is refused by the HTTP layer, which
      // parses it before any handler: 400.)
      {"POST", "/v1/entries", EntriesBody({good}), "multipart/form-data; boundary=x", 400},
      {"POST", "/v1/entries", EntriesBody({good}), "APPLICATION/JSONX", 415},
      {"POST", "/v1/entries", EntriesBody({good}), "text/plain; charset=utf-8", 415},
      // Queries: huge, negative, beyond the tree, invalid UTF-8, overlong.
      {"POST", "/v1/entries?proof=tlog&proof=tlog", EntriesBody({good}), ct, 400},
      {"POST", "/v1/entries?%FF=1", EntriesBody({good}), ct, 400},
      {"GET", "/checkpoint?%FF%FE=1", "", "", 400},
      {"GET", "/checkpoint?a=%FF", "", "", 400},
      {"GET", "/v1/entries/" + n, "", "", 404},
      {"GET", "/v1/entries/99999999999999999999999", "", "", 400},
      {"GET", "/v1/entries/-0", "", "", 400},
      {"GET", "/v1/entries/%FF", "", "", 400},
      {"GET", "/v1/entries/%00", "", "", 400},
      {"GET", "/v1/entries/1%00", "", "", 400},
      {"GET", "/v1/entries/1?x=%C3%28", "", "", 400},
      {"GET", "/v1/proof/inclusion?index=0&size=" + std::to_string(size + 1), "", "", 404},
      {"GET", "/v1/proof/inclusion?index=18446744073709551615&size=18446744073709551615", "", "", 404},
      {"GET", "/v1/proof/inclusion?index=-5", "", "", 400},
      {"GET", "/v1/proof/inclusion?index=" + std::string(5000, '9'), "", "", 400},
      {"GET", "/v1/proof/inclusion?index=%FF", "", "", 400},
      {"GET", "/v1/proof/consistency?from=" + n + "&to=18446744073709551615", "", "", 404},
      {"GET", "/v1/proof/consistency?from=18446744073709551615", "", "", 400},
      {"GET", "/v1/proof/consistency?from=-1&to=-1", "", "", 400},
      {"GET", "/v1/proof/by-hash?hash=" + QueryEscape(std::string(44, '=')), "", "", 400},
      {"GET", "/v1/proof/by-hash?hash=%FF%FF", "", "", 400},
      {"GET", "/v1/proof/by-hash?hash=" + QueryEscape(ledger::Base64Encode(std::string(33, 'h'))), "", "", 400},
      {"GET", "/v1/proof/by-hash?hash=" + QueryEscape(ledger::Base64Encode(std::string(32, 'h'))), "", "", 404},
      {"GET", "/v1/proof/tlog-proof?index=" + n, "", "", 404},
      {"GET", "/v1/proof/tlog-proof?index=18446744073709551616", "", "", 400},
      {"GET", "/tile/0/000.p/" + std::to_string(size + 1), "", "", 404},
      {"GET", "/tile/0/x999/x999/x999/x999/x999/999", "", "", 404},
      {"GET", "/tile/entries/x999/x999/x999/x999/x999/999.p/255", "", "", 404},
      {"GET", "/tile/0/x999/999/999/999/999/999", "", "", 400},
      {"GET", "/tile/0/%FF", "", "", 400},
      {"GET", "/tile/-1/000", "", "", 400},
      {"GET", "/tile/0/000.p/-1", "", "", 400},
      {"GET", "/tile/entries/000.p/99999999999999999999", "", "", 400},
      {"GET", "/tile/" + std::string(3000, '0'), "", "", 400},
      {"GET", "/healthz?x=1", "", "", 400},
      {"GET", "/metrics?x=1", "", "", 400},
      {"GET", "/" + std::string(9000, 'a'), "", "", 414},
      // Wrong methods.
      {"PUT", "/checkpoint", "x", "text/plain", 405},
      {"DELETE", "/tile/entries/000", "", "", 405},
      {"PATCH", "/v1/entries", EntriesBody({good}), ct, 405},
      {"GET", "/v1/entries", "", "", 405},
      {"PUT", "/v1/entries/0", "", ct, 405},
      {"POST", "/v1/proof/consistency?from=1", "", ct, 405},
      {"DELETE", "/v1/proof/by-hash", "", "", 405},
      {"OPTIONS", "/v1/proof/tlog-proof", "", "", 405},
      {"POST", "/healthz", "{}", ct, 405},
      {"DELETE", "/metrics", "", "", 405},
  };
  std::string bodies;
  int checked = 0;
  for (const auto& r : rows) {
    httplib::Result res(nullptr, httplib::Error::Unknown);
    const char* ctype = r.content_type.c_str();
    if (r.method == "GET") res = w.cli->Get(r.path.c_str());
    else if (r.method == "POST") res = w.cli->Post(r.path.c_str(), r.body, ctype);
    else if (r.method == "PUT") res = w.cli->Put(r.path.c_str(), r.body, ctype);
    else if (r.method == "PATCH") res = w.cli->Patch(r.path.c_str(), r.body, ctype);
    else if (r.method == "DELETE") res = w.cli->Delete(r.path.c_str());
    else if (r.method == "OPTIONS") res = w.cli->Options(r.path.c_str());
    std::string what = r.method + " " + r.path.substr(0, 100) + " [" + r.content_type + "] " + r.body.substr(0, 100);
    INFO(what);
    REQUIRE(res);
    ExpectJsonError(res->status, res->get_header_value("Content-Type"), res->body, r.status, what);
    if (r.status == 405) CHECK(!res->get_header_value("Allow").empty());
    // Nothing was logged by this row.
    if (res->status == 413 || res->status == 414) w.cli = MakeClient(w.server.port());
    CHECK(w.Size() == size);
    bodies += res->body;
    checked++;
  }
  // HEAD of a GET route answers like GET without a body.
  auto head = w.cli->Head("/v1/entries/99");
  REQUIRE(head);
  CHECK(head->status == 404);

  // Raw HTTP: malformed request lines, headers, lengths and chunking. Each
  // gets a JSON 4xx (status > 0 here) or, where the bytes cannot be
  // answered (status 0), a closed connection; never a crash or a hang.
  struct RawRow {
    std::string what, request;
    int status;
  };
  const std::string body = EntriesBody({good});
  std::vector<RawRow> raw = {
      {"garbage request line", "GARBAGE\r\n\r\n", 400},
      {"no path", "GET\r\n\r\n", 400},
      {"bad version", "GET /healthz HTTP/9.9\r\n\r\n", 400},
      {"lower-case version", "GET /healthz http/1.1\r\n\r\n", 400},
      {"NUL in request line", std::string("GET /health\0z HTTP/1.1\r\n\r\n", 26), 400},
      {"unknown method", "BREW /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"TRACE", "TRACE /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"header line over 8 KiB", "GET /healthz HTTP/1.1\r\nX-A: " + std::string(9000, 'a') + "\r\n\r\n", 400},
      {"request line over 8 KiB", "GET /v1/entries/" + std::string(10000, '1') + " HTTP/1.1\r\n\r\n", 414},
      {"Content-Length: abc",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n" + body, 400},
      {"Content-Length: -1",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n" + body, 413},
      {"Content-Length: 2^64",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 18446744073709551616\r\n\r\n" + body,
       413},
      {"Content-Length beyond --max-body",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048577\r\n\r\n" + body, 413},
      {"Content-Length beyond the bytes sent", "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n" + body, 400},
      {"POST without Content-Type", "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: " +
       std::to_string(body.size()) + "\r\n\r\n" + body, 415},
      {"two Content-Lengths", "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: " +
       std::to_string(body.size()) + "\r\n\r\n" + body, 400},
      {"Content-Length and chunked", "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400},
      {"chunk size not hex",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body, 400},
      {"chunk size overflow",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nab\r\n0\r\n\r\n", 400},
      {"chunk shorter than its size",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc\r\n0\r\n\r\n", 400},
      {"chunk without CRLF",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400},
      {"chunked beyond --max-body",
       "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
           [] {
             std::string s;
             for (int i = 0; i < 40; i++) s += "8000\r\n" + std::string(0x8000, 'a') + "\r\n";
             return s + "0\r\n\r\n";
           }(),
       413},
  };
  for (const auto& r : raw) {
    std::string got = RawExchange(w.server.port(), r.request);
    RawResponse resp = ParseFirst(got);
    INFO(r.what << ": got " << got.substr(0, 300));
    if (r.status == 0) {
      CHECK(!resp.any);
    } else {
      REQUIRE(resp.any);
      ExpectJsonError(resp.status, resp.content_type, resp.body, r.status, r.what);
      bodies += resp.body;
    }
    checked++;
  }

  // Many headers: bounded by the request's byte budget, never unbounded.
  {
    std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    while (req.size() < (3u << 20)) req += "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    req += "\r\n";
    std::string got = RawExchange(w.server.port(), req);
    RawResponse resp = ParseFirst(got);
    INFO("3 MiB of headers: got " << got.substr(0, 200));
    if (resp.any) ExpectJsonError(resp.status, resp.content_type, resp.body, 413, "3 MiB of headers");
    checked++;
  }

  // After everything: the server is up and the tree is what it was.
  w.cli = MakeClient(w.server.port());
  CHECK(w.server.running());
  CHECK(!w.server.Exited());
  CHECK(w.Checkpoint() == before);
  CHECK(w.Size() == size);
  // And it still appends.
  json appended = w.MustLog({good});
  CHECK(appended["receipts"][0]["index"] == size);
  w.ExpectNoSecrets(bodies);
  WARN("hostile HTTP rows checked: " << checked);
  w.cli.reset();
  CHECK(w.server.Stop() == 0);
}

namespace {

// Attacker holds slow connections open against a server, reconnecting
// whenever the server closes one: dribblers send a request header a byte
// at a time, idlers connect and send nothing, keep-alive idlers send one
// request and then wait.
class Attacker {
 public:
  Attacker(int port, int dribblers, int idlers, int keepalive_idlers) : port_(port) {
    for (int i = 0; i < dribblers; i++) conns_.push_back({-1, kDribbler});
    for (int i = 0; i < idlers; i++) conns_.push_back({-1, kIdler});
    for (int i = 0; i < keepalive_idlers; i++) conns_.push_back({-1, kKeepAlive});
    for (auto& c : conns_) Open(c);
    thread_ = std::thread([this] { Run(); });
  }
  ~Attacker() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (auto& c : conns_)
      if (c.fd >= 0) close(c.fd), c.fd = -1;
  }
  int closed_by_server() const { return closed_.load(); }

 private:
  enum Kind { kDribbler, kIdler, kKeepAlive };
  struct Conn {
    int fd;
    Kind kind;
    size_t sent = 0;
  };
  void Open(Conn& c) {
    c.fd = Connect(port_);
    c.sent = 0;
    if (c.kind == kKeepAlive) SendAll(c.fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  void Run() {
    const std::string header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100000, 'a');
    while (!stop_) {
      for (auto& c : conns_) {
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
        bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
        if (!gone && c.kind == kDribbler) {
          gone = send(c.fd, header.data() + (c.sent % header.size()), 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
                 errno != EAGAIN;
          c.sent++;
        }
        if (gone) {
          closed_++;
          close(c.fd);
          Open(c);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  int port_;
  std::vector<Conn> conns_;
  std::atomic<bool> stop_{false};
  std::atomic<int> closed_{0};
  std::thread thread_;
};

// TimedGet fetches |path| on a fresh connection: status (0 if none) and
// seconds taken.
std::pair<int, double> TimedGet(int port, const std::string& path) {
  auto start = Clock::now();
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(20, 0);
  auto res = cli.Get(path.c_str());
  return {res ? res->status : 0, std::chrono::duration<double>(Clock::now() - start).count()};
}

}  // namespace

TEST_CASE("hostile HTTP: slow clients, idle connections and slow readers do not starve others", "[hostile]") {
  TempDir tmp;
  LedgerdProcess server(tmp.path() + "/data");
  // Two workers against dozens of slow connections; 1 s timeouts.
  server.Start({"--entries", "opaque", "--threads", "2", "--read-timeout-ms", "1000", "--write-timeout-ms", "1000",
                "--keep-alive-ms", "5000"});
  INFO("ledgerd log:\n" << server.Log());
  auto cli = MakeClient(server.port());
  // A 1 MB entry bundle for the slow readers.
  std::vector<std::string> entries;
  for (int i = 0; i < 256; i++) entries.push_back(std::to_string(i) + std::string(4000, 'b'));
  auto res = cli->Post("/v1/entries", EntriesBody(entries), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  cli.reset();

  double worst = 0;
  SECTION("slowloris: 24 dribbling, 12 idle and 6 idle keep-alive connections") {
    Attacker attacker(server.port(), 24, 12, 6);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int i = 0; i < 6; i++) {
      auto [status, seconds] = TimedGet(server.port(), "/healthz");
      INFO("request " << i << " took " << seconds << " s");
      CHECK(status == 200);
      // Served within about the read timeout (1 s), never held up by the
      // slow connections for long (without the bound: never; the margin
      // is for a loaded CI machine).
      CHECK(seconds < 8.0);
      worst = std::max(worst, seconds);
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
    // The server cut slow connections off (and the attacker reconnected).
    CHECK(attacker.closed_by_server() > 10);
    attacker.Stop();
  }
  SECTION("slow readers: 1 MB responses never read hold both workers") {
    std::vector<int> fds;
    for (int i = 0; i < 2; i++) {
      // A tiny receive window, so the server's write blocks at once.
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      REQUIRE(fd >= 0);
      int small = 2048;
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(server.port()));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      // Pipelined: the first responses fit the kernel's buffers, a later
      // one blocks.
      for (int j = 0; j < 8; j++) SendAll(fd, "GET /tile/entries/000 HTTP/1.1\r\nHost: x\r\n\r\n");
      fds.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int i = 0; i < 3; i++) {
      auto [status, seconds] = TimedGet(server.port(), "/healthz");
      INFO("request " << i << " took " << seconds << " s");
      CHECK(status == 200);
      CHECK(seconds < 8.0);  // about the write timeout (1 s)
      worst = std::max(worst, seconds);
    }
    for (int fd : fds) close(fd);
  }
  WARN("slowest request served beside the slow clients: " << worst << " s (timeouts 1 s)");
  CHECK(server.running());
  CHECK(server.Stop() == 0);
}

TEST_CASE("access control: unknown, revoked and wrong-holder keys, wrong signers, replays", "[hostile]") {
  World w;
  w.Start();
  INFO("ledgerd log:\n" << w.server.Log());
  w.Settle();
  const std::string before = w.Checkpoint();
  const uint64_t size = w.Size();
  std::string bodies;

  struct Row {
    std::string what, entry;
    int status;
    std::string reason;  // the refusal reason starts with this
  };
  std::vector<Row> rows = {
      {"access signed by an unknown key", w.Access(*w.stranger, "bank-a", "app-1"), 403, "unauthorised key"},
      {"access signed by a revoked key", w.Access(*w.revoked, "bank-a", "app-1"), 403, "revoked key"},
      {"access with another accessor's key", w.Access(*w.app2, "bank-a", "app-1"), 403, "unauthorised key"},
      {"access for bank-a with bank-b's accessor key", w.Access(*w.appb, "bank-a", "app-b"), 403, "unauthorised key"},
      {"access naming bank-b with bank-a's accessor key", w.Access(*w.app1, "bank-b", "app-1"), 403, "unauthorised key"},
      {"access for an unknown holder", w.Access(*w.app1, "bank-z", "app-1"), 403, "unknown holder"},
      {"accessor entry for bank-a signed by bank-b", World::Accessor(*w.bank_b, "bank-a", "app-1", "authorize", {w.stranger.get()}), 403, "unauthorised key"},
      {"accessor entry signed by an accessor key", World::Accessor(*w.app1, "bank-a", "app-1", "authorize", {w.stranger.get()}), 403, "unauthorised key"},
      {"accessor entry re-authorising a revoked key", World::Accessor(*w.bank_a, "bank-a", "app-1", "authorize", {w.revoked.get()}), 409, "revoked key"},
      {"policy signed by an unknown key", World::Policy(*w.stranger, "bank-a", "app-1", 2), 403, "unauthorised key"},
      {"policy signed by a revoked key", World::Policy(*w.revoked, "bank-a", "app-1", 2), 403, "revoked key"},
      {"policy for bank-b's accessor by bank-a's key", World::Policy(*w.app1, "bank-b", "app-b", 2), 403, "unauthorised key"},
      {"holder entry not signed by the log", [&] {
         ledger::HolderRecord h{"bank-c", std::string(w.stranger->public_key()), std::string(32, 'v'), Now()};
         return ledger::SignEnvelope(ledger::kHolderPayloadType, ledger::EncodeHolder(h), *w.stranger);
       }(), 403, "unauthorised key"},
  };
  for (const auto& r : rows) {
    auto res = w.Post({r.entry});
    REQUIRE(res);
    ExpectJsonError(res->status, res->get_header_value("Content-Type"), res->body, r.status, r.what);
    json j = json::parse(res->body, nullptr, false);
    INFO(r.what << ": " << res->body);
    CHECK(j.value("error", "").rfind(r.reason, 0) == 0);
    bodies += res->body;
  }
  w.Settle();
  CHECK(w.Checkpoint() == before);
  CHECK(w.Size() == size);

  // A request mixing authorised and unauthorised entries logs only the
  // authorised ones (207).
  auto mixed = w.Post({w.Access(*w.app1, "bank-a", "app-1"), w.Access(*w.stranger, "bank-a", "app-1")});
  REQUIRE(mixed);
  CHECK(mixed->status == 207);
  json mj = json::parse(mixed->body);
  CHECK(mj["refused"] == 1);
  CHECK(mj["receipts"][0]["index"] == size);
  CHECK(mj["receipts"][1]["status"] == 403);

  // Exact replays: the original receipt, the same index, nothing new.
  std::string access = w.Access(*w.app1, "bank-a", "app-1");
  json first = w.MustLog({access});
  uint64_t index = first["receipts"][0]["index"].get<uint64_t>();
  w.Settle();
  uint64_t settled = w.Size();
  for (int i = 0; i < 3; i++) {
    json again = w.MustLog({access});
    CHECK(again["receipts"][0]["index"] == index);
    CHECK(again["receipts"][0]["duplicate"] == true);
    CHECK(again["receipts"][0]["leaf_hash"] == first["receipts"][0]["leaf_hash"]);
  }
  // Replays of set-up entries (an authorisation, a policy) too.
  std::string policy = World::Policy(*w.app2, "bank-a", "app-2", 2);
  json p1 = w.MustLog({policy});
  json p2 = w.MustLog({policy});
  CHECK(p2["receipts"][0]["duplicate"] == true);
  CHECK(p2["receipts"][0]["index"] == p1["receipts"][0]["index"]);
  CHECK(w.Size() == settled + 1);
  // The same request id with another payload is refused (409).
  auto env = ledger::ParseEnvelope(access);
  REQUIRE(env.ok());
  auto rec = ledger::ParseAccess(env->payload);
  REQUIRE(rec.ok());
  rec->detail = "changed";
  auto reused = w.Post({ledger::SignEnvelope(ledger::kAccessPayloadType, ledger::EncodeAccess(*rec), *w.app1)});
  REQUIRE(reused);
  ExpectJsonError(reused->status, reused->get_header_value("Content-Type"), reused->body, 409, "request id reused");
  bodies += reused->body;
  w.ExpectNoSecrets(bodies);
  w.cli.reset();
  CHECK(w.server.Stop() == 0);
  w.ExpectNoSecrets(bodies);
}

TEST_CASE("rate limits: 429 with Retry-After per accessor, nothing logged, others unaffected", "[hostile]") {
  SECTION("exceeding: 429 before anything is queued; other accessors unaffected; counted") {
    // 0.01 entries/s: no refill during the test, so the counts are exact.
    World w;
    w.Start({"--rate-limit", "0.01", "--rate-burst", "5"});
    INFO("ledgerd log:\n" << w.server.Log());
    // Set-up spent one token of app-1, app-2 and app-b (their policies).
    std::vector<std::string> four;
    for (int i = 0; i < 4; i++) four.push_back(w.Access(*w.app1, "bank-a", "app-1"));
    w.MustLog(four);

    const std::string over = w.Access(*w.app1, "bank-a", "app-1");
    auto res = w.Post({over});
    REQUIRE(res);
    ExpectJsonError(res->status, res->get_header_value("Content-Type"), res->body, 429, "app-1 over its rate");
    CHECK(res->body.find("bank-a/app-1") != std::string::npos);
    std::string retry = res->get_header_value("Retry-After");
    INFO("Retry-After: " << retry);
    CHECK(std::atoi(retry.c_str()) >= 90);  // one token at 0.01/s
    // Nothing of the refused request was logged, now or later.
    auto leaf = QueryEscape(ledger::Base64Encode(ledger::HashView(ledger::HashLeaf(over))));
    w.Settle();
    auto by_hash = w.cli->Get(("/v1/proof/by-hash?hash=" + leaf).c_str());
    REQUIRE(by_hash);
    CHECK(by_hash->status == 404);
    // A request mixing app-1 and app-2 is refused whole: app-2 keeps its tokens.
    auto both = w.Post({w.Access(*w.app2, "bank-a", "app-2"), w.Access(*w.app1, "bank-a", "app-1")});
    REQUIRE(both);
    CHECK(both->status == 429);

    // Entries naming app-2 signed by an unauthorised key draw on that key's
    // bucket, not app-2's.
    int forged_429 = 0;
    for (int i = 0; i < 8; i++) {
      auto forged = w.Post({w.Access(*w.stranger, "bank-a", "app-2")});
      REQUIRE(forged);
      CHECK((forged->status == 403 || forged->status == 429));
      forged_429 += forged->status == 429;
    }
    CHECK(forged_429 == 3);  // burst 5, then refused before the rules see them
    std::vector<std::string> app2;
    for (int i = 0; i < 4; i++) app2.push_back(w.Access(*w.app2, "bank-a", "app-2"));
    w.MustLog(app2);
    w.MustLog({w.Access(*w.appb, "bank-b", "app-b")});

    auto metrics = w.cli->Get("/metrics");
    REQUIRE(metrics);
    INFO(metrics->body);
    CHECK(metrics->body.find("ledger_rate_limited_requests_total 5\n") != std::string::npos);
    CHECK(metrics->body.find("ledger_rate_limited_entries_total 6\n") != std::string::npos);
    CHECK(metrics->body.find("status=\"429\"") != std::string::npos);
    w.cli.reset();
    CHECK(w.server.Stop() == 0);
  }
  SECTION("after waiting Retry-After, accepted; a batch over the burst leaves a debt") {
    World w;
    w.Start({"--rate-limit", "2", "--rate-burst", "2"});
    INFO("ledgerd log:\n" << w.server.Log());
    // Spend until refused (refill is 2/s, so a few tries at most).
    httplib::Result res(nullptr, httplib::Error::Unknown);
    for (int i = 0; i < 20; i++) {
      res = w.Post({w.Access(*w.app1, "bank-a", "app-1")});
      REQUIRE(res);
      if (res->status == 429) break;
      CHECK(res->status == 200);
    }
    REQUIRE(res->status == 429);
    int retry = std::atoi(res->get_header_value("Retry-After").c_str());
    CHECK(retry >= 1);
    // Waiting as told is enough; a full bucket (2 s) takes a batch of 6.
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 * retry + 1100));
    std::vector<std::string> six;
    for (int i = 0; i < 6; i++) six.push_back(w.Access(*w.app1, "bank-a", "app-1"));
    w.MustLog(six);
    // The debt of 4 must be waited out: at least 2 s.
    auto debt = w.Post({w.Access(*w.app1, "bank-a", "app-1")});
    REQUIRE(debt);
    CHECK(debt->status == 429);
    CHECK(std::atoi(debt->get_header_value("Retry-After").c_str()) >= 2);
    w.cli.reset();
    CHECK(w.server.Stop() == 0);
  }
}

TEST_CASE("ledgerd refuses a log key file readable by others, and prints no secrets", "[hostile]") {
  TempDir tmp;
  std::string data = tmp.path() + "/data";
  {
    LedgerdProcess server(data);
    server.Start({"--demo"});
    CHECK(server.Stop() == 0);
  }
  std::string key = ledger_test::TrimTrailingWhitespace(ledger_test::ReadWholeFile(data + "/log.key"));
  REQUIRE(!key.empty());
  struct stat st;
  REQUIRE(stat((data + "/log.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    REQUIRE(chmod((data + "/log.key").c_str(), mode) == 0);
    std::string out;
    FILE* f = popen((std::string(LEDGERD_PATH) + " --data " + data + " --listen 127.0.0.1:0 2>&1").c_str(), "r");
    REQUIRE(f != nullptr);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    int st2 = pclose(f);
    INFO("mode " << std::oct << mode << ": " << out);
    CHECK(WIFEXITED(st2));
    CHECK(WEXITSTATUS(st2) != 0);
    CHECK(out.find("chmod 600") != std::string::npos);
    CHECK(out.find(key) == std::string::npos);
  }
  REQUIRE(chmod((data + "/log.key").c_str(), 0600) == 0);
  // With the mode fixed it starts again; nothing it prints holds a secret
  // (the log key, the demo's key seeds).
  LedgerdProcess server(data);
  server.Start({"--demo"});
  CHECK(server.Stop() == 0);
  std::string log = server.Log();
  std::vector<std::string> secrets = {key, key.substr(key.size() - 44)};  // its base64 key material
  for (const char* file : {"holder.key", "accessor.key", "holder-vrf.key"}) {
    json k = json::parse(ledger_test::ReadWholeFile(data + "/demo/" + file), nullptr, false);
    REQUIRE(k.is_object());
    secrets.push_back(k["seed"].get<std::string>());
  }
  for (const auto& s : secrets) {
    INFO("secret " << s.substr(0, 6) << "... printed by ledgerd");
    CHECK(log.find(s) == std::string::npos);
  }
}

namespace {

// RunLedgerd runs ledgerd to completion with |args|: exit status and output.
int RunLedgerd(const std::string& args, std::string* out) {
  FILE* f = popen((std::string(LEDGERD_PATH) + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  return pclose(f);
}

// SelfSigned writes a self-signed P-256 certificate for 127.0.0.1 and its
// key (mode 0600) with the openssl command.
void SelfSigned(const std::string& cert, const std::string& key) {
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 "
                    "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  REQUIRE(chmod(key.c_str(), 0600) == 0);
}

std::unique_ptr<httplib::SSLClient> TlsClient(int port, const std::string& ca) {
  auto cli = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  cli->set_ca_cert_path(ca.c_str());
  cli->enable_server_certificate_verification(true);
  cli->set_connection_timeout(5, 0);
  cli->set_read_timeout(20, 0);
  return cli;
}

}  // namespace

TEST_CASE("TLS: --tls-cert/--tls-key serve HTTPS, bad certificates and keys stop ledgerd", "[hostile]") {
  TempDir tmp;
  const std::string cert = tmp.path() + "/cert.pem", key = tmp.path() + "/key.pem";
  SelfSigned(cert, key);
  const std::string key_pem = ledger_test::ReadWholeFile(key);
  std::string key_body = key_pem.substr(key_pem.find('\n') + 1, 40);

  SECTION("a TLS client appends and reads; plain HTTP and untrusting clients fail cleanly") {
    LedgerdProcess server(tmp.path() + "/data");
    server.Start({"--entries", "opaque", "--tls-cert", cert, "--tls-key", key, "--threads", "1", "--read-timeout-ms",
                  "1000"});
    INFO("ledgerd log:\n" << server.Log());
    CHECK(server.Log().find("https://127.0.0.1:") != std::string::npos);
    auto cli = TlsClient(server.port(), cert);
    auto res = cli->Post("/v1/entries", EntriesBody({"over tls 1", "over tls 2"}), "application/json");
    INFO(httplib::to_string(res.error()));
    REQUIRE(res);
    CHECK(res->status == 200);
    auto vk = ledger::NoteVerifier::Parse(server.vkey());
    REQUIRE(vk.ok());
    auto cp = cli->Get("/checkpoint");
    REQUIRE(cp);
    auto opened = ledger::OpenCheckpoint(cp->body, *vk);
    REQUIRE(opened.ok());
    CHECK(opened->size == 2);
    auto entry = cli->Get("/v1/entries/1");
    REQUIRE(entry);
    CHECK(json::parse(entry->body)["entry"] == ledger::Base64Encode("over tls 2"));
    auto bad = cli->Get("/v1/entries/x");
    REQUIRE(bad);
    ExpectJsonError(bad->status, bad->get_header_value("Content-Type"), bad->body, 400, "bad index over TLS");

    // Plain HTTP to the TLS port: no response, no harm.
    httplib::Client plain("127.0.0.1", server.port());
    plain.set_read_timeout(5, 0);
    auto pres = plain.Get("/checkpoint");
    CHECK((!pres || pres->status != 200));
    std::string raw = RawExchange(server.port(), "GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(raw.rfind("HTTP/1.1 200", 0) != 0);
    // A client that does not trust the certificate refuses the server.
    httplib::SSLClient untrusting("127.0.0.1", server.port());
    untrusting.enable_server_certificate_verification(true);
    untrusting.set_ca_cert_path((tmp.path() + "/none.pem").c_str());
    auto ures = untrusting.Get("/checkpoint");
    CHECK(!ures);

    // Handshakes that never come hold the one worker at most the read
    // timeout.
    std::vector<int> stalled;
    for (int i = 0; i < 4; i++) stalled.push_back(Connect(server.port()));
    auto start = Clock::now();
    auto after = TlsClient(server.port(), cert)->Get("/healthz");
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (int fd : stalled) close(fd);
    INFO("after " << seconds << " s: " << httplib::to_string(after.error()));
    REQUIRE(after);
    CHECK(after->status == 200);
    CHECK(seconds < 8.0);  // about the read timeout (1 s)
    cli.reset();
    CHECK(server.Stop() == 0);
    CHECK(server.Log().find(key_body) == std::string::npos);
  }

  SECTION("ledgerd refuses to start with a missing, unreadable, malformed or mismatched certificate or key") {
    const std::string other = tmp.path() + "/other.pem", garbage = tmp.path() + "/garbage.pem",
                      loose = tmp.path() + "/loose.pem";
    REQUIRE(std::system(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out " + other +
                         " >/dev/null 2>&1").c_str()) == 0);
    REQUIRE(chmod(other.c_str(), 0600) == 0);
    std::ofstream(garbage) << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
    REQUIRE(chmod(garbage.c_str(), 0600) == 0);
    const std::string cert600 = tmp.path() + "/cert600.pem";
    std::ofstream(cert600) << ledger_test::ReadWholeFile(cert);
    REQUIRE(chmod(cert600.c_str(), 0600) == 0);
    std::ofstream(loose) << key_pem;
    REQUIRE(chmod(loose.c_str(), 0644) == 0);
    struct Case {
      std::string args, mention;
    };
    std::vector<Case> cases = {
        {"--tls-cert " + tmp.path() + "/missing.pem --tls-key " + key, "missing.pem"},
        {"--tls-cert " + cert + " --tls-key " + tmp.path() + "/missing.pem", "missing.pem"},
        {"--tls-cert " + tmp.path() + " --tls-key " + key, "--tls-cert"},  // a directory
        {"--tls-cert " + garbage + " --tls-key " + key, "not a PEM certificate"},
        {"--tls-cert " + cert + " --tls-key " + garbage, "not an unencrypted PEM private key"},
        {"--tls-cert " + cert + " --tls-key " + cert600, "not an unencrypted PEM private key"},
        {"--tls-cert " + key + " --tls-key " + key, "not a PEM certificate"},
        {"--tls-cert " + cert + " --tls-key " + other, "is not the key of the certificate"},
        {"--tls-cert " + cert + " --tls-key " + loose, "chmod 600"},
        {"--tls-cert " + cert, "go together"},
        {"--tls-key " + key, "go together"},
    };
    for (const auto& c : cases) {
      std::string out;
      int st = RunLedgerd("--data " + tmp.path() + "/d2 --listen 127.0.0.1:0 " + c.args, &out);
      INFO(c.args << ": " << out);
      CHECK(WIFEXITED(st));
      CHECK(WEXITSTATUS(st) != 0);
      CHECK(out.find(c.mention) != std::string::npos);
      CHECK(out.find("listening") == std::string::npos);
      CHECK(out.find(key_body) == std::string::npos);
    }
  }
}
