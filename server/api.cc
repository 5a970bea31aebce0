#include "api.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "ledger/merkle.h"
#include "ledger/record.h"
#include "ledger/tiles.h"
#include "ledger/tlog_proof.h"
#include "connection.h"
#include "json_body.h"
#include "query.h"
#include "subjects_api.h"
#include "web.h"

namespace ledgerd {
namespace {

using json = nlohmann::json;
using ledger::Status;

int HttpStatus(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return 200;
    case Status::Code::kInvalidArgument:
    case Status::Code::kOutOfRange: return 400;
    case Status::Code::kPermissionDenied: return 403;
    case Status::Code::kNotFound: return 404;
    case Status::Code::kAlreadyExists:
    case Status::Code::kFailedPrecondition: return 409;
    case Status::Code::kResourceExhausted: return 507;
    case Status::Code::kUnavailable: return 503;
    default: return 500;
  }
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
    case 422: return "unprocessable entity";
    case 503: return "service unavailable";
    default: return "error";
  }
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  // Reasons may quote client bytes (a query parameter's name): invalid
  // UTF-8 becomes U+FFFD instead of an exception and a 500.
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// SendJsonText sends |body|, already JSON text, with SendJson's headers
// (moved in: httplib's set_content would copy it).
void SendJsonText(httplib::Response& res, int status, std::string&& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("Content-Type", "application/json");
  res.body = std::move(body);
}

// ProofJson writes {"<a>":A,"hashes":[...],"<b>":B} or, when |hashes_first|,
// {"hashes":[...],"<a>":A,"<b>":B}: nlohmann/json's dump of those objects
// (keys sorted) byte for byte, without building them.
std::string ProofJson(const char* a, uint64_t av, const char* b, uint64_t bv, const std::vector<ledger::Hash>& hashes,
                      bool hashes_first) {
  std::string out;
  out.reserve(64 + hashes.size() * 47);
  out += '{';
  if (hashes_first) {
    out += "\"hashes\":";
    AppendHashArray(&out, hashes);
    out += ",";
  }
  out += '"';
  out += a;
  out += "\":";
  out += std::to_string(av);
  if (!hashes_first) {
    out += ",\"hashes\":";
    AppendHashArray(&out, hashes);
  }
  out += ",\"";
  out += b;
  out += "\":";
  out += std::to_string(bv);
  out += '}';
  return out;
}

void SendError(httplib::Response& res, int status, const std::string& reason) {
  SendJson(res, status, json{{"error", reason}});
}

void SendStatus(httplib::Response& res, const Status& s) {
  // Internal failures are logged by the caller's status; never echo
  // storage paths or secrets, only the message built for clients.
  SendError(res, HttpStatus(s), s.message());
}

std::string B64(const ledger::Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

// QueryUint reads a required (or optional, when |fallback| is given)
// canonical decimal query parameter (query.h).
ledger::StatusOr<uint64_t> QueryUint(const httplib::Request& req, const char* name,
                                     std::optional<uint64_t> fallback = std::nullopt) {
  return ParseQueryUint(req.params, name, fallback);
}

// RejectUnknownParams keeps typos and repeated parameters from being
// silently ignored (query.h).
bool RejectUnknownParams(const httplib::Request& req, httplib::Response& res,
                         std::initializer_list<const char*> allowed) {
  Status s = CheckQueryParams(req.target, req.params, {allowed.begin(), allowed.end()});
  if (!s.ok()) SendError(res, 400, s.message());
  return s.ok();
}

// RouteLabel names a request's route for metrics without unbounded labels.
std::string RouteLabel(const httplib::Request& req) {
  const std::string& p = req.path;
  auto starts = [&](const char* prefix) { return p.rfind(prefix, 0) == 0; };
  std::string route;
  if (p == "/checkpoint") route = "/checkpoint";
  else if (starts("/tile/entries/")) route = "/tile/entries";
  else if (starts("/tile/")) route = "/tile";
  else if (p == "/v1/entries") route = "/v1/entries";
  else if (starts("/v1/entries/")) route = "/v1/entries/{index}";
  else if (starts("/v1/subjects/")) route = "/v1/subjects/{tag}";
  else if (p == "/v1/proof/inclusion" || p == "/v1/proof/consistency" || p == "/v1/proof/by-hash" ||
           p == "/v1/proof/tlog-proof" || p == "/healthz" || p == "/metrics" || IsWebPath(p))
    route = p;
  else route = "other";
  return req.method + " " + route;
}

bool IsKnownPath(const std::string& p) {
  // Exactly the routed paths: GET /v1/entries/1/2 or /v1/proof/nope is 404.
  constexpr size_t kEntryPrefix = sizeof("/v1/entries/") - 1;
  bool entry = p.rfind("/v1/entries/", 0) == 0 && p.size() > kEntryPrefix && p.find('/', kEntryPrefix) == std::string::npos;
  return p == "/checkpoint" || p.rfind("/tile/", 0) == 0 || p == "/v1/entries" || entry || p.rfind("/v1/subjects/", 0) == 0 ||
         p == "/v1/proof/inclusion" || p == "/v1/proof/consistency" || p == "/v1/proof/by-hash" ||
         p == "/v1/proof/tlog-proof" || p == "/healthz" || p == "/metrics" || IsWebPath(p);
}

}  // namespace

void Api::Register(httplib::Server& server) {
  using namespace std::placeholders;
  using Handler = httplib::Server::Handler;
  server.Get("/checkpoint", Handler(std::bind(&Api::GetCheckpoint, this, _1, _2)));
  server.Get(R"(/tile/.+)", Handler(std::bind(&Api::GetTile, this, _1, _2)));
  server.Post("/v1/entries", Handler(std::bind(&Api::PostEntries, this, _1, _2)));
  server.Get(R"(/v1/entries/([^/]+))", std::bind(&Api::GetEntry, this, _1, _2));
  server.Get("/v1/proof/inclusion", Handler(std::bind(&Api::GetInclusion, this, _1, _2)));
  server.Get("/v1/proof/consistency", Handler(std::bind(&Api::GetConsistency, this, _1, _2)));
  server.Get("/v1/proof/by-hash", Handler(std::bind(&Api::GetByHash, this, _1, _2)));
  server.Get("/v1/proof/tlog-proof", Handler(std::bind(&Api::GetTlogProof, this, _1, _2)));
  server.Get("/healthz", Handler(std::bind(&Api::GetHealth, this, _1, _2)));
  server.Get("/metrics", Handler(std::bind(&Api::GetMetrics, this, _1, _2)));
  RegisterWeb(server, options_.verifier_key);  // the customer page at / and GET /v1/log
  RegisterSubjects(server, store_, options_.opaque_entries ? nullptr : options_.subject_tree);  // GET /v1/subjects/<tag> (subjects_api.h)

  // Fallbacks: a known path with the wrong method is 405, anything else 404.
  Handler fallback = [](const httplib::Request& req, httplib::Response& res) {
    if (IsKnownPath(req.path)) {
      res.set_header("Allow", req.path == "/v1/entries" ? "POST" : "GET, HEAD");
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

  // Errors produced by httplib itself (413, 400 on unparsable requests,
  // unknown methods) get a JSON body too.
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    // A request cut off by the connection's byte budget (connection.h) is
    // too large, not malformed.
    if (RequestOverBudget()) SendError(res, 413, "request larger than --max-body allows");
    else SendError(res, res.status, DefaultReason(res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    SendError(res, 500, "internal error");
  });
  server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_->CountRequest(RouteLabel(req), res.status);
  });
}

void Api::GetCheckpoint(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {})) return;
  std::string cp;
  if (Witnessing* w = options_.witnessing; w && w->enforced()) {
    auto witnessed = w->Current();
    if (!witnessed)
      return SendError(res, 503, "no checkpoint has cosignatures from " + std::to_string(w->quorum()) + " of the " +
                                     std::to_string(w->witness_count()) + " witnesses yet");
    cp = witnessed->note;
  } else {
    cp = sequencer_->latest_checkpoint();
  }
  res.set_header("Cache-Control", "public, max-age=1");
  res.set_content(cp, "text/plain; charset=utf-8");
}

void Api::GetTile(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {})) return;
  auto id = ledger::ParseTilePath(std::string_view(req.path).substr(1));
  if (!id.ok()) return SendError(res, 400, id.status().message());
  auto reader = store_->Read();
  if (!reader.ok()) return SendStatus(res, reader.status());
  const ledger::LogReader& r = **reader;
  std::string body;
  if (id->entries) {
    uint32_t have = ledger::TileWidthForSize(0, id->index, r.size());
    // A full bundle exists once 256 entries do; a partial one of width W
    // once at least W do (its contents never change).
    if (id->width == ledger::kTileWidth ? have != ledger::kTileWidth : id->width > have)
      return SendError(res, 404, "entry bundle does not exist at the current tree size");
    if (id->width == ledger::kTileWidth) {
      // Stored in its served form (SPEC.md §7): one copy, no re-encoding.
      auto bundle = r.GetEntryBundle(id->index);
      if (!bundle.ok()) return SendStatus(res, bundle.status());
      body.assign(bundle->data(), bundle->size());
    } else {
      auto entries = r.GetEntries(id->index * ledger::kTileWidth, id->width);
      if (!entries.ok()) return SendStatus(res, entries.status());
      size_t bytes = 0;
      for (ledger::ByteView e : *entries) bytes += 2 + e.size();
      body.reserve(bytes);
      for (ledger::ByteView e : *entries) ledger::AppendBundleEntry(&body, e);
    }
  } else {
    auto tile = ledger::ReadTile(*id, r.size(), CachedHashReader(r, nodes_.get()));
    if (!tile.ok()) return SendStatus(res, tile.status());
    body = std::move(*tile);
  }
  // Full and partial tiles alike never change once served (C2SP tlog-tiles).
  res.set_header("Cache-Control", "public, max-age=31536000, immutable");
  res.set_header("Content-Type", "application/octet-stream");
  res.body = std::move(body);  // set_content would copy it
}

void Api::PostEntries(const httplib::Request& req, httplib::Response& res) {
  // Content-Type first: httplib parses a form-encoded body into params.
  std::string ctype = req.get_header_value("Content-Type");
  if (ctype.substr(0, ctype.find(';')) != "application/json")
    return SendError(res, 415, "Content-Type must be application/json");
  if (!RejectUnknownParams(req, res, {"proof"})) return;
  bool want_tlog_proof = false;
  if (req.has_param("proof")) {
    if (req.get_param_value("proof") != "tlog") return SendError(res, 400, "query parameter proof must be \"tlog\"");
    want_tlog_proof = true;
  }
  if (req.body.size() > options_.max_body_bytes) return SendError(res, 413, "request body too large");
  // The entries' base64 texts. The plain form every client sends is read
  // without building a JSON DOM (json_body.h); any other body goes through
  // nlohmann/json, which gives the exact reason for refusing it.
  std::vector<std::string_view> texts;
  size_t not_string = SIZE_MAX;  // index of the first entry that is not a string
  json body;
  if (!ParseSimpleEntriesBody(req.body, &texts)) {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) return SendError(res, 400, "body is not valid JSON");
    if (!body.is_object() || !body.contains("entries")) return SendError(res, 400, "body must be an object with an \"entries\" array");
    for (const auto& [k, v] : body.items())
      if (k != "entries") return SendError(res, 400, "unknown field \"" + k + "\"");
    const json& arr = body["entries"];
    if (!arr.is_array()) return SendError(res, 400, "\"entries\" must be an array");
    texts.clear();
    for (const json& e : arr) {
      if (!e.is_string()) {
        not_string = texts.size();
        texts.resize(arr.size());  // the count checks below see the array's size
        break;
      }
      texts.push_back(e.get_ref<const std::string&>());
    }
  }
  if (texts.empty()) return SendError(res, 400, "\"entries\" must not be empty");
  if (texts.size() > options_.max_entries_per_request)
    return SendError(res, 400, "at most " + std::to_string(options_.max_entries_per_request) + " entries per request");
  std::vector<ledger::Bytes> entries;
  std::vector<std::shared_ptr<const void>> parsed;
  entries.reserve(texts.size());
  parsed.reserve(texts.size());
  // Parsing and signature checks run here, on the worker threads, in
  // parallel; the sequencer only checks them against the log's state.
  for (size_t i = 0; i < texts.size(); i++) {
    auto where = [i] { return "entries[" + std::to_string(i) + "]: "; };
    if (i == not_string) return SendError(res, 400, where() + "must be a base64 string");
    auto raw = ledger::Base64Decode(texts[i]);
    if (!raw.ok()) return SendError(res, 400, where() + raw.status().message());
    if (raw->empty()) return SendError(res, 400, where() + "is empty");
    if (raw->size() > ledger::kMaxEntrySize) return SendError(res, 413, where() + "exceeds 65535 bytes");
    if (!options_.opaque_entries) {
      auto entry = ledger::ParseEntry(*raw);
      if (!entry.ok()) return SendError(res, HttpStatus(entry.status()), where() + entry.status().message());
      parsed.push_back(std::make_shared<const ledger::ParsedEntry>(std::move(*entry)));
    }
    entries.push_back(std::move(*raw));
  }
  size_t count = entries.size();
  // Rate limits are charged before anything is queued (SPEC.md §6).
  if (RateLimiter* limiter = options_.rate_limiter; limiter && !options_.opaque_entries) {
    if (auto refusal = limiter->AdmitEntries(parsed, *store_)) {
      res.set_header("Retry-After", std::to_string(refusal->retry_after));
      return SendError(res, 429, refusal->reason);
    }
  }
  auto result = sequencer_->Append(std::move(entries), std::move(parsed));
  if (!result.ok()) return SendStatus(res, result.status());
  // Receipts: inclusion proofs against the checkpoint that covers them. With
  // witnesses (K > 0) that is the newest witnessed checkpoint once one covers
  // the entries (bounded wait; 503 otherwise, the entries stay logged).
  uint64_t tree_size = result->tree_size;
  std::string checkpoint = result->checkpoint;
  if (Witnessing* w = options_.witnessing; w && w->enforced()) {
    // The smallest size that covers every logged entry (a retry of old
    // entries needs no newer checkpoint).
    uint64_t need = 0;
    for (const auto& e : result->entries)
      if (e.status.ok()) need = std::max(need, e.index + 1);
    std::shared_ptr<const WitnessedCheckpoint> witnessed;
    if (need > 0) {
      auto waited = w->WaitFor(need, w->receipt_timeout());
      if (!waited.ok()) return SendStatus(res, waited.status());
      witnessed = *waited;
    } else {
      witnessed = w->Current();
    }
    if (witnessed) {
      tree_size = witnessed->size;
      checkpoint = witnessed->note;
    }
  }
  // From here on, a failure must not read as "not logged" when some
  // entries were: a storage failure of a later batch (after which LMDB
  // refuses even new read snapshots) can come between this batch's commit
  // and its receipts (SPEC.md §7, storage faults).
  bool logged = false;
  for (const auto& e : result->entries) logged = logged || e.status.ok();
  auto fail_after_commit = [&](const Status& s) {
    if (!logged) return SendStatus(res, s);
    SendError(res, 503, "the entries are logged, but their receipts could not be read (" + s.message() +
                            "): retry the same request later for their receipts");
  };
  // Opened after the wait: the store has grown at least to tree_size.
  auto reader = store_->Read();
  if (!reader.ok()) return fail_after_commit(reader.status());
  // The response is written directly (json_body.h): nlohmann/json's dump of
  // the same objects, keys in its (sorted) order, without building them.
  std::string out;
  out.reserve(64 + checkpoint.size() + result->entries.size() * (130 + 47 * 24));
  out += "{\"checkpoint\":";
  AppendJsonString(&out, checkpoint);
  out += ",\"receipts\":[";
  size_t refused = 0;
  int first_refusal = 0;
  std::string first_reason;
  // The receipts of one request share most of their nodes: read each once
  // (complete subtrees come from the shared node cache; a single receipt
  // needs no per-request map).
  CachedHashReader shared(**reader, nodes_.get());
  ledger::CachingHashReader batch_nodes(shared);
  const ledger::HashReader& nodes = result->entries.size() > 1 ? static_cast<const ledger::HashReader&>(batch_nodes) : shared;
  for (size_t i = 0; i < result->entries.size(); i++) {
    const auto& e = result->entries[i];
    if (i) out += ',';
    if (!e.status.ok()) {
      refused++;
      if (!first_refusal) {
        first_refusal = HttpStatus(e.status);
        first_reason = e.status.message();
      }
      out += "{\"error\":";
      AppendJsonString(&out, e.status.message());
      out += ",\"status\":";
      out += std::to_string(HttpStatus(e.status));
      out += '}';
      continue;
    }
    auto proof = ledger::InclusionProof(e.index, tree_size, nodes);
    if (!proof.ok()) return fail_after_commit(proof.status());
    out += '{';
    if (e.duplicate) out += "\"duplicate\":true,";
    out += "\"inclusion\":";
    AppendHashArray(&out, *proof);
    out += ",\"index\":";
    out += std::to_string(e.index);
    out += ",\"leaf_hash\":\"";
    AppendBase64(&out, ledger::HashView(e.leaf_hash));
    out += '"';
    if (want_tlog_proof) {
      out += ",\"tlog_proof\":";
      AppendJsonString(&out, ledger::FormatTlogProof({{}, e.index, *proof, checkpoint}));
    }
    out += '}';
  }
  if (count == 1 && refused == 1) return SendError(res, first_refusal, first_reason);
  out += ']';
  if (refused) out += ",\"refused\":" + std::to_string(refused);
  out += '}';
  // 207: some entries were logged and some refused; all refused: the first
  // refusal's status.
  SendJsonText(res, refused == 0 ? 200 : refused == count ? first_refusal : 207, std::move(out));
}

void Api::GetEntry(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {})) return;
  auto index = ledger::ParseUint64(req.matches[1].str());
  if (!index.ok()) return SendError(res, 400, "entry index: " + index.status().message());
  auto reader = store_->Read();
  if (!reader.ok()) return SendStatus(res, reader.status());
  auto entry = (*reader)->GetEntry(*index);
  if (!entry.ok()) return SendStatus(res, entry.status());
  SendJson(res, 200, json{{"index", *index}, {"leaf_hash", B64(ledger::HashLeaf(*entry))}, {"entry", ledger::Base64Encode(*entry)}});
}

void Api::GetInclusion(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {"index", "size"})) return;
  auto reader = store_->Read();
  if (!reader.ok()) return SendStatus(res, reader.status());
  const ledger::LogReader& r = **reader;
  auto index = QueryUint(req, "index");
  if (!index.ok()) return SendStatus(res, index.status());
  auto size = QueryUint(req, "size", r.size());
  if (!size.ok()) return SendStatus(res, size.status());
  if (*size > r.size()) return SendError(res, 404, "size " + std::to_string(*size) + " is beyond the tree size " + std::to_string(r.size()));
  if (*index >= *size) return SendError(res, 400, "index must be less than size");
  auto proof = ledger::InclusionProof(*index, *size, CachedHashReader(r, nodes_.get()));
  if (!proof.ok()) return SendStatus(res, proof.status());
  SendJsonText(res, 200, ProofJson("index", *index, "size", *size, *proof, true));
}

void Api::GetConsistency(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {"from", "to"})) return;
  auto reader = store_->Read();
  if (!reader.ok()) return SendStatus(res, reader.status());
  const ledger::LogReader& r = **reader;
  auto from = QueryUint(req, "from");
  if (!from.ok()) return SendStatus(res, from.status());
  auto to = QueryUint(req, "to", r.size());
  if (!to.ok()) return SendStatus(res, to.status());
  if (*to > r.size()) return SendError(res, 404, "size " + std::to_string(*to) + " is beyond the tree size " + std::to_string(r.size()));
  if (*from > *to) return SendError(res, 400, "from must not exceed to");
  auto proof = ledger::ConsistencyProof(*from, *to, CachedHashReader(r, nodes_.get()));
  if (!proof.ok()) return SendStatus(res, proof.status());
  SendJsonText(res, 200, ProofJson("from", *from, "to", *to, *proof, false));
}

void Api::GetByHash(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {"hash", "size"})) return;
  if (req.get_param_value_count("hash") != 1) return SendError(res, 400, "query parameter hash is required once");
  auto raw = ledger::Base64Decode(req.get_param_value("hash"));
  if (!raw.ok() || raw->size() != 32) return SendError(res, 400, "hash must be a base64 SHA-256 leaf hash");
  ledger::Hash leaf = *ledger::HashFromBytes(*raw);
  auto reader = store_->Read();
  if (!reader.ok()) return SendStatus(res, reader.status());
  const ledger::LogReader& r = **reader;
  auto size = QueryUint(req, "size", r.size());
  if (!size.ok()) return SendStatus(res, size.status());
  if (*size > r.size()) return SendError(res, 404, "size " + std::to_string(*size) + " is beyond the tree size " + std::to_string(r.size()));
  auto index = r.FindLeaf(leaf);
  if (!index.ok()) return SendStatus(res, index.status());
  if (*index >= *size) return SendError(res, 404, "leaf hash not in the tree of that size");
  auto proof = ledger::InclusionProof(*index, *size, CachedHashReader(r, nodes_.get()));
  if (!proof.ok()) return SendStatus(res, proof.status());
  SendJsonText(res, 200, ProofJson("index", *index, "size", *size, *proof, true));
}

void Api::GetTlogProof(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {"index"})) return;
  auto index = QueryUint(req, "index");
  if (!index.ok()) return SendStatus(res, index.status());
  auto reader = store_->Read();
  if (!reader.ok()) return SendStatus(res, reader.status());
  if (*index >= (*reader)->size()) return SendError(res, 404, "index is beyond the tree size");
  uint64_t tree_size = (*reader)->size();
  std::string checkpoint = (*reader)->checkpoint();
  if (Witnessing* w = options_.witnessing; w && w->enforced()) {
    // Against the newest witnessed checkpoint, once one covers the entry.
    auto witnessed = w->WaitFor(*index + 1, w->receipt_timeout());
    if (!witnessed.ok()) return SendStatus(res, witnessed.status());
    tree_size = (*witnessed)->size;
    checkpoint = (*witnessed)->note;
    reader = store_->Read();  // the store has grown at least to tree_size
    if (!reader.ok()) return SendStatus(res, reader.status());
  }
  const ledger::LogReader& r = **reader;
  auto proof = ledger::InclusionProof(*index, tree_size, CachedHashReader(r, nodes_.get()));
  if (!proof.ok()) return SendStatus(res, proof.status());
  res.set_header("Cache-Control", "no-store");
  auto entry = r.GetEntry(*index);
  if (!entry.ok()) return SendStatus(res, entry.status());
  // The entry rides in "extra" so the receipt is self-contained for a gate.
  res.set_content(ledger::FormatTlogProof({ledger::Bytes(*entry), *index, *proof, checkpoint}),
                  "text/plain; charset=utf-8");
}

void Api::GetHealth(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {})) return;
  SendJson(res, 200, json{{"status", "ok"}, {"size", store_->size()}});
}

void Api::GetMetrics(const httplib::Request& req, httplib::Response& res) {
  if (!RejectUnknownParams(req, res, {})) return;
  res.set_header("Cache-Control", "no-store");
  std::optional<ledger::SubjectTreeStats> tree;
  if (options_.subject_tree && !options_.opaque_entries) tree = options_.subject_tree->stats();
  res.set_content(metrics_->Render(sequencer_->stats(), store_->size(), store_->DiskBytes(),
                                   options_.witnessing ? &options_.witnessing->stats() : nullptr,
                                   tree ? &*tree : nullptr) +
                      (options_.rate_limiter ? options_.rate_limiter->RenderMetrics() : std::string()),
                  "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace ledgerd
