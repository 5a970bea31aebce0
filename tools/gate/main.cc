// ledger-gate: an example bank gate. It serves mock account data, and
// releases it only against a valid Access Ledger receipt for exactly the
// access asked for (ledger::CheckReceipt, offline: it never calls the log).
// Every release is recorded durably (fsync) in a JSONL file before the data
// is sent, so the bank can reconcile its releases against the log, and a
// receipt is honoured once: a second release against the same log entry is
// refused.
//
// Thread-safety: requests run on httplib's worker threads; CheckReceipt is
// pure, and the release record and the set of used entries are guarded by
// one mutex.
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "cli/flags.h"
#include "ledger/bytes.h"
#include "ledger/gate.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "http_serve.h"

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;  // release records keep their field order

constexpr char kUsage[] = R"(Usage: ledger-gate --log-key VKEY [options]

An example bank gate for the Access Ledger. It serves mock account data and
releases it only against a valid log receipt (a C2SP tlog-proof with the
access entry, as GET /v1/proof/tlog-proof?index=I serves it) for exactly the
subject, accessor and categories asked for. Receipts are checked offline
against the log's verifier key; the log is never called.

  POST /accounts/data   Content-Type: application/json
      {"receipt": "<tlog-proof text>", "subject": "<base64url subject tag>",
       "accessor": "<name>", "categories": ["BALANCES", ...],
       "purpose": "<PURPOSE>" (optional)}
    200 {"request_id", "index", "tree_size", "subject", "purpose",
         "categories", "data": {<category>: <mock data>, ...}}
    400 malformed request, 403 {"error": "<why the receipt does not allow
    it>"}, 415 not JSON, 500 the release could not be recorded
  GET /healthz          {"status": "ok", "releases": N}

Options:
  --log-key VKEY        the log's verifier key "<name>+<hash>+<base64>", or a
                        file holding it (ledgerd writes DATA/log.vkey)  [required]
  --listen HOST:PORT    address to listen on (port 0: any)   [127.0.0.1:8090]
  --holder NAME         this bank's holder name: receipts for accesses to
                        other holders' data are refused (without it, any
                        holder's receipt is accepted, with a warning)
  --releases FILE       release record, one JSON line per release:
                        request_id, accessor, subject, time, index,
                        categories (and purpose, access_time, tree_size);
                        read on start so no entry is released twice
                                                             [./releases.jsonl]
  --max-age SECONDS     refuse accesses logged longer ago than this; 0: no
                        limit                                 [3600]
  --port-file FILE      write the bound port to FILE once listening
  --threads N           HTTP worker threads                   [16]
  --help                show this help

SIGTERM or SIGINT stop it cleanly.
)";

struct Flags {
  std::string host = "127.0.0.1";
  int port = 8090;
  std::string log_key;
  std::string holder;
  std::string releases = "releases.jsonl";
  int64_t max_age = 3600;
  std::string port_file;
  int threads = 16;
};

constexpr size_t kMaxBody = 1 << 20;  // a receipt is a few KiB

[[noreturn]] void Die(const std::string& msg, int code = 1) { ledger_cli::Die("ledger-gate", msg, code); }

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  ledger_cli::FlagReader flags("ledger-gate", kUsage, argc, argv);
  std::string a, value;
  while (flags.Next(&a, &value)) {
    if (a == "--listen") flags.ParseListen(value, &f.host, &f.port);
    else if (a == "--log-key") f.log_key = value;
    else if (a == "--holder") f.holder = value;
    else if (a == "--releases") f.releases = value;
    else if (a == "--max-age") f.max_age = static_cast<int64_t>(flags.ParseNumber(a, value, 0, 86400 * 3660));
    else if (a == "--port-file") f.port_file = value;
    else if (a == "--threads") f.threads = static_cast<int>(flags.ParseNumber(a, value, 1, 1024));
    else flags.Unknown(a);
  }
  if (f.log_key.empty()) Die("--log-key is required (see --help)", 2);
  if (f.releases.empty()) Die("--releases must not be empty", 2);
  return f;
}

// LoadLogKey accepts the verifier key string itself or a file holding it.
ledger::NoteVerifier LoadLogKey(const std::string& value) {
  auto direct = ledger::NoteVerifier::Parse(value);
  if (direct.ok()) return *direct;
  std::ifstream in(value);
  if (!in) Die("--log-key: not a verifier key (" + direct.status().message() + ") nor a readable file: " + value, 2);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  auto from_file = ledger::NoteVerifier::Parse(line);
  if (!from_file.ok()) Die("--log-key " + value + ": " + from_file.status().message(), 2);
  return *from_file;
}

// WritePortFile writes the port atomically (temp file and rename).
void WritePortFile(const std::string& path, int port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) Die("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) Die("cannot rename " + tmp + ": " + std::strerror(errno));
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& reason) {
  SendJson(res, status, json{{"error", reason}});
}

const char* DefaultReason(int status) {
  switch (status) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 415: return "unsupported media type";
    case 500: return "internal error";
    case 503: return "service unavailable";
    default: return "error";
  }
}

// --- Mock account data ------------------------------------------------------

// MockSource derives a deterministic stream of numbers from the subject and
// the category, so the same customer always sees the same fake account.
class MockSource {
 public:
  MockSource(ledger::ByteView subject, const std::string& category) : subject_(subject), category_(category) {}
  uint64_t Next() {
    ledger::Hash h = ledger::Sha256(std::string("ledger-gate mock data\n") + category_ + "\n" + std::to_string(n_++),
                                    subject_);
    return ledger::LoadU64(h.data());
  }
  std::string Hex(size_t digits) {
    std::string out;
    while (out.size() < digits) {
      ledger::Hash h = ledger::Sha256(std::string("hex") + std::to_string(n_++), subject_);
      out += ledger::HexEncode(ledger::HashView(h));
    }
    return out.substr(0, digits);
  }

 private:
  ledger::ByteView subject_;
  std::string category_;
  uint64_t n_ = 0;
};

std::string Money(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "", static_cast<long long>(std::llabs(cents) / 100),
                static_cast<long long>(std::llabs(cents) % 100));
  return buf;
}

json MockCategory(ledger::ByteView subject, const std::string& category) {
  MockSource m(subject, category);
  std::string id = MockSource(subject, "id").Hex(8);  // shared by every category
  if (category == "ACCOUNT_BASIC") {
    return json{{"account_id", "ACC-" + id}, {"type", "CHECKING"}, {"status", "OPEN"}, {"currency", "EUR"},
                {"holder_name", "Customer " + id.substr(0, 4)}};
  }
  if (category == "BALANCES") {
    int64_t current = static_cast<int64_t>(m.Next() % 2000000);
    int64_t pending = static_cast<int64_t>(m.Next() % 20000);
    return json{{"account_id", "ACC-" + id}, {"currency", "EUR"}, {"current", Money(current)},
                {"available", Money(current - pending)}};
  }
  if (category == "TRANSACTIONS") {
    static const char* kPayees[] = {"Grocery Market", "City Transit", "Coffee Corner", "Online Books",
                                    "Electricity Co", "Salary", "Pharmacy", "Restaurant"};
    json list = json::array();
    for (int i = 0; i < 5; i++) {
      uint64_t v = m.Next();
      size_t payee = v % 8;
      int64_t amount = payee == 5 ? 250000 + static_cast<int64_t>(v % 100000) : -static_cast<int64_t>(100 + v % 15000);
      char date[16];
      std::snprintf(date, sizeof date, "2026-11-%02d", 25 - 4 * i);
      list.push_back(json{{"id", "TX-" + id + "-" + std::to_string(i + 1)}, {"date", date},
                          {"amount", Money(amount)}, {"currency", "EUR"}, {"description", kPayees[payee]}});
    }
    return list;
  }
  if (category == "STATEMENTS") {
    json list = json::array();
    for (const char* period : {"2026-10", "2026-09", "2026-08"})
      list.push_back(json{{"period", period}, {"statement_id", "STM-" + id + "-" + period},
                          {"closing_balance", Money(static_cast<int64_t>(m.Next() % 2000000))}});
    return list;
  }
  if (category == "PAYMENT_SUPPORT") {
    return json{{"iban", "XX00 MOCK " + std::to_string(1000 + m.Next() % 9000) + " " + std::to_string(1000 + m.Next() % 9000)},
                {"bic", "MOCKXX00"}};
  }
  if (category == "CUSTOMER_CONTACT") {
    return json{{"name", "Customer " + id.substr(0, 4)}, {"email", "customer-" + id + "@example.invalid"},
                {"phone", "+00 555 " + std::to_string(100000 + m.Next() % 900000)}};
  }
  if (category == "BILLS") {
    return json::array({json{{"payee", "Electricity Co"}, {"due", "2026-12-15"},
                             {"amount", Money(static_cast<int64_t>(2000 + m.Next() % 20000))}}});
  }
  if (category == "TERMS") {
    return json{{"interest_rate", "0.50%"}, {"monthly_fee", Money(static_cast<int64_t>(m.Next() % 1000))}};
  }
  return json{{"mock", m.Hex(16)}};
}

// --- Release record ---------------------------------------------------------

// Releases appends release records durably and remembers which log entries
// were released, so none is released twice.
class Releases {
 public:
  explicit Releases(const std::string& path) : path_(path) {}
  ~Releases() {
    if (fd_ >= 0) close(fd_);
  }

  // Open loads the entries already released and opens the file for appends.
  void Open() {
    std::string text;
    {
      std::ifstream in(path_, std::ios::binary);
      if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
      }
    }
    size_t skipped = 0, start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      start = nl == std::string::npos ? text.size() : nl + 1;
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("index") && j["index"].is_number_unsigned())
        used_.insert(j["index"].get<uint64_t>());
      else
        skipped++;
    }
    if (skipped) std::cerr << "ledger-gate: warning: " << skipped << " unreadable line(s) in " << path_ << "\n";
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0) Die("cannot open " + path_ + ": " + std::strerror(errno));
    // A torn last line (a crash mid-write: that release was never answered)
    // must not swallow the next record.
    if (!text.empty() && text.back() != '\n' && !WriteAll("\n")) Die("cannot write " + path_);
  }

  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return used_.size();
  }

  // Record claims |index| and appends |record| durably. Returns "" on
  // success, else why not (already released, or a write failure).
  std::string Record(uint64_t index, const ordered_json& record, int* status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (used_.count(index)) {
      *status = 403;
      return "receipt already used: entry " + std::to_string(index) + " was already released";
    }
    std::string line = record.dump() + "\n";
    if (!WriteAll(line) || fdatasync(fd_) != 0) {
      *status = 500;
      std::cerr << "ledger-gate: cannot record a release in " << path_ << ": " << std::strerror(errno) << "\n";
      // The entry stays unclaimed only if nothing of the line may have
      // landed; claim it to fail closed.
      used_.insert(index);
      return "cannot record the release; nothing was released";
    }
    used_.insert(index);
    return "";
  }

 private:
  bool WriteAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::write(fd_, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  std::string path_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::set<uint64_t> used_;
};

// --- The gate ---------------------------------------------------------------

class Gate {
 public:
  Gate(ledger::NoteVerifier log_key, std::string holder, int64_t max_age, Releases* releases)
      : log_key_(std::move(log_key)), holder_(std::move(holder)), max_age_(max_age), releases_(releases) {}

  void PostData(const httplib::Request& req, httplib::Response& res) {
    std::string ctype = req.get_header_value("Content-Type");
    if (ctype.substr(0, ctype.find(';')) != "application/json")
      return SendError(res, 415, "Content-Type must be application/json");
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) return SendError(res, 400, "body is not valid JSON");
    if (!body.is_object()) return SendError(res, 400, "body must be a JSON object");
    for (const auto& [k, v] : body.items())
      if (k != "receipt" && k != "subject" && k != "accessor" && k != "categories" && k != "purpose")
        return SendError(res, 400, "unknown field \"" + k + "\"");
    auto str = [&](const char* name, bool required, std::string* out) -> bool {
      if (!body.contains(name)) {
        if (required) SendError(res, 400, std::string("missing field \"") + name + "\"");
        return !required;
      }
      if (!body[name].is_string() || body[name].get_ref<const std::string&>().empty()) {
        SendError(res, 400, std::string("\"") + name + "\" must be a non-empty string");
        return false;
      }
      *out = body[name].get<std::string>();
      return true;
    };
    std::string receipt, subject_b64, accessor, purpose;
    if (!str("receipt", true, &receipt) || !str("subject", true, &subject_b64) || !str("accessor", true, &accessor) ||
        !str("purpose", false, &purpose))
      return;
    auto subject = ledger::Base64UrlDecode(subject_b64);
    if (!subject.ok() || subject->size() != 32)
      return SendError(res, 400, "\"subject\" must be a base64url 32-byte subject tag");
    if (!purpose.empty() && !ledger::FindPurpose(purpose))
      return SendError(res, 400, "unknown purpose \"" + purpose + "\"");
    if (!body.contains("categories")) return SendError(res, 400, "missing field \"categories\"");
    const json& cats = body["categories"];
    if (!cats.is_array() || cats.empty())
      return SendError(res, 400, "\"categories\" must be a non-empty array of category codes");
    ledger::GateExpectation expected;
    for (const auto& c : cats) {
      if (!c.is_string()) return SendError(res, 400, "\"categories\" must hold strings");
      const std::string& code = c.get_ref<const std::string&>();
      if (!ledger::FindCategory(code)) return SendError(res, 400, "unknown category \"" + code + "\"");
      if (!expected.categories.insert(code).second) return SendError(res, 400, "category \"" + code + "\" repeated");
    }
    expected.accessor = accessor;
    expected.subject = *subject;
    if (!holder_.empty()) expected.holder = holder_;
    if (!purpose.empty()) expected.purpose = purpose;
    int64_t now = static_cast<int64_t>(time(nullptr));
    if (max_age_ > 0) expected.not_before = now - max_age_;

    ledger::GateDecision d = ledger::CheckReceipt(receipt, std::nullopt, log_key_, expected);
    if (!d.allowed) {
      std::cout << "ledger-gate: refused " << accessor << ": " << d.reason << std::endl;
      return SendError(res, 403, d.reason);
    }
    const ledger::AccessRecord& a = *d.access;
    json categories = json::array();
    for (const auto& c : expected.categories) categories.push_back(c);
    ordered_json record;
    record["request_id"] = a.request_id;
    record["accessor"] = a.accessor;
    record["subject"] = subject_b64;
    record["time"] = ledger::FormatTime(now);
    record["index"] = d.index;
    record["categories"] = categories;
    record["purpose"] = a.purpose;
    record["access_time"] = a.time;
    record["tree_size"] = d.tree_size;
    int status = 0;
    std::string err = releases_->Record(d.index, record, &status);
    if (!err.empty()) {
      std::cout << "ledger-gate: refused " << accessor << ": " << err << std::endl;
      return SendError(res, status, err);
    }
    json data = json::object();
    for (const auto& c : expected.categories) data[c] = MockCategory(*subject, c);
    std::cout << "ledger-gate: released entry " << d.index << " (" << a.request_id << ") to " << a.accessor << ": "
              << categories.dump() << std::endl;
    SendJson(res, 200,
             json{{"request_id", a.request_id}, {"index", d.index}, {"tree_size", d.tree_size},
                  {"subject", subject_b64}, {"purpose", a.purpose}, {"categories", categories}, {"data", data}});
  }

 private:
  ledger::NoteVerifier log_key_;
  std::string holder_;
  int64_t max_age_;
  Releases* releases_;
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  ledger::NoteVerifier log_key = LoadLogKey(flags.log_key);

  ledger_tools::BlockStopSignals();

  Releases releases(flags.releases);
  releases.Open();
  Gate gate(log_key, flags.holder, flags.max_age, &releases);

  httplib::Server server;
  ledger_tools::ApplyHttpSettings(server, {static_cast<size_t>(flags.threads), 30, kMaxBody});

  server.Post("/accounts/data", [&gate](const httplib::Request& req, httplib::Response& res) { gate.PostData(req, res); });
  server.Get("/healthz", [&releases](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, json{{"status", "ok"}, {"releases", releases.count()}});
  });
  httplib::Server::Handler fallback = [](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/accounts/data" || req.path == "/healthz") {
      res.set_header("Allow", req.path == "/healthz" ? "GET, HEAD" : "POST");
      SendError(res, 405, "method " + req.method + " not allowed on " + req.path);
    } else {
      SendError(res, 404, "no such endpoint");
    }
  };
  server.Get(".*", fallback);
  server.Post(".*", fallback);
  server.Put(".*", fallback);
  server.Patch(".*", fallback);
  server.Delete(".*", fallback);
  server.Options(".*", fallback);
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    SendError(res, res.status, DefaultReason(res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, 500, "internal error");
  });

  std::string bind_error;
  int port = ledger_tools::BindPort(server, flags.host, flags.port, &bind_error);
  if (port < 0) Die(bind_error);

  std::cout << "ledger-gate: log key      " << log_key.VerifierKeyString() << "\n"
            << "ledger-gate: holder       " << (flags.holder.empty() ? "(any)" : flags.holder) << "\n"
            << "ledger-gate: releases     " << flags.releases << " (" << releases.count() << " so far)\n"
            << "ledger-gate: max age      " << (flags.max_age ? std::to_string(flags.max_age) + " s" : "no limit") << "\n"
            << "ledger-gate: listening on http://" << flags.host << ":" << port << std::endl;
  if (flags.holder.empty())
    std::cerr << "ledger-gate: warning: no --holder; receipts for any holder's customers are accepted\n";
  if (!flags.port_file.empty()) WritePortFile(flags.port_file, port);

  bool ok = ledger_tools::ServeUntilStopSignal(server, [](int sig) {
    std::cout << "ledger-gate: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", shutting down" << std::endl;
  });
  if (!ok && server.is_running()) std::cerr << "ledger-gate: server stopped unexpectedly\n";
  std::cout << "ledger-gate: stopped" << std::endl;
  return 0;
}
