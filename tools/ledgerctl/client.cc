#include "client.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "ledger/tlog_proof.h"

namespace ledgerctl {
namespace {

using json = nlohmann::json;
using ledger::Status;

constexpr int kAttempts = 4;

Status BadAnswer(const std::string& why) { return Status::Corruption("malformed answer from the log: " + why); }

ledger::StatusOr<ledger::Hash> HashField(const json& v, const std::string& what) {
  if (!v.is_string()) return BadAnswer(what + " is not a string");
  auto raw = ledger::Base64Decode(v.get_ref<const std::string&>());
  if (!raw.ok() || raw->size() != 32) return BadAnswer(what + " is not a base64 SHA-256 hash");
  return *ledger::HashFromBytes(*raw);
}

// OpenResponseCheckpoint parses (and with a key, verifies) the checkpoint
// that covers a response's receipts.
ledger::StatusOr<ledger::Checkpoint> OpenResponseCheckpoint(const std::string& text,
                                                            const std::optional<ledger::NoteVerifier>& log_key) {
  if (log_key) {
    auto cp = ledger::OpenCheckpoint(text, *log_key);
    if (!cp.ok()) return Status::Corruption("the log's checkpoint does not verify with --log-key: " + cp.status().message());
    return cp;
  }
  auto note = ledger::ParseNote(text);
  if (!note.ok()) return BadAnswer("checkpoint: " + note.status().message());
  auto cp = ledger::ParseCheckpoint(note->text);
  if (!cp.ok()) return BadAnswer("checkpoint: " + cp.status().message());
  return cp;
}

// RefusalIndex reads the "entries[K]: " prefix ledgerd puts on a refusal of
// a whole request caused by one entry.
std::optional<size_t> RefusalIndex(const std::string& error, std::string* rest) {
  if (error.rfind("entries[", 0) != 0) return std::nullopt;
  size_t close = error.find("]: ");
  if (close == std::string::npos) return std::nullopt;
  auto k = ledger::ParseUint64(error.substr(8, close - 8));
  if (!k.ok()) return std::nullopt;
  *rest = error.substr(close + 3);
  return static_cast<size_t>(*k);
}

}  // namespace

ledger::StatusOr<std::unique_ptr<LogClient>> LogClient::Connect(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0))
    return Status::InvalidArgument("--log must be an http:// or https:// URL, got \"" + url + "\"");
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  std::string origin = url.substr(0, path_start);
  std::string prefix = path_start == std::string::npos ? "" : url.substr(path_start);
  if (origin.size() == host_start || url.find_first_of("?# ") != std::string::npos)
    return Status::InvalidArgument("--log must be a URL like http://127.0.0.1:8080, got \"" + url + "\"");
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::unique_ptr<LogClient> c(new LogClient());
  c->url_ = url;
  c->prefix_ = prefix;
  c->http_ = std::make_unique<httplib::Client>(origin);
  if (!c->http_->is_valid()) return Status::InvalidArgument("--log: cannot use URL \"" + url + "\"");
  c->http_->set_tcp_nodelay(true);
  c->http_->set_keep_alive(true);
  c->http_->set_connection_timeout(10, 0);
  c->http_->set_read_timeout(120, 0);
  c->http_->set_write_timeout(120, 0);
  return c;
}

ledger::StatusOr<LogClient::Response> LogClient::Send(const std::string& method, const std::string& path,
                                                      const std::string& body) {
  std::string last_error;
  for (int attempt = 0; attempt < kAttempts; attempt++) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250 << (attempt - 1)));
    httplib::Result res = method == "POST" ? http_->Post((prefix_ + path).c_str(), body, "application/json")
                                           : http_->Get((prefix_ + path).c_str());
    if (!res) {
      last_error = "cannot reach the log at " + url_ + ": " + httplib::to_string(res.error());
      continue;
    }
    if (res->status == 503) {
      last_error = "the log at " + url_ + " is unavailable (HTTP 503)";
      continue;
    }
    return Response{res->status, res->body};
  }
  return Status::Unavailable(last_error);
}

ledger::StatusOr<ledger::Bytes> LogClient::GetEntry(uint64_t index) {
  LEDGER_ASSIGN_OR_RETURN(Response r, Send("GET", "/v1/entries/" + std::to_string(index), ""));
  json j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object() || !j.contains("entry") || !j["entry"].is_string())
    return BadAnswer("GET /v1/entries/" + std::to_string(index) + " answered HTTP " + std::to_string(r.status));
  auto raw = ledger::Base64Decode(j["entry"].get_ref<const std::string&>());
  if (!raw.ok()) return BadAnswer("entry " + std::to_string(index) + " is not base64");
  return *raw;
}

ledger::StatusOr<std::vector<EntryOutcome>> LogClient::Submit(const std::vector<ledger::Bytes>& entries,
                                                              const std::optional<ledger::NoteVerifier>& log_key) {
  std::vector<EntryOutcome> out(entries.size());
  std::vector<size_t> all(entries.size());
  for (size_t i = 0; i < all.size(); i++) all[i] = i;
  if (!all.empty()) LEDGER_RETURN_IF_ERROR(SubmitSome(entries, all, log_key, &out));
  return out;
}

Status LogClient::SubmitSome(const std::vector<ledger::Bytes>& entries, const std::vector<size_t>& which,
                             const std::optional<ledger::NoteVerifier>& log_key, std::vector<EntryOutcome>* out) {
  json arr = json::array();
  for (size_t i : which) arr.push_back(ledger::Base64Encode(entries[i]));
  LEDGER_ASSIGN_OR_RETURN(Response r, Send("POST", "/v1/entries", json{{"entries", std::move(arr)}}.dump()));
  if (r.status >= 500)
    return Status::Unavailable("the log at " + url_ + " failed (HTTP " + std::to_string(r.status) + "): " + r.body.substr(0, 200));
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_object()) return BadAnswer("HTTP " + std::to_string(r.status) + " with a body that is not a JSON object");

  if (j.contains("receipts")) {
    const json& receipts = j["receipts"];
    if (!receipts.is_array() || receipts.size() != which.size()) return BadAnswer("\"receipts\" does not match the entries sent");
    if (!j.contains("checkpoint") || !j["checkpoint"].is_string()) return BadAnswer("no \"checkpoint\"");
    const std::string& cp_text = j["checkpoint"].get_ref<const std::string&>();
    std::optional<ledger::Checkpoint> cp;
    for (size_t k = 0; k < which.size(); k++) {
      const json& rc = receipts[k];
      EntryOutcome& o = (*out)[which[k]];
      if (!rc.is_object()) return BadAnswer("a receipt is not an object");
      if (rc.contains("error")) {
        o.refusal = rc["error"].is_string() ? rc["error"].get<std::string>() : "refused";
        continue;
      }
      if (!cp) {
        LEDGER_ASSIGN_OR_RETURN(ledger::Checkpoint c, OpenResponseCheckpoint(cp_text, log_key));
        cp = std::move(c);
      }
      if (!rc.contains("index") || !rc["index"].is_number_unsigned()) return BadAnswer("a receipt has no index");
      if (!rc.contains("leaf_hash") || !rc.contains("inclusion") || !rc["inclusion"].is_array())
        return BadAnswer("a receipt has no leaf_hash or inclusion");
      uint64_t index = rc["index"].get<uint64_t>();
      LEDGER_ASSIGN_OR_RETURN(ledger::Hash leaf, HashField(rc["leaf_hash"], "leaf_hash"));
      std::vector<ledger::Hash> proof;
      for (const json& h : rc["inclusion"]) {
        LEDGER_ASSIGN_OR_RETURN(ledger::Hash hash, HashField(h, "inclusion hash"));
        proof.push_back(hash);
      }
      ledger::Bytes entry = entries[which[k]];
      if (ledger::HashLeaf(entry) != leaf) {
        // An idempotent retry signed differently: the receipt is the
        // original entry's. Fetch it so the receipt carries what is logged.
        LEDGER_ASSIGN_OR_RETURN(entry, GetEntry(index));
        if (ledger::HashLeaf(entry) != leaf)
          return Status::Corruption("the log's receipt for entry " + std::to_string(index) + " names a different leaf hash");
      }
      Status inc = ledger::VerifyInclusion(leaf, index, cp->size, proof, cp->root);
      if (!inc.ok())
        return Status::Corruption("the log's receipt for entry " + std::to_string(index) +
                                  " does not verify against its checkpoint: " + inc.message());
      o.accepted = true;
      o.index = index;
      o.leaf_hash = leaf;
      o.duplicate = rc.contains("duplicate") && rc["duplicate"] == true;
      o.tlog_proof = ledger::FormatTlogProof({std::move(entry), index, std::move(proof), cp_text});
    }
    return Status::OK();
  }

  if (r.status < 400 || !j.contains("error") || !j["error"].is_string())
    return BadAnswer("HTTP " + std::to_string(r.status) + " without receipts or an error");
  std::string error = j["error"].get<std::string>();
  // Statuses that judge entries; anything else (404 for a wrong URL, 415)
  // means the request never reached a log's append path.
  if (r.status != 400 && r.status != 403 && r.status != 409 && r.status != 413)
    return Status::Unavailable("the log at " + url_ + " answered HTTP " + std::to_string(r.status) + ": " + error +
                               " (is --log the log's base URL?)");
  std::string rest;
  std::optional<size_t> k = RefusalIndex(error, &rest);
  if (which.size() == 1) {
    (*out)[which[0]].refusal = k && *k == 0 ? rest : error;
    return Status::OK();
  }
  // The whole request was refused. If one entry caused it, refuse that one
  // and send the rest again; otherwise halve the batch until it is pinned.
  if (k && *k < which.size()) {
    (*out)[which[*k]].refusal = rest;
    std::vector<size_t> others;
    for (size_t i = 0; i < which.size(); i++)
      if (i != *k) others.push_back(which[i]);
    return SubmitSome(entries, others, log_key, out);
  }
  std::vector<size_t> first(which.begin(), which.begin() + which.size() / 2);
  std::vector<size_t> second(which.begin() + which.size() / 2, which.end());
  LEDGER_RETURN_IF_ERROR(SubmitSome(entries, first, log_key, out));
  return SubmitSome(entries, second, log_key, out);
}

}  // namespace ledgerctl
