// Witnessing: collecting witness cosignatures (see witnessing.h, SPEC.md §13).
#include "witnessing.h"

#include <httplib.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "ledger/files.h"
#include "ledger/merkle.h"

namespace ledgerd {
namespace {

using json = nlohmann::json;
using ledger::Status;
using ledger::StatusOr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxWitnesses = 99;  // a signed note carries at most 100 signatures, one is the log's
constexpr milliseconds kFirstBackoff{250};  // retrying a failed submission
constexpr milliseconds kMaxBackoff{2000};
// A refusal (4xx, a bad cosignature, a witness ahead of the log) will not
// change for the same checkpoint: it is retried this rarely, or as soon as
// a newer checkpoint is offered.
constexpr milliseconds kRefusalRetry{60000};
constexpr milliseconds kPoll{100};  // the submitter also polls the store's size this often
constexpr size_t kMaxCandidates = 16;
constexpr int kMaxAttempts = 3;     // per submission: the first request and up to two 409 retries

struct ParsedUrl {
  std::string host;
  int port = 80;
  std::string path;  // prefix + "/add-checkpoint"
};

StatusOr<ParsedUrl> ParseWitnessUrl(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0)
    return Status::InvalidArgument("\"" + url + "\": https is not supported by this build (cpp-httplib without "
                                   "OpenSSL); use http:// or a local TLS-terminating proxy");
  if (url.rfind(scheme, 0) != 0) return Status::InvalidArgument("\"" + url + "\" must start with http://");
  if (url.find_first_of("?# \t\r\n") != std::string::npos)
    return Status::InvalidArgument("\"" + url + "\" must not have a query, fragment or spaces");
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  ParsedUrl out;
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("\"" + url + "\": unterminated IPv6 address");
    out.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Status::InvalidArgument("\"" + url + "\": malformed host");
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty() || out.host.find('@') != std::string::npos)
    return Status::InvalidArgument("\"" + url + "\": missing or malformed host");
  if (authority.find(':') != std::string::npos && authority[0] != '[' && port.empty())
    return Status::InvalidArgument("\"" + url + "\": empty port");
  if (!port.empty()) {
    auto p = ledger::ParseUint64(port);
    if (!p.ok() || *p == 0 || *p > 65535) return Status::InvalidArgument("\"" + url + "\": bad port");
    out.port = static_cast<int>(*p);
  }
  out.path = path + "/add-checkpoint";
  return out;
}

bool ValidLabel(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
  return true;
}

StatusOr<milliseconds> Millis(const json& j, const char* field, uint64_t def, uint64_t min, uint64_t max) {
  if (!j.contains(field)) return milliseconds(def);
  const json& v = j[field];
  if (!v.is_number_unsigned() || v.get<uint64_t>() < min || v.get<uint64_t>() > max)
    return Status::InvalidArgument(std::string("\"") + field + "\" must be a whole number from " + std::to_string(min) +
                                   " to " + std::to_string(max));
  return milliseconds(v.get<uint64_t>());
}

std::string FormatSignatureLine(const ledger::NoteSignature& sig) {
  ledger::Bytes raw;
  for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>((sig.key_id >> s) & 0xff));
  raw.append(sig.signature);
  return "\xE2\x80\x94 " + sig.name + " " + ledger::Base64Encode(raw) + "\n";
}

std::string FirstLine(const std::string& body) {
  std::string line = body.substr(0, body.find('\n'));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  for (char& c : line)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return line;
}

uint64_t MicrosSince(Clock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

std::string Seconds(milliseconds ms) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

}  // namespace

StatusOr<WitnessingConfig> ParseWitnessingConfig(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("not a JSON object");
  for (const auto& [k, v] : j.items())
    if (k != "quorum" && k != "interval_ms" && k != "timeout_ms" && k != "receipt_timeout_ms" &&
        k != "max_receipt_waiters" && k != "witnesses")
      return Status::InvalidArgument("unknown field \"" + k + "\"");
  WitnessingConfig c;
  LEDGER_ASSIGN_OR_RETURN(c.interval, Millis(j, "interval_ms", 1000, 0, 3600000));
  LEDGER_ASSIGN_OR_RETURN(c.timeout, Millis(j, "timeout_ms", 5000, 1, 600000));
  LEDGER_ASSIGN_OR_RETURN(c.receipt_timeout, Millis(j, "receipt_timeout_ms", 10000, 1, 600000));
  if (j.contains("max_receipt_waiters")) {
    const json& v = j["max_receipt_waiters"];
    if (!v.is_number_unsigned() || v.get<uint64_t>() < 1 || v.get<uint64_t>() > 65536)
      return Status::InvalidArgument("\"max_receipt_waiters\" must be a whole number from 1 to 65536");
    c.max_receipt_waiters = v.get<size_t>();
  }
  if (!j.contains("witnesses") || !j["witnesses"].is_array())
    return Status::InvalidArgument("\"witnesses\" must be an array");
  const json& arr = j["witnesses"];
  if (arr.size() > kMaxWitnesses)
    return Status::InvalidArgument("at most " + std::to_string(kMaxWitnesses) + " witnesses");
  std::set<std::string> names;
  std::set<std::pair<std::string, uint32_t>> keys;
  for (size_t i = 0; i < arr.size(); i++) {
    std::string where = "witnesses[" + std::to_string(i) + "]: ";
    const json& w = arr[i];
    if (!w.is_object()) return Status::InvalidArgument(where + "must be an object");
    for (const auto& [k, v] : w.items())
      if (k != "name" && k != "url" && k != "key") return Status::InvalidArgument(where + "unknown field \"" + k + "\"");
    for (const char* f : {"name", "url", "key"})
      if (!w.contains(f) || !w[f].is_string())
        return Status::InvalidArgument(where + "\"" + f + "\" must be a string");
    WitnessConfig wc{w["name"].get<std::string>(), w["url"].get<std::string>(), w["key"].get<std::string>()};
    if (!ValidLabel(wc.name))
      return Status::InvalidArgument(where + "\"name\" must be 1-128 printable ASCII characters without spaces, "
                                             "quotes or backslashes");
    if (!names.insert(wc.name).second) return Status::InvalidArgument(where + "duplicate name \"" + wc.name + "\"");
    if (auto u = ParseWitnessUrl(wc.url); !u.ok()) return Status::InvalidArgument(where + "\"url\" " + u.status().message());
    auto v = ledger::CosignatureVerifier::Parse(wc.key);
    if (!v.ok())
      return Status::InvalidArgument(where + "\"key\" is not a cosignature/v1 verifier key: " + v.status().message());
    if (!keys.insert({v->name(), v->key_id()}).second)
      return Status::InvalidArgument(where + "the same key as another witness");
    c.witnesses.push_back(std::move(wc));
  }
  if (!j.contains("quorum") || !j["quorum"].is_number_unsigned())
    return Status::InvalidArgument("\"quorum\" must be a whole number");
  uint64_t q = j["quorum"].get<uint64_t>();
  if (q > c.witnesses.size())
    return Status::InvalidArgument("\"quorum\" (" + std::to_string(q) + ") is larger than the number of witnesses (" +
                                   std::to_string(c.witnesses.size()) + ")");
  c.quorum = static_cast<size_t>(q);
  return c;
}

StatusOr<WitnessingConfig> LoadWitnessingConfig(const std::string& path) {
  auto text = ledger::ReadFile(path);
  if (!text.ok()) return text.status();
  auto c = ParseWitnessingConfig(*text);
  if (!c.ok()) return Status::InvalidArgument(path + ": " + c.status().message());
  return c;
}

// A checkpoint offered to the witnesses.
struct Witnessing::Job {
  uint64_t seq = 0;
  uint64_t size = 0;
  ledger::Hash root{};
  std::string note;  // log-signed checkpoint
  std::string text;  // its body (what cosignatures sign)
};

struct Witnessing::Witness {
  WitnessConfig config;
  ledger::CosignatureVerifier verifier;
  ParsedUrl url;
  WitnessStats* stats = nullptr;
  std::thread thread;
  // Guarded by mu_.
  std::shared_ptr<const Job> job;  // the latest checkpoint offered
  uint64_t known_size = 0;         // the witness's latest cosigned size, as far as we know
  bool known = false;
  bool answered = false;           // a submission finished (either way)
  std::string last_error;          // "" after a cosignature
};

struct Witnessing::Outcome {
  bool ok = false;
  bool transient = true;  // a failure worth retrying soon (unreachable, timeout, 5xx)
  std::string line;   // the cosignature line, with "\n"
  std::string error;  // why not
  uint64_t known_size = 0;
  bool known = false;
};

Witnessing::Witnessing(ledger::Store* store, const ledger::NoteVerifier& log_key, WitnessingConfig config,
                       std::string state_file)
    : store_(store), log_key_(log_key), config_(std::move(config)), state_file_(std::move(state_file)) {}

StatusOr<std::unique_ptr<Witnessing>> Witnessing::Create(ledger::Store* store, const ledger::NoteVerifier& log_key,
                                                        WitnessingConfig config, std::string state_file) {
  if (config.quorum > config.witnesses.size())
    return Status::InvalidArgument("quorum larger than the number of witnesses");
  std::unique_ptr<Witnessing> w(new Witnessing(store, log_key, std::move(config), std::move(state_file)));
  w->stats_.quorum = w->config_.quorum;
  for (const WitnessConfig& wc : w->config_.witnesses) {
    auto v = ledger::CosignatureVerifier::Parse(wc.key);
    if (!v.ok()) return Status::InvalidArgument("witness " + wc.name + ": " + v.status().message());
    auto u = ParseWitnessUrl(wc.url);
    if (!u.ok()) return Status::InvalidArgument("witness " + wc.name + ": " + u.status().message());
    auto ws = std::make_unique<Witness>();
    ws->config = wc;
    ws->verifier = *v;
    ws->url = *u;
    w->stats_.witnesses.push_back(std::make_unique<WitnessStats>());
    w->stats_.witnesses.back()->name = wc.name;
    ws->stats = w->stats_.witnesses.back().get();
    w->witnesses_.push_back(std::move(ws));
  }
  return w;
}

Witnessing::~Witnessing() { Stop(); }

void Witnessing::LoadState() {
  if (state_file_.empty() || !enforced()) return;
  auto text = ledger::ReadFile(state_file_);
  if (!text.ok()) {
    if (!text.status().IsNotFound())
      std::cerr << "ledgerd: witnessing: cannot read " << state_file_ << ": " << text.status().message() << "\n";
    return;
  }
  auto ignore = [&](const std::string& why) {
    std::cerr << "ledgerd: witnessing: ignoring the saved witnessed checkpoint " << state_file_ << ": " << why
              << "\n";
  };
  std::vector<ledger::CosignatureVerifier> verifiers;
  for (const auto& w : witnesses_) verifiers.push_back(w->verifier);
  auto cp = ledger::OpenWitnessedCheckpoint(*text, log_key_, verifiers, config_.quorum);
  if (!cp.ok()) return ignore(cp.status().message());
  auto reader = store_->Read();
  if (!reader.ok()) return ignore(reader.status().message());
  if (cp->size > (*reader)->size()) return ignore("its size is beyond the log's tree size");
  auto root = ledger::TreeRoot(cp->size, **reader);
  if (!root.ok() || *root != cp->root) return ignore("its root differs from the log's at that size");
  auto note = ledger::ParseNote(*text);
  if (!note.ok()) return ignore(note.status().message());
  Candidate c;
  c.size = cp->size;
  c.root = cp->root;
  c.note = note->text + "\n";
  for (const auto& sig : note->signatures)
    if (sig.name == log_key_.name() && sig.key_id == log_key_.key_id()) c.note += FormatSignatureLine(sig);
  for (size_t i = 0; i < witnesses_.size(); i++) {
    for (const auto& sig : note->signatures) {
      if (!witnesses_[i]->verifier.Matches(sig)) continue;
      if (!ledger::VerifyCosignature(witnesses_[i]->verifier, sig, note->text).ok()) continue;
      c.lines[i] = FormatSignatureLine(sig);
    }
  }
  auto wc = std::make_shared<WitnessedCheckpoint>();
  wc->size = c.size;
  wc->root = c.root;
  wc->note = c.note;
  for (const auto& [i, line] : c.lines) {
    wc->note += line;
    witnesses_[i]->known_size = c.size;
    witnesses_[i]->known = true;
    witnesses_[i]->stats->cosigned_size = c.size;
  }
  wc->cosigners = c.lines.size();
  candidates_[c.size] = std::move(c);
  current_ = wc;
  persisted_note_ = *text;
  stats_.witnessed_size = wc->size;
  std::cout << "ledgerd: witnessing: loaded the witnessed checkpoint of size " << wc->size << " ("
            << wc->cosigners << " cosignatures)" << std::endl;
}

Status Witnessing::Start() {
  std::lock_guard<std::mutex> s(stop_mu_);
  if (started_) return Status::FailedPrecondition("already started");
  started_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    LoadState();
  }
  for (size_t i = 0; i < witnesses_.size(); i++) witnesses_[i]->thread = std::thread([this, i] { RunWorker(i); });
  submitter_ = std::thread([this] { RunSubmitter(); });
  return Status::OK();
}

void Witnessing::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  submitter_cv_.notify_all();
  workers_cv_.notify_all();
  waiters_cv_.notify_all();
  std::lock_guard<std::mutex> s(stop_mu_);
  if (submitter_.joinable()) submitter_.join();
  for (auto& w : witnesses_)
    if (w->thread.joinable()) w->thread.join();
}

std::shared_ptr<const WitnessedCheckpoint> Witnessing::Current() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

void Witnessing::Notify() {
  {
    std::lock_guard<std::mutex> l(mu_);
    kicked_ = true;
  }
  submitter_cv_.notify_one();
}

std::string Witnessing::DescribeWitnessesLocked() const {
  std::string out;
  for (const auto& w : witnesses_) {
    if (!out.empty()) out += "; ";
    out += w->config.name + ": ";
    if (!w->answered) out += "no answer yet";
    else if (w->last_error.empty()) out += "cosigned size " + std::to_string(w->stats->cosigned_size.load());
    else out += w->last_error;
  }
  return out;
}

StatusOr<std::shared_ptr<const WitnessedCheckpoint>> Witnessing::WaitFor(uint64_t size, milliseconds timeout) {
  auto start = Clock::now();
  std::unique_lock<std::mutex> l(mu_);
  if (current_ && current_->size >= size) {
    stats_.receipt_wait_micros.Observe(MicrosSince(start));
    return current_;
  }
  // Each waiter holds an HTTP worker: during a witness outage, unbounded
  // waiting would leave no worker for reads.
  if (waiters_ >= config_.max_receipt_waiters) {
    stats_.receipt_waiters_rejected++;
    return Status::Unavailable(std::to_string(waiters_) + " requests are already waiting for a witnessed checkpoint "
                               "(max_receipt_waiters); the entries are logged: retry the same request later for their "
                               "receipts; witnesses: " + DescribeWitnessesLocked());
  }
  l.unlock();
  Notify();
  l.lock();
  waiters_++;
  waiters_cv_.wait_for(l, timeout, [&] { return stopping_ || (current_ && current_->size >= size); });
  waiters_--;
  if (current_ && current_->size >= size) {
    stats_.receipt_wait_micros.Observe(MicrosSince(start));
    return current_;
  }
  if (stopping_) return Status::Unavailable("shutting down");
  stats_.receipt_timeouts++;
  return Status::Unavailable("no checkpoint covering tree size " + std::to_string(size) + " has cosignatures from " +
                             std::to_string(config_.quorum) + " of the " + std::to_string(witnesses_.size()) +
                             " witnesses after " + Seconds(timeout) +
                             " (the entries are logged: retry the same request later for their receipts); "
                             "witnesses: " + DescribeWitnessesLocked());
}

void Witnessing::RunSubmitter() {
  std::unique_lock<std::mutex> l(mu_);
  bool offered_any = false;
  uint64_t offered = 0;
  Clock::time_point last_round{};
  while (!stopping_) {
    uint64_t size = store_->size();
    if (offered_any && size <= offered) {
      kicked_ = false;
      submitter_cv_.wait_for(l, kPoll, [&] { return stopping_ || kicked_; });
      continue;
    }
    auto now = Clock::now();
    if (offered_any && now < last_round + config_.interval) {
      // Rate limit: at most one new checkpoint per interval.
      submitter_cv_.wait_until(l, last_round + config_.interval, [&] { return stopping_; });
      continue;
    }
    l.unlock();
    auto job = std::make_shared<Job>();
    Status st;
    if (auto reader = store_->Read(); !reader.ok()) {
      st = reader.status();
    } else {
      job->size = (*reader)->size();
      job->root = (*reader)->root();
      job->note = (*reader)->checkpoint();
      auto note = ledger::ParseNote(job->note);
      if (!note.ok()) {
        st = note.status();
      } else {
        job->text = note->text;
        auto cp = ledger::ParseCheckpoint(job->text);
        if (!cp.ok()) st = cp.status();
        else if (cp->size != job->size || cp->root != job->root) st = Status::Internal("checkpoint does not match the store");
      }
    }
    l.lock();
    if (!st.ok()) {
      std::cerr << "ledgerd: witnessing: cannot read the checkpoint: " << st.ToString() << "\n";
      submitter_cv_.wait_for(l, std::chrono::seconds(1), [&] { return stopping_; });
      continue;
    }
    job->seq = next_seq_++;
    Candidate& c = candidates_[job->size];
    if (c.note.empty()) {
      c.size = job->size;
      c.root = job->root;
      c.note = job->note;
    }
    while (candidates_.size() > kMaxCandidates) candidates_.erase(candidates_.begin());
    for (auto& w : witnesses_) w->job = job;
    offered_any = true;
    offered = job->size;
    last_round = now;
    stats_.rounds++;
    workers_cv_.notify_all();
  }
}

void Witnessing::RunWorker(size_t index) {
  Witness& w = *witnesses_[index];
  std::unique_lock<std::mutex> l(mu_);
  uint64_t done_seq = 0;
  bool failed = false;
  Clock::time_point retry_at{};
  milliseconds backoff = kFirstBackoff;
  while (!stopping_) {
    std::shared_ptr<const Job> job = w.job;
    bool fresh = job && job->seq != done_seq;
    bool retry = job && !fresh && failed && Clock::now() >= retry_at;
    if (!fresh && !retry) {
      if (failed) workers_cv_.wait_until(l, retry_at);
      else workers_cv_.wait(l);
      continue;
    }
    uint64_t known_size = w.known_size;
    bool known = w.known;
    l.unlock();
    Outcome o = Submit(w, *job, known_size, known);
    l.lock();
    w.known_size = o.known_size;
    w.known = o.known;
    w.answered = true;
    done_seq = job->seq;
    if (o.ok) {
      failed = false;
      backoff = kFirstBackoff;
      if (!w.last_error.empty())
        std::cerr << "ledgerd: witness " << w.config.name << ": cosigning again (size " << job->size << ")\n";
      w.last_error.clear();
      w.stats->cosigned_size = job->size;
      w.stats->cosignatures++;
      w.stats->up = 1;
      Deliver(index, *job, o.line);
      l.unlock();
      Persist();
      l.lock();
    } else {
      failed = true;
      retry_at = Clock::now() + (o.transient ? backoff : kRefusalRetry);
      backoff = std::min(backoff * 2, kMaxBackoff);
      w.stats->failures++;
      w.stats->up = 0;
      if (o.error != w.last_error)
        std::cerr << "ledgerd: witness " << w.config.name << ": checkpoint of size " << job->size
                  << " not cosigned: " << o.error << "\n";
      w.last_error = o.error;
    }
  }
}

Witnessing::Outcome Witnessing::Submit(Witness& w, const Job& job, uint64_t known_size, bool known) {
  Outcome o;
  o.known_size = known_size;
  o.known = known;
  auto deadline = Clock::now() + config_.timeout;
  uint64_t old = known ? known_size : 0;
  for (int attempt = 0; attempt < kMaxAttempts; attempt++) {
    if (old > job.size) {
      o.transient = false;
      o.error = "the witness has cosigned size " + std::to_string(old) + ", beyond this checkpoint's size " +
                std::to_string(job.size) + " (it saw another tree of this log)";
      return o;
    }
    std::vector<ledger::Hash> proof;
    if (old != 0 && old != job.size) {
      auto reader = store_->Read();
      if (!reader.ok()) {
        o.error = "cannot read the store: " + reader.status().message();
        return o;
      }
      auto p = ledger::ConsistencyProof(old, job.size, **reader);
      if (!p.ok()) {
        o.error = "cannot build the consistency proof: " + p.status().message();
        return o;
      }
      proof = std::move(*p);
    }
    std::string body = "old " + std::to_string(old) + "\n";
    for (const auto& h : proof) body += ledger::Base64Encode(ledger::HashView(h)) + "\n";
    body += "\n";
    body += job.note;

    auto remaining = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) {
      o.error = "timed out after " + std::to_string(config_.timeout.count()) + " ms";
      return o;
    }
    time_t sec = static_cast<time_t>(remaining.count() / 1000000);
    time_t usec = static_cast<time_t>(remaining.count() % 1000000);
    httplib::Client cli(w.url.host, w.url.port);
    cli.set_connection_timeout(sec, usec);
    cli.set_read_timeout(sec, usec);
    cli.set_write_timeout(sec, usec);
    cli.set_keep_alive(false);
    auto t0 = Clock::now();
    auto res = cli.Post(w.url.path.c_str(), body, "text/plain; charset=utf-8");
    w.stats->request_micros.Observe(MicrosSince(t0));
    if (!res) {
      switch (res.error()) {
        case httplib::Error::Connection: o.error = "cannot connect to " + w.config.url; break;
        case httplib::Error::ConnectionTimeout:
          o.error = "connecting to " + w.config.url + " timed out after " + std::to_string(config_.timeout.count()) + " ms";
          break;
        case httplib::Error::Read:
          o.error = Clock::now() >= deadline
                        ? "no answer within " + std::to_string(config_.timeout.count()) + " ms"
                        : "the connection was closed without an answer";
          break;
        default: o.error = "request failed: " + httplib::to_string(res.error());
      }
      return o;
    }
    if (res->status == 200) {
      // One or more signature lines; take the one by this witness's key.
      std::string status_error;
      size_t pos = 0;
      const std::string& b = res->body;
      while (pos < b.size()) {
        size_t nl = b.find('\n', pos);
        std::string line = b.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? b.size() : nl + 1;
        if (line.empty()) continue;
        auto note = ledger::ParseNote(job.text + "\n" + line + "\n");
        if (!note.ok() || note->signatures.size() != 1) {
          status_error = "malformed cosignature line";
          continue;
        }
        const ledger::NoteSignature& sig = note->signatures[0];
        if (!w.verifier.Matches(sig)) continue;
        auto ts = ledger::VerifyCosignature(w.verifier, sig, job.text);
        if (!ts.ok()) {
          status_error = "invalid cosignature: " + ts.status().message();
          o.transient = false;
          continue;
        }
        o.ok = true;
        o.line = line + "\n";
        o.known_size = job.size;
        o.known = true;
        return o;
      }
      o.error = status_error.empty() ? "the answer holds no cosignature by key " + w.verifier.name() : status_error;
      // The witness did accept this size, whatever its answer looked like.
      o.known_size = job.size;
      o.known = true;
      return o;
    }
    if (res->status == 409) {
      w.stats->conflicts++;
      std::string sbody = res->body;
      if (!sbody.empty() && sbody.back() == '\n') sbody.pop_back();
      auto m = ledger::ParseUint64(sbody);
      if (!m.ok()) {
        o.error = "HTTP 409 without a tree size: " + FirstLine(res->body);
        return o;
      }
      o.known_size = *m;
      o.known = true;
      if (*m == old) {
        o.transient = false;
        o.error = "HTTP 409 at size " + std::to_string(old) +
                  (old == job.size ? ": the witness cosigned another root for this size (a fork of this log)"
                                   : ": the witness refused the old size it gave");
        return o;
      }
      old = *m;
      continue;
    }
    o.error = "HTTP " + std::to_string(res->status) + ": " + FirstLine(res->body);
    o.transient = res->status >= 500 || res->status == 429 || res->status == 408;
    if (res->status == 422) o.error += " (the witness saw a tree this checkpoint is not consistent with)";
    return o;
  }
  o.error = "HTTP 409 " + std::to_string(kMaxAttempts) + " times: the witness's size keeps changing";
  return o;
}

void Witnessing::Deliver(size_t index, const Job& job, const std::string& line) {
  Candidate& c = candidates_[job.size];
  if (c.note.empty()) {
    c.size = job.size;
    c.root = job.root;
    c.note = job.note;
  }
  if (c.root != job.root) return;  // cannot happen with one append-only store
  c.lines[index] = line;
  if (enforced() && c.lines.size() >= config_.quorum && (!current_ || c.size >= current_->size)) {
    auto wc = std::make_shared<WitnessedCheckpoint>();
    wc->size = c.size;
    wc->root = c.root;
    wc->note = c.note;
    for (const auto& [i, l] : c.lines) wc->note += l;
    wc->cosigners = c.lines.size();
    current_ = std::move(wc);
    stats_.witnessed_size = c.size;
    waiters_cv_.notify_all();
  }
  uint64_t floor = current_ ? current_->size : 0;
  for (auto it = candidates_.begin(); it != candidates_.end() && it->first < floor;) it = candidates_.erase(it);
}

void Witnessing::Persist() {
  if (state_file_.empty() || !enforced()) return;
  std::lock_guard<std::mutex> p(persist_mu_);
  std::shared_ptr<const WitnessedCheckpoint> cur = Current();
  if (!cur || cur->note == persisted_note_) return;
  if (auto s = ledger::WriteFileAtomic(state_file_, cur->note, 0644); !s.ok()) {
    std::cerr << "ledgerd: witnessing: cannot save the witnessed checkpoint: " << s.message() << "\n";
    return;
  }
  persisted_note_ = cur->note;
}

}  // namespace ledgerd
