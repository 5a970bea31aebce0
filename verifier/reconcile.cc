// reconcile: matches a data holder's release records against the log. Each
// release (what the bank's gate handed out) must have its access entry in
// the log, with the same accessor, subject and request id (and, when the
// record names them, index, purpose and categories); a release without one
// is an access the log never disclosed. Accesses logged for the holder with
// no release are listed too (informational: an accessor may log an access
// and never ask the bank for the data).
//
// Release records are the JSONL lines ledger-gate writes to --releases
// (tools/gate/main.cc): request_id, accessor, subject (base64url tag),
// time, index, categories, purpose, access_time, tree_size; a "receipt"
// (or "tlog_proof") field holding the C2SP tlog-proof text is checked too.
//
// Thread-safety: the command runs on the main thread; StreamBundles'
// workers parse and verify entries, matching happens in log order.
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "commands.h"
#include "fetcher.h"
#include "ledger/gate.h"
#include "ledger/merkle.h"
#include "ledger/record.h"
#include "log_reader.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::Hash;
using ledger::Status;
using json = nlohmann::json;

std::string B64(const Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

struct Release {
  uint64_t line = 0;
  json record;  // the line as written, for the evidence
  std::string request_id, accessor;
  Bytes subject;
  std::optional<uint64_t> index;
  std::optional<std::string> purpose;
  std::set<std::string> categories;
  std::string receipt;  // tlog-proof text, if recorded

  // Filled by the scan.
  bool matched = false;
  uint64_t entry_index = 0;
  Hash leaf_hash{};
  std::vector<std::string> mismatches;
  Bytes mismatched_entry;  // an entry with the request id but other fields
};

struct Unreleased {
  uint64_t index;
  ledger::AccessRecord access;
};

ledger::StatusOr<std::vector<Release>> ReadReleases(const std::string& path) {
  LEDGER_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  std::vector<Release> out;
  std::istringstream in(text);
  std::string line;
  uint64_t n = 0;
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("--releases " + path + " line " + std::to_string(n) + ": " + why);
  };
  while (std::getline(in, line)) {
    n++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object()) return bad("not a JSON object");
    Release r;
    r.line = n;
    r.record = j;
    auto str = [&](const char* name, std::string* dst, bool required) -> Status {
      if (!j.contains(name)) return required ? bad(std::string("missing \"") + name + "\"") : Status::OK();
      if (!j[name].is_string()) return bad(std::string("\"") + name + "\" is not a string");
      *dst = j[name].get<std::string>();
      return Status::OK();
    };
    std::string subject, purpose;
    LEDGER_RETURN_IF_ERROR(str("request_id", &r.request_id, true));
    LEDGER_RETURN_IF_ERROR(str("accessor", &r.accessor, true));
    LEDGER_RETURN_IF_ERROR(str("subject", &subject, true));
    auto tag = ledger::Base64UrlDecode(subject);
    if (!tag.ok() || tag->size() != 32) return bad("\"subject\" is not a base64url 32-byte subject tag");
    r.subject = *tag;
    LEDGER_RETURN_IF_ERROR(str("purpose", &purpose, false));
    if (j.contains("purpose")) r.purpose = purpose;
    if (j.contains("index")) {
      if (!j["index"].is_number_unsigned()) return bad("\"index\" is not a whole number");
      r.index = j["index"].get<uint64_t>();
    }
    if (j.contains("categories")) {
      if (!j["categories"].is_array()) return bad("\"categories\" is not an array");
      for (const auto& c : j["categories"]) {
        if (!c.is_string()) return bad("\"categories\" holds a non-string");
        r.categories.insert(c.get<std::string>());
      }
    }
    LEDGER_RETURN_IF_ERROR(str("receipt", &r.receipt, false));
    if (r.receipt.empty()) LEDGER_RETURN_IF_ERROR(str("tlog_proof", &r.receipt, false));
    out.push_back(std::move(r));
  }
  return out;
}

constexpr char kReconcileHelp[] = R"(Usage: ledger-verify reconcile --log URL|DIR --log-key VKEY --releases FILE --holder NAME
                               [--threads N] [--connections N] [--checkpoint FILE]
                               [--witness WKEY ... [--quorum K]] [--json]

Reconciles a data holder's releases with the log. Every release record must
have its access entry in the log (verified tree: the whole log is replayed
and must hash to the signed root) with the same accessor, subject and request
id, and, when the record has them, the same index, purpose, and categories
among the logged ones; a receipt in the record must verify and name that
entry. A release without such an entry is reported as "release without
access" (a violation: data left the bank for an access the log does not
disclose). Accesses logged for the holder with no release are listed as
"unreleased" (informational).

Options:
  --releases FILE      the holder's release records, JSONL as ledger-gate
                       writes them: {"request_id", "accessor", "subject"
                       (base64url tag), "time", "index", "categories",
                       "purpose", "access_time", "tree_size"}; an optional
                       "receipt" (or "tlog_proof") holds the tlog-proof text
  --holder NAME        the holder whose accesses are reconciled
  --log URL|DIR        the log's base URL or a mirror directory
  --log-key VKEY       the log's verifier key, or @FILE
  --threads N          threads verifying signatures [hardware threads]
  --connections N      concurrent bundle fetches [4]
  --checkpoint FILE    reconcile against this signed checkpoint [the log's latest]
)" LEDGER_VERIFY_WITNESS_HELP R"(                       (for the checkpoint reconciled against; a recorded
                       receipt needs only the log's signature, since the
                       entry it names is proven in that witnessed tree)
  --json               {"checkpoint": {...}, "holder", "releases": N, "accesses": N,
                        "matched": [{"line", "request_id", "accessor", "index",
                        "leaf_hash", "inclusion"}],
                        "violations": [{"rule": "release without access", "line",
                        "request_id", "accessor", "detail", "release": {...},
                        "index"?, "entry"?}],
                        "unreleased": [{"rule": "unreleased", "index", "request_id",
                        "accessor", "subject", "purpose", "categories", "time"}],
                        "checkpoint_note": "<note>", "witnesses"?: {...}, "verified"}
  --help               show this help
Exit status: 0 every release has its access, 1 a release has none (or the
log does not verify), 2 usage or I/O error.
)";

int RunReconcile(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  bool as_json = args.Has("--json");
  std::string holder = args.Get("--holder");
  if (holder.empty()) return UsageError("--holder must name the holder");
  unsigned hw = std::thread::hardware_concurrency();
  int threads = hw ? static_cast<int>(hw) : 2;
  if (args.Has("--threads")) {
    auto n = ParseCount("--threads", args.Get("--threads"), 1, 1024);
    if (!n.ok()) return UsageError(n.status().message());
    threads = static_cast<int>(*n);
  }
  int connections = 4;
  if (args.Has("--connections")) {
    auto n = ParseCount("--connections", args.Get("--connections"), 1, 64);
    if (!n.ok()) return UsageError(n.status().message());
    connections = static_cast<int>(*n);
  }
  auto releases = ReadReleases(args.Get("--releases"));
  if (!releases.ok()) return ExitForStatus(releases.status());
  auto fetcher = Fetcher::Open(args.Get("--log"));
  if (!fetcher.ok()) return UsageError(fetcher.status().message());

  // Listed for a checkpoint refused for the witness quorum.
  const std::vector<ledger::WitnessCosignature>* quorum_failure = nullptr;
  auto fail = [&](const std::string& why) {
    if (as_json) {
      ordered_json j{{"verified", false}, {"error", why}};
      if (quorum_failure) j["witnesses"] = WitnessesJson(*witnesses, *quorum_failure);
      std::cout << DumpJson(j) << std::endl;
    } else {
      std::cout << "NOT VERIFIED: " << why << "\n";
      if (quorum_failure) std::cout << WitnessesText(*witnesses, *quorum_failure, "  ");
    }
    return kExitFailed;
  };
  ledger::StatusOr<SignedCheckpoint> cp = Status::Internal("unset");
  std::vector<ledger::WitnessCosignature> cosigned;
  if (args.Has("--checkpoint")) {
    auto note = ReadWholeFile(args.Get("--checkpoint"));
    if (!note.ok()) return IoError("--checkpoint: " + note.status().message());
    cp = OpenSignedCheckpoint(*note, *key, *witnesses, &cosigned);
  } else {
    cp = FetchCheckpoint(**fetcher, *key, *witnesses, &cosigned);
  }
  if (!cp.ok()) {
    if (!IsVerificationFailure(cp.status())) return IoError(cp.status().message());
    if (IsQuorumFailure(cp.status())) quorum_failure = &cosigned;
    return fail("the checkpoint does not verify: " + cp.status().message());
  }

  // (accessor, request id) -> releases with it.
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> by_request;
  for (size_t i = 0; i < releases->size(); i++)
    by_request[{(*releases)[i].accessor, (*releases)[i].request_id}].push_back(i);

  std::vector<Unreleased> unreleased;
  uint64_t holder_accesses = 0;
  ledger::CompactRange range;
  std::string bundle_failure;
  StreamOptions options;
  options.fetch_threads = (*fetcher)->is_directory() ? 1 : connections;
  options.work_threads = threads;
  ProgressBar progress("reconcile", cp->body.size, true);
  Status st = StreamBundles(**fetcher, 0, cp->body.size, options, [&](BundleChunk& chunk) -> Status {
    if (!chunk.status.ok()) {
      if (IsVerificationFailure(chunk.status)) bundle_failure = chunk.status.message();
      return chunk.status;
    }
    for (size_t k = 0; k < chunk.entries.size(); k++) {
      uint64_t index = chunk.first_index + k;
      range.Append(chunk.leaf_hashes[k], [](const ledger::NodeId&, const Hash&) {});
      const auto& parsed = chunk.parsed[k];
      if (!parsed.ok() || parsed->kind != ledger::EntryKind::kAccess) continue;
      const ledger::AccessRecord& a = parsed->access();
      if (a.holder != holder) continue;
      holder_accesses++;
      auto it = by_request.find({a.accessor, a.request_id});
      bool released = false;
      if (it != by_request.end()) {
        for (size_t ri : it->second) {
          Release& r = (*releases)[ri];
          if (r.matched) continue;
          std::vector<std::string> why;
          if (a.subject != r.subject)
            why.push_back("the logged subject is " + ledger::Base64UrlEncode(a.subject));
          if (r.index && *r.index != index)
            why.push_back("the release names entry " + std::to_string(*r.index) + ", the access is entry " +
                          std::to_string(index));
          if (r.purpose && *r.purpose != a.purpose) why.push_back("the logged purpose is " + a.purpose);
          for (const auto& c : r.categories)
            if (!a.categories.count(c)) why.push_back("category " + c + " was released but not logged");
          if (why.empty()) {
            r.matched = true;
            r.entry_index = index;
            r.leaf_hash = chunk.leaf_hashes[k];
            released = true;
          } else if (r.mismatches.empty()) {
            r.mismatches = why;
            r.entry_index = index;
            r.mismatched_entry = Bytes(chunk.entries[k]);
          }
        }
      }
      if (!released) unreleased.push_back(Unreleased{index, a});
    }
    progress.Update(range.size());
    return Status::OK();
  });
  progress.Finish();
  if (!st.ok()) {
    if (!bundle_failure.empty()) return fail("an entry bundle cannot be read: " + bundle_failure);
    return IoError(st.message());
  }
  if (range.Root() != cp->body.root)
    return fail("root mismatch: the log's entries hash to " + B64(range.Root()) + ", but the checkpoint signs " +
                B64(cp->body.root));

  // Receipts are checked offline, then tied to the entry the scan found:
  // a receipt from another view of the log would name other bytes.
  for (Release& r : *releases) {
    if (r.receipt.empty() || !r.matched) continue;
    ledger::GateExpectation expected;
    expected.accessor = r.accessor;
    expected.holder = holder;
    expected.subject = r.subject;
    ledger::GateDecision d = ledger::CheckReceipt(r.receipt, std::nullopt, *key, expected);
    if (!d.allowed) {
      r.matched = false;
      r.mismatches.push_back("the recorded receipt does not verify: " + d.reason);
    } else if (d.index != r.entry_index) {
      r.matched = false;
      r.mismatches.push_back("the recorded receipt names entry " + std::to_string(d.index) + ", not " +
                             std::to_string(r.entry_index));
    }
  }

  TileHashReader reader(fetcher->get(), cp->body.size);
  ordered_json matched = ordered_json::array();
  ordered_json violations = ordered_json::array();
  for (const Release& r : *releases) {
    if (r.matched) {
      ordered_json m;
      m["line"] = r.line;
      m["request_id"] = r.request_id;
      m["accessor"] = r.accessor;
      m["index"] = r.entry_index;
      m["leaf_hash"] = B64(r.leaf_hash);
      auto proof = ledger::InclusionProof(r.entry_index, cp->body.size, reader);
      if (proof.ok() && ledger::VerifyInclusion(r.leaf_hash, r.entry_index, cp->body.size, *proof, cp->body.root).ok())
        m["inclusion"] = HashesJson(*proof);
      else
        m["inclusion"] = ordered_json::array();
      matched.push_back(m);
      continue;
    }
    ordered_json v;
    v["rule"] = "release without access";
    v["line"] = r.line;
    v["request_id"] = r.request_id;
    v["accessor"] = r.accessor;
    std::string detail;
    if (r.mismatches.empty()) {
      detail = "no access by " + r.accessor + " with request id " + r.request_id + " for holder " + holder +
               " is in the log of size " + std::to_string(cp->body.size);
    } else {
      detail = "the access with request id " + r.request_id + " (entry " + std::to_string(r.entry_index) +
               ") does not match the release: ";
      for (size_t i = 0; i < r.mismatches.size(); i++) detail += (i ? "; " : "") + r.mismatches[i];
      v["index"] = r.entry_index;
      if (!r.mismatched_entry.empty()) v["entry"] = ledger::Base64Encode(r.mismatched_entry);
    }
    v["detail"] = detail;
    v["release"] = r.record;
    violations.push_back(v);
  }
  ordered_json unreleased_json = ordered_json::array();
  for (const Unreleased& u : unreleased) {
    ordered_json j;
    j["rule"] = "unreleased";
    j["index"] = u.index;
    j["request_id"] = u.access.request_id;
    j["accessor"] = u.access.accessor;
    j["subject"] = ledger::Base64UrlEncode(u.access.subject);
    j["purpose"] = u.access.purpose;
    j["categories"] = u.access.categories;
    j["time"] = u.access.time;
    unreleased_json.push_back(j);
  }
  bool verified = violations.empty();
  if (as_json) {
    ordered_json j;
    j["checkpoint"] = CheckpointJson(cp->body);
    j["holder"] = holder;
    j["releases"] = releases->size();
    j["accesses"] = holder_accesses;
    j["matched"] = matched;
    j["violations"] = violations;
    j["unreleased"] = unreleased_json;
    j["checkpoint_note"] = cp->note;
    if (witnesses->active()) j["witnesses"] = WitnessesJson(*witnesses, cp->cosignatures);
    j["verified"] = verified;
    std::cout << DumpJson(j) << std::endl;
  } else {
    std::cout << "Reconciliation of " << holder << "'s releases with " << cp->body.origin << " at size " << cp->body.size
              << " (root verified)\n";
    if (witnesses->active()) std::cout << WitnessesText(*witnesses, cp->cosignatures, "  ");
    std::cout << "  releases     " << releases->size() << "\n"
              << "  accesses     " << holder_accesses << " logged for " << holder << "\n"
              << "  matched      " << matched.size() << " releases have their access entry in the log\n";
    std::cout << "\nReleases without access: " << violations.size() << "\n";
    for (const auto& v : violations)
      std::cout << "  line " << v["line"].get<uint64_t>() << " (" << v["accessor"].get<std::string>() << ", request id "
                << v["request_id"].get<std::string>() << "): " << v["detail"].get<std::string>() << "\n";
    std::cout << "\nUnreleased accesses (logged, no release recorded; informational): " << unreleased.size() << "\n";
    for (const Unreleased& u : unreleased) {
      std::cout << "  entry " << u.index << "  " << u.access.accessor << "  " << u.access.request_id << "  "
                << u.access.purpose << " ";
      bool first = true;
      for (const auto& c : u.access.categories) std::cout << (first ? "" : ",") << c, first = false;
      std::cout << "  " << u.access.time << "\n";
    }
    std::cout << (verified ? "\nVERIFIED: every release has its access in the log.\n"
                           : "\nFAILED: " + std::to_string(violations.size()) + " release(s) without a logged access\n");
  }
  return verified ? kExitVerified : kExitFailed;
}

}  // namespace

const Command kReconcileCommand = {
    "reconcile", "match a holder's data releases against the log's accesses", kReconcileHelp,
    {{"--log", true},
     {"--log-key", true},
     {"--releases", true},
     {"--holder", true},
     {"--threads", true},
     {"--connections", true},
     {"--checkpoint", true},
     kWitnessFlag,
     kQuorumFlag,
     {"--json", false}},
    {"--log", "--log-key", "--releases", "--holder"}, RunReconcile,
};

}  // namespace verifier
