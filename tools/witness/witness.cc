// ledger-witness core (see witness.h and README.md).
#include "witness.h"

#include <sodium.h>

#include <algorithm>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ledger/files.h"
#include "ledger/merkle.h"

namespace witness {
namespace {

using ledger::Status;
using ledger::StatusOr;
using json = nlohmann::json;

constexpr char kSizeContentType[] = "text/x.tlog.size";

Response Error(int status, const std::string& reason) {
  Response r;
  r.status = status;
  r.body = reason + "\n";
  return r;
}

Response Conflict(uint64_t known) {
  Response r;
  r.status = 409;
  r.content_type = kSizeContentType;
  r.body = std::to_string(known) + "\n";
  return r;
}

std::string SignatureLine(const ledger::NoteSignature& sig) {
  ledger::Bytes raw;
  for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>((sig.key_id >> s) & 0xff));
  raw.append(sig.signature);
  return "\xE2\x80\x94 " + sig.name + " " + ledger::Base64Encode(raw) + "\n";
}

// AddCheckpointRequest is a parsed add-checkpoint body.
struct AddCheckpointRequest {
  uint64_t old_size = 0;
  std::vector<ledger::Hash> proof;
  std::string_view note;  // the signed checkpoint, a view into the body
};

// ParseRequest parses "old <N>\n" (<base64 hash>\n){0,63} "\n" <note>.
StatusOr<AddCheckpointRequest> ParseRequest(std::string_view body) {
  AddCheckpointRequest req;
  size_t nl = body.find('\n');
  if (nl == std::string_view::npos) return Status::InvalidArgument("request: missing old size line");
  std::string_view line = body.substr(0, nl);
  body.remove_prefix(nl + 1);
  if (line.substr(0, 4) != "old ") return Status::InvalidArgument("request: first line must be \"old <size>\"");
  auto old = ledger::ParseUint64(line.substr(4));
  if (!old.ok()) return Status::InvalidArgument("request: bad old size: " + old.status().message());
  req.old_size = *old;
  for (;;) {
    nl = body.find('\n');
    if (nl == std::string_view::npos) return Status::InvalidArgument("request: missing empty line before the checkpoint");
    line = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    if (line.empty()) break;
    if (req.proof.size() == kMaxProofLines)
      return Status::InvalidArgument("request: more than " + std::to_string(kMaxProofLines) + " consistency proof lines");
    auto raw = ledger::Base64Decode(line);
    if (!raw.ok() || raw->size() != 32)
      return Status::InvalidArgument("request: consistency proof line " + std::to_string(req.proof.size() + 1) +
                                     " is not a base64 SHA-256 hash");
    req.proof.push_back(*ledger::HashFromBytes(*raw));
  }
  req.note = body;
  return req;
}

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

uint64_t SystemClock() {
  time_t now = time(nullptr);
  return now < 0 ? 0 : static_cast<uint64_t>(now);
}

}  // namespace

// ------------------------------------------------------------------ config

StatusOr<Config> ParseConfig(std::string_view json_text, const std::string& base_dir) {
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::InvalidArgument("config: not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "name" && it.key() != "key" && it.key() != "logs")
      return Status::InvalidArgument("config: unknown field \"" + it.key() + "\" (want name, key, logs)");
  }
  Config c;
  if (!j.contains("name") || !j["name"].is_string()) return Status::InvalidArgument("config: \"name\" must be a string");
  c.name = j["name"].get<std::string>();
  // Validate the name as a key name now, for a clear error.
  if (auto probe = ledger::CosignatureVerifier::FromPublicKey(c.name, std::string(32, '\0')); !probe.ok())
    return Status::InvalidArgument("config: \"name\": " + probe.status().message());
  if (!j.contains("key") || !j["key"].is_string() || j["key"].get<std::string>().empty())
    return Status::InvalidArgument("config: \"key\" must be the path of the witness private key file");
  c.key_path = j["key"].get<std::string>();
  if (c.key_path[0] != '/') c.key_path = base_dir + "/" + c.key_path;
  if (!j.contains("logs") || !j["logs"].is_array()) return Status::InvalidArgument("config: \"logs\" must be an array");
  for (size_t i = 0; i < j["logs"].size(); i++) {
    const json& l = j["logs"][i];
    const std::string where = "config: logs[" + std::to_string(i) + "]";
    if (!l.is_object()) return Status::InvalidArgument(where + ": not an object");
    for (auto it = l.begin(); it != l.end(); ++it) {
      if (it.key() != "origin" && it.key() != "key" && it.key() != "keys")
        return Status::InvalidArgument(where + ": unknown field \"" + it.key() + "\" (want origin, key or keys)");
    }
    LogConfig lc;
    if (!l.contains("origin") || !l["origin"].is_string() || l["origin"].get<std::string>().empty())
      return Status::InvalidArgument(where + ": \"origin\" must be a non-empty string");
    lc.origin = l["origin"].get<std::string>();
    if (lc.origin.find('\n') != std::string::npos) return Status::InvalidArgument(where + ": origin has a newline");
    std::vector<std::string> keys;
    if (l.contains("key") == l.contains("keys")) return Status::InvalidArgument(where + ": give exactly one of \"key\" and \"keys\"");
    if (l.contains("key")) {
      if (!l["key"].is_string()) return Status::InvalidArgument(where + ": \"key\" must be a verifier key string");
      keys.push_back(l["key"].get<std::string>());
    } else {
      if (!l["keys"].is_array() || l["keys"].empty())
        return Status::InvalidArgument(where + ": \"keys\" must be a non-empty array of verifier key strings");
      for (const auto& k : l["keys"]) {
        if (!k.is_string()) return Status::InvalidArgument(where + ": \"keys\" must hold strings");
        keys.push_back(k.get<std::string>());
      }
    }
    for (const auto& k : keys) {
      auto v = ledger::NoteVerifier::Parse(k);
      if (!v.ok()) return Status::InvalidArgument(where + ": " + v.status().message());
      for (const auto& o : lc.keys) {
        if (o.name() == v->name() && o.key_id() == v->key_id())
          return Status::InvalidArgument(where + ": key " + k + " given twice (or two keys with one name and key ID)");
      }
      lc.keys.push_back(*v);
    }
    for (const auto& o : c.logs) {
      if (o.origin == lc.origin) return Status::InvalidArgument(where + ": origin \"" + lc.origin + "\" listed twice");
    }
    c.logs.push_back(std::move(lc));
  }
  return c;
}

StatusOr<Config> LoadConfig(const std::string& path) {
  auto text = ledger::ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, DirOf(path));
}

// --------------------------------------------------------------------- key

StatusOr<std::unique_ptr<ledger::CosignatureSigner>> LoadOrCreateCosignatureKey(const std::string& path,
                                                                                const std::string& name,
                                                                                bool* created) {
  auto text = ledger::ReadSecretFile(path);
  if (text.ok()) {
    std::string s = std::move(*text);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    auto signer = ledger::CosignatureSigner::ParsePrivateKey(s);
    sodium_memzero(s.data(), s.size());
    if (!signer.ok())
      return Status::InvalidArgument("key file " + path + " is not a valid witness private key: " +
                                     signer.status().message());
    if (!name.empty() && (*signer)->name() != name)
      return Status::FailedPrecondition("key file " + path + " is for \"" + (*signer)->name() + "\", not \"" + name +
                                        "\"");
    *created = false;
    return std::move(*signer);
  }
  if (!text.status().IsNotFound()) return text.status();
  if (name.empty()) return Status::InvalidArgument("no key name given to create " + path);
  auto signer = ledger::CosignatureSigner::Generate(name);
  if (!signer.ok()) return signer.status();
  std::string skey = (*signer)->PrivateKeyString();
  skey.push_back('\n');
  Status s = ledger::WriteFileAtomic(path, skey, 0600);
  sodium_memzero(skey.data(), skey.size());
  if (!s.ok()) return s;
  *created = true;
  return std::move(*signer);
}

// ------------------------------------------------------------------- state

std::string StateFileName(std::string_view origin) {
  ledger::Hash h = ledger::Sha256(origin);
  return ledger::HexEncode(ledger::HashView(h)) + ".checkpoint";
}

StatusOr<std::unique_ptr<Witness>> Witness::Open(const Config& config,
                                                 std::unique_ptr<ledger::CosignatureSigner> signer,
                                                 const std::string& state_dir, Clock clock) {
  if (!signer) return Status::InvalidArgument("witness: no signer");
  std::unique_ptr<Witness> w(new Witness());
  w->signer_ = std::move(signer);
  w->clock_ = clock ? std::move(clock) : Clock(SystemClock);
  for (const auto& lc : config.logs) {
    auto st = std::make_unique<LogState>();
    st->origin = lc.origin;
    st->keys = lc.keys;
    st->path = state_dir + "/" + StateFileName(lc.origin);
    st->root = ledger::EmptyTreeRoot();
    LEDGER_RETURN_IF_ERROR(w->LoadState(st.get()));
    w->logs_.emplace(lc.origin, std::move(st));
  }
  return w;
}

Status Witness::LoadState(LogState* st) {
  auto text = ledger::ReadFile(st->path);
  if (!text.ok()) return text.status().IsNotFound() ? Status::OK() : text.status();
  const std::string where = "state file " + st->path + " (" + st->origin + "): ";
  auto note = ledger::ParseNote(*text);
  if (!note.ok()) return Status::Corruption(where + note.status().message());
  auto cp = ledger::ParseCheckpoint(note->text);
  if (!cp.ok()) return Status::Corruption(where + cp.status().message());
  if (cp->origin != st->origin) return Status::Corruption(where + "holds a checkpoint of \"" + cp->origin + "\"");
  if (cp->size == 0 && cp->root != ledger::EmptyTreeRoot()) return Status::Corruption(where + "size 0 with a non-empty root");
  uint64_t last = 0;
  bool ours = false;
  for (const auto& sig : note->signatures) {
    if (!signer_->verifier().Matches(sig)) continue;
    auto ts = signer_->verifier().VerifyCosignature(sig, note->text);
    if (!ts.ok()) return Status::Corruption(where + ts.status().message());
    last = std::max(last, *ts);
    ours = true;
  }
  if (!ours) {
    std::cerr << "ledger-witness: warning: " << where
              << "has no cosignature by this witness's key (was the key replaced?); keeping its size " << cp->size
              << " as the latest cosigned\n";
  }
  st->cosigned = true;
  st->size = cp->size;
  st->root = cp->root;
  st->last_time = last;
  st->note = std::move(*text);
  return Status::OK();
}

// ---------------------------------------------------------- add-checkpoint

Response Witness::AddCheckpoint(std::string_view body) {
  auto req = ParseRequest(body);
  if (!req.ok()) return Error(400, req.status().message());
  auto parsed = ledger::ParseNote(req->note);
  if (!parsed.ok()) return Error(400, "checkpoint: " + parsed.status().message());
  auto cp = ledger::ParseCheckpoint(parsed->text);
  if (!cp.ok()) return Error(400, cp.status().message());

  auto it = logs_.find(cp->origin);
  if (it == logs_.end()) return Error(404, "unknown log origin \"" + cp->origin + "\"");
  LogState& st = *it->second;

  // A valid signature by one of the log's keys; signatures by unknown keys
  // are ignored, and a failing signature by a known key rejects the note.
  // OpenNote requires one given key; with several log keys any one will do.
  std::vector<ledger::NoteSignature> log_sigs;
  bool verified = false;
  std::string why;
  for (size_t i = 0; i < st.keys.size() && !verified; i++) {
    auto opened = ledger::OpenNote(req->note, st.keys, i);
    if (opened.ok()) {
      verified = true;
      log_sigs = std::move(opened->signatures);
    } else if (why.empty()) {
      why = opened.status().message();
    }
  }
  if (!verified) return Error(403, why);

  if (req->old_size > cp->size)
    return Error(400, "old size " + std::to_string(req->old_size) + " exceeds the checkpoint size " +
                          std::to_string(cp->size));

  // From the old-size check to the durable write, one request at a time per
  // log: otherwise two requests could both pass the check and the smaller
  // one be written last, rolling the witness back.
  std::lock_guard<std::mutex> lock(st.mu);
  if (req->old_size != st.size) return Conflict(st.size);
  if (req->old_size == cp->size) {
    if (cp->root != st.root) {
      std::cerr << "ledger-witness: LOG MISBEHAVIOUR? " << st.origin << ": signed checkpoint of size " << cp->size
                << " with a root other than the cosigned one:\n"
                << req->note << std::flush;
      return Conflict(st.size);
    }
    if (!req->proof.empty()) return Error(422, "consistency proof between equal sizes must be empty");
  } else {
    Status s = ledger::VerifyConsistency(req->old_size, cp->size, req->proof, st.root, cp->root);
    if (!s.ok()) {
      std::cerr << "ledger-witness: " << st.origin << ": consistency proof from " << req->old_size << " to "
                << cp->size << " does not verify (" << s.message() << "); request:\n"
                << body << std::flush;
      return Error(422, "consistency proof does not verify: " + s.message());
    }
  }

  // Cosignature times never go backwards for a log, even if the clock does:
  // "as of time T the largest tree was X" must not contradict an earlier one.
  const uint64_t now = std::max(clock_(), st.last_time);
  auto line = signer_->CosignLine(parsed->text, now);
  if (!line.ok()) return Error(500, "cannot cosign: " + line.status().message());
  std::string stored = parsed->text + "\n";
  for (const auto& sig : log_sigs) stored += SignatureLine(sig);
  stored += *line;
  // Durable before we answer: a cosignature is never handed out for a state
  // the witness could forget in a crash.
  if (Status s = ledger::WriteFileAtomic(st.path, stored, 0644); !s.ok()) {
    std::cerr << "ledger-witness: cannot save the state of " << st.origin << ": " << s.ToString() << std::endl;
    return Error(500, "cannot save the witness state");
  }
  st.cosigned = true;
  st.size = cp->size;
  st.root = cp->root;
  st.last_time = now;
  st.note = std::move(stored);

  Response r;
  r.body = std::move(*line);
  return r;
}

// ------------------------------------------------------------------- reads

Response Witness::LatestCheckpoint(std::string_view origin) const {
  auto it = logs_.find(origin);
  if (it == logs_.end()) return Error(404, "unknown log origin \"" + std::string(origin) + "\"");
  const LogState& st = *it->second;
  std::lock_guard<std::mutex> lock(st.mu);
  if (!st.cosigned) return Error(404, "no checkpoint of \"" + st.origin + "\" cosigned yet");
  Response r;
  r.body = st.note;
  return r;
}

Response Witness::Logs() const {
  json arr = json::array();
  for (const auto& [origin, st] : logs_) {
    std::lock_guard<std::mutex> lock(st->mu);
    json o = {{"origin", origin}, {"size", st->size}};
    if (st->cosigned) {
      o["root"] = ledger::Base64Encode(ledger::HashView(st->root));
      o["time"] = st->last_time;
    }
    arr.push_back(std::move(o));
  }
  Response r;
  r.content_type = "application/json";
  r.body = arr.dump() + "\n";
  return r;
}

}  // namespace witness
