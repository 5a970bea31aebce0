#include "audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "ledger/tiles.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::ByteView;
using ledger::Hash;
using ledger::Status;
using json = nlohmann::json;

std::string B64(const Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

// Version 2 added the subject index ("index" and "subject" lines). A
// version 1 state is resumed only if it saw no access (its index is then
// empty); otherwise the index cannot be rebuilt without a full replay.
// Version 3 keeps request ids as fingerprints ("request-ids" and "request"
// lines) instead of "state" lines with their keys.
constexpr char kStateMagic[] = "ledger-verify-audit-state 3";
constexpr char kStateMagicV2[] = "ledger-verify-audit-state 2";
constexpr char kStateMagicV1[] = "ledger-verify-audit-state 1";
const char* const kKinds[] = {"holder", "accessor", "policy", "access", "index", "invalid"};

ordered_json IndexFieldsJson(const IndexFields& f) {
  return ordered_json{{"size", f.size}, {"root", B64(f.root)}, {"subjects", f.subjects}, {"accesses", f.accesses}};
}

json IndexFieldsCoreJson(const IndexFields& f) {
  return json{{"size", f.size}, {"root", B64(f.root)}, {"subjects", f.subjects}, {"accesses", f.accesses}};
}

std::optional<IndexFields> IndexFieldsFromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  IndexFields f;
  for (const char* k : {"size", "subjects", "accesses"})
    if (!j.contains(k) || !j[k].is_number_unsigned()) return std::nullopt;
  if (!j.contains("root") || !j["root"].is_string()) return std::nullopt;
  auto raw = ledger::Base64Decode(j["root"].get<std::string>());
  if (!raw.ok() || raw->size() != 32) return std::nullopt;
  f.size = j["size"].get<uint64_t>();
  f.subjects = j["subjects"].get<uint64_t>();
  f.accesses = j["accesses"].get<uint64_t>();
  f.root = *ledger::HashFromBytes(*raw);
  return f;
}

// ForEachSubjectLeaf calls |fn| on every leaf of the tree (tag order).
Status ForEachSubjectLeaf(ledger::SubjectNodeStore& store,
                          const std::function<void(const ledger::SubjectNode&)>& fn) {
  std::vector<std::pair<unsigned, ledger::SubjectTag>> stack{{0u, ledger::SubjectTag{}}};
  while (!stack.empty()) {
    auto [d, prefix] = stack.back();
    stack.pop_back();
    LEDGER_ASSIGN_OR_RETURN(auto node, store.GetNode(d, prefix));
    if (!node) continue;
    if (node->leaf) {
      fn(*node);
      continue;
    }
    if (d >= 256) return Status::Corruption("the rebuilt subject index has an inner node at depth 256");
    ledger::SubjectTag right = prefix;
    right[d / 8] |= static_cast<uint8_t>(0x80u >> (d % 8));
    stack.push_back({d + 1, right});
    stack.push_back({d + 1, prefix});
  }
  return Status::OK();
}


// StateWriter streams the state file through a buffer, so saving a large
// derived state never holds a second copy of it in memory.
class StateWriter {
 public:
  explicit StateWriter(int fd) : fd_(fd) {}
  void Line(const std::string& a, const std::string& b = "") {
    buf_ += a;
    if (!b.empty()) {
      buf_ += ' ';
      buf_ += b;
    }
    buf_ += '\n';
    lines_++;
    if (buf_.size() >= (1 << 20)) Flush();
  }
  bool Flush() {
    size_t off = 0;
    while (off < buf_.size() && ok_) {
      ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ok_ = false;
      else off += static_cast<size_t>(n);
    }
    buf_.clear();
    return ok_;
  }
  uint64_t lines() const { return lines_; }

 private:
  int fd_;
  std::string buf_;
  uint64_t lines_ = 0;
  bool ok_ = true;
};

// FrontierNodes lists the nodes of a CompactRange of |size|, largest first
// (the perfect-subtree split of [0, size)).
std::vector<ledger::NodeId> FrontierNodes(uint64_t size) {
  std::vector<ledger::NodeId> ids;
  uint64_t pos = 0;
  for (int level = 63; level >= 0; level--) {
    uint64_t span = uint64_t{1} << level;
    if (size & span) {
      ids.push_back(ledger::NodeId{static_cast<uint8_t>(level), pos >> level});
      pos += span;
    }
  }
  return ids;
}

// FrontierReader serves a saved frontier to CompactRange::FromReader.
class FrontierReader : public ledger::HashReader {
 public:
  FrontierReader(uint64_t size, std::vector<Hash> hashes) : ids_(FrontierNodes(size)), hashes_(std::move(hashes)) {}
  Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<Hash>* out) const override {
    out->clear();
    for (const auto& id : ids) {
      size_t k = 0;
      while (k < ids_.size() && !(ids_[k] == id)) k++;
      if (k == ids_.size() || k >= hashes_.size()) return Status::NotFound("node not in the saved frontier");
      out->push_back(hashes_[k]);
    }
    return Status::OK();
  }

 private:
  std::vector<ledger::NodeId> ids_;
  std::vector<Hash> hashes_;
};

ordered_json CountsJson(const std::map<std::string, uint64_t>& by_kind) {
  ordered_json j = ordered_json::object();
  for (const char* k : kKinds) {
    auto it = by_kind.find(k);
    j[k] = it == by_kind.end() ? 0 : it->second;
  }
  return j;
}

ordered_json AccessesJson(const AccessCounts& accesses) {
  ordered_json j = ordered_json::object();
  for (const auto& [accessor, purposes] : accesses) {
    ordered_json p = ordered_json::object();
    for (const auto& [purpose, cats] : purposes) {
      ordered_json c = ordered_json::object();
      for (const auto& [cat, n] : cats) c[cat] = n;
      p[purpose] = c;
    }
    j[accessor] = p;
  }
  return j;
}

// ViolationCoreJson is the part of a violation saved in the state file; the
// evidence is recomputed against whichever checkpoint is reported.
json ViolationCoreJson(const Violation& v) {
  json j;
  j["rule"] = v.rule;
  j["index"] = v.index;
  j["detail"] = v.detail;
  j["entry"] = ledger::Base64Encode(v.entry);
  if (v.policy_index) j["policy_index"] = *v.policy_index;
  if (v.index_expected) j["expected"] = IndexFieldsCoreJson(*v.index_expected);
  if (v.index_found) j["found"] = IndexFieldsCoreJson(*v.index_found);
  return j;
}

std::optional<Violation> ViolationFromCoreJson(const json& j) {
  if (!j.is_object() || !j.contains("rule") || !j["rule"].is_string() || !j.contains("index") ||
      !j["index"].is_number_unsigned() || !j.contains("detail") || !j["detail"].is_string() || !j.contains("entry") ||
      !j["entry"].is_string())
    return std::nullopt;
  Violation v;
  v.rule = j["rule"].get<std::string>();
  v.index = j["index"].get<uint64_t>();
  v.detail = j["detail"].get<std::string>();
  auto entry = ledger::Base64Decode(j["entry"].get<std::string>());
  if (!entry.ok()) return std::nullopt;
  v.entry = *entry;
  if (j.contains("policy_index")) {
    if (!j["policy_index"].is_number_unsigned()) return std::nullopt;
    v.policy_index = j["policy_index"].get<uint64_t>();
  }
  if (j.contains("expected")) {
    v.index_expected = IndexFieldsFromJson(j["expected"]);
    if (!v.index_expected) return std::nullopt;
  }
  if (j.contains("found")) {
    v.index_found = IndexFieldsFromJson(j["found"]);
    if (!v.index_found) return std::nullopt;
  }
  return v;
}

}  // namespace

// --- AuditReplay ---------------------------------------------------------------

AuditReplay::AuditReplay(Bytes log_public_key, int64_t max_skew, std::string witness_policy)
    : rules_(ledger::RulesOptions{std::move(log_public_key), max_skew, /*check_clock=*/false}),
      max_skew_(max_skew),
      witness_policy_(std::move(witness_policy)) {
  for (const char* k : kKinds) by_kind_[k] = 0;
}

void AuditReplay::SetRequestIdMemory(uint64_t budget, const std::string& spill_dir) {
  state_.mutable_ids() = RequestIdSet(64, Bytes(), budget, spill_dir);
}

void AuditReplay::SetEntrySource(std::function<ledger::StatusOr<Bytes>(uint64_t)> source) {
  state_.set_resolver([source = std::move(source)](
                          uint64_t index) -> ledger::StatusOr<std::optional<AuditStateStore::ResolvedRequest>> {
    LEDGER_ASSIGN_OR_RETURN(Bytes entry, source(index));
    return ResolvedRequestOf(entry, index);
  });
}

Status AuditReplay::ApplyRules(const ledger::ParsedEntry& e, uint64_t index) {
  if (e.kind != ledger::EntryKind::kAccess) policy_cache_.clear();
  return rules_.Apply(state_, e, index);
}

void AuditReplay::AddViolation(std::string rule, uint64_t index, std::string detail, ByteView entry,
                               std::optional<uint64_t> policy_index) {
  Violation v;
  v.rule = std::move(rule);
  v.index = index;
  v.detail = std::move(detail);
  v.entry = Bytes(entry);
  v.policy_index = policy_index;
  violations_.push_back(std::move(v));
}

Status AuditReplay::Feed(uint64_t index, ByteView entry, const Hash& leaf_hash,
                         const ledger::StatusOr<ledger::ParsedEntry>& parsed) {
  if (index != range_.size())
    return Status::Internal("entry " + std::to_string(index) + " fed at tree size " + std::to_string(range_.size()));
  range_.Append(leaf_hash, [](const ledger::NodeId&, const Hash&) {});
  entries_++;
  if (!parsed.ok()) {
    by_kind_["invalid"]++;
    bool bad_signature = parsed.status().code() == Status::Code::kPermissionDenied;
    AddViolation(bad_signature ? "bad signature" : "malformed entry", index, parsed.status().message(), entry);
    return Status::OK();
  }
  const ledger::ParsedEntry& e = *parsed;
  by_kind_[ledger::EntryKindName(e.kind)]++;

  if (e.kind == ledger::EntryKind::kIndex) {
    // Only the log signs commitments; a commitment by anyone else is no
    // commitment of the log, whatever it says.
    if (e.envelope.public_key != rules_.options().log_public_key) {
      AddViolation("unauthorised key", index,
                   "unauthorised key: index commitments must be signed by the log key, not " +
                       ledger::Base64UrlEncode(e.envelope.public_key),
                   entry);
      return Status::OK();
    }
    return CheckCommitment(e, index, entry);
  }

  if (e.kind == ledger::EntryKind::kAccess) {
    const ledger::AccessRecord& a = e.access();
    for (const auto& c : a.categories) accesses_[a.accessor][a.purpose][c]++;
    // Every access entry of the log is in the subject index (an honest log
    // holds only accesses that keep the rules; any other is reported below
    // and is the customer's business all the more).
    LEDGER_RETURN_IF_ERROR(IndexAccess(*ledger::HashFromBytes(a.subject), index));
    // Time must not run backwards by more than the skew the log allows
    // around its own clock: the log stamps nothing, but it refuses accesses
    // whose time is far from its clock, so honest times are nearly ordered.
    auto t = ledger::ParseTime(a.time);
    if (t.ok()) {
      if (max_access_time_ && *t < *max_access_time_ - max_skew_)
        AddViolation("time runs backwards", index,
                     "access time " + a.time + " is more than " + std::to_string(max_skew_) +
                         " s before an earlier access's time " + ledger::FormatTime(*max_access_time_),
                     entry);
      if (!max_access_time_ || *t > *max_access_time_) max_access_time_ = *t;
    }
    // The common case, without re-deriving the same holder, key and
    // policy for every access: a request id certainly new, by a triple
    // whose policy in force is cached, within that policy. This is exactly
    // LedgerRules::Check's answer (nothing it reads changed since it said
    // so for the triple); anything else goes through Check below.
    // Both keys are built in one reused buffer: this runs once per access,
    // and fresh strings cost an allocation each.
    std::string& key = key_scratch_;
    key.assign("r/").append(a.accessor).append("/").append(a.request_id);  // RequestKeyOf
    uint64_t fp = 0;
    LEDGER_ASSIGN_OR_RETURN(bool maybe_seen, state_.MaybeSeen(key, &fp));
    if (!maybe_seen) {
      key.assign(a.holder).append("\n").append(a.accessor).append("\n").append(e.envelope.public_key);
      auto cached = policy_cache_.find(key);
      if (cached != policy_cache_.end() && ledger::LedgerRules::CheckDisclosed(cached->second, a).ok())
        return state_.RecordNew(fp, index);
    }
  }

  auto check = rules_.Check(state_, e, 0);
  if (!check.ok()) {
    const Status& s = check.status();
    if (s.code() == Status::Code::kCorruption || s.code() == Status::Code::kInternal) return s;
    std::string rule = ViolationRuleOf(s.message());
    std::optional<uint64_t> policy_index;
    if (rule == "undisclosed use" || rule == "policy version") {
      std::string holder, accessor;
      if (e.kind == ledger::EntryKind::kAccess) holder = e.access().holder, accessor = e.access().accessor;
      if (e.kind == ledger::EntryKind::kPolicy) holder = e.policy().holder, accessor = e.policy().accessor;
      LEDGER_ASSIGN_OR_RETURN(auto policy, ledger::LedgerRules::GetPolicy(state_, holder, accessor));
      if (policy) policy_index = policy->index;
    }
    AddViolation(rule, index, s.message(), entry, policy_index);
    // An access is recorded even when it broke a rule, so that a later use
    // of its request id is caught; a reused id is already recorded.
    if (e.kind == ledger::EntryKind::kAccess && rule != "request id reused")
      LEDGER_RETURN_IF_ERROR(ApplyRules(e, index));
    return Status::OK();
  }
  if (check->has_value()) {
    // The log answers a retry with the original receipt; logging it again
    // means it let the same request id through twice.
    AddViolation("request id reused", index,
                 "request id reused: accessor " + e.access().accessor + " logged request id " + e.access().request_id +
                     " twice with the same payload (first at entry " + std::to_string(**check) + ")",
                 entry);
    return Status::OK();
  }
  if (e.kind == ledger::EntryKind::kAccess) {
    // It passed every rule: its holder exists, its key is authorised and
    // its policy is in force; remember that policy for the triple.
    const ledger::AccessRecord& a = e.access();
    LEDGER_ASSIGN_OR_RETURN(auto policy, ledger::LedgerRules::GetPolicy(state_, a.holder, a.accessor));
    if (policy) policy_cache_[a.holder + "\n" + a.accessor + "\n" + e.envelope.public_key] = std::move(*policy);
  }
  return ApplyRules(e, index);
}

Status AuditReplay::IndexAccess(const ledger::SubjectTag& tag, uint64_t index) {
  // Only queued: the flush reads each tag's current value in its one pass
  // over the tree, so an access costs no lookup here.
  index_pending_.emplace_back(tag, index);
  index_summary_.accesses++;
  // Bound the pending updates on a log that commits rarely (or never).
  if (index_pending_.size() >= kMaxPendingIndexUpdates) return FlushIndex();
  return Status::OK();
}

Status AuditReplay::FlushIndex() {
  if (index_pending_.empty()) return Status::OK();
  // By tag, and in log order within a tag (the chain extends in log order).
  std::sort(index_pending_.begin(), index_pending_.end());
  std::vector<ledger::SubjectTag> tags;
  std::vector<size_t> starts;  // tags[i]'s accesses are index_pending_[starts[i] .. starts[i + 1])
  for (size_t k = 0; k < index_pending_.size(); k++) {
    if (k == 0 || index_pending_[k].first != index_pending_[k - 1].first) {
      tags.push_back(index_pending_[k].first);
      starts.push_back(k);
    }
  }
  starts.push_back(index_pending_.size());
  uint64_t new_subjects = 0;
  auto root = ledger::UpdateSubjectValues(
      index_, tags, [&](size_t i, const std::optional<ledger::SubjectValue>& current) {
        if (!current) new_subjects++;
        ledger::SubjectValue v = current ? *current : ledger::SubjectValue();
        for (size_t k = starts[i]; k < starts[i + 1]; k++) v = ledger::ExtendSubjectValue(v, index_pending_[k].second);
        return v;
      });
  index_pending_.clear();
  if (!root.ok()) return root.status();
  index_summary_.root = *root;
  index_summary_.subjects += new_subjects;
  return Status::OK();
}

ledger::StatusOr<SubjectIndexSummary> AuditReplay::SubjectIndex() {
  LEDGER_RETURN_IF_ERROR(FlushIndex());
  return index_summary_;
}

Status AuditReplay::CheckCommitment(const ledger::ParsedEntry& e, uint64_t index, ByteView entry) {
  LEDGER_RETURN_IF_ERROR(FlushIndex());
  const ledger::IndexRecord& r = e.index();
  IndexFields expected{index, index_summary_.root, index_summary_.subjects, index_summary_.accesses};
  IndexFields found{r.size, r.root, r.subjects, r.accesses};
  index_summary_.commitments++;
  index_summary_.last_commitment = index;
  if (expected == found) return Status::OK();
  std::string why;
  auto add = [&](const std::string& what) { why += (why.empty() ? "" : "; ") + what; };
  if (found.size != expected.size)
    add("size " + std::to_string(found.size) + " is not its own index " + std::to_string(expected.size));
  if (found.root != expected.root)
    add("root " + B64(found.root) + " is not the root " + B64(expected.root) + " of the index rebuilt from the " +
        std::to_string(expected.accesses) + " access entries before it");
  if (found.subjects != expected.subjects)
    add("it counts " + std::to_string(found.subjects) + " subjects, the log has " + std::to_string(expected.subjects));
  if (found.accesses != expected.accesses)
    add("it counts " + std::to_string(found.accesses) + " accesses, the log has " + std::to_string(expected.accesses));
  AddViolation("index commitment", index, "index commitment: " + why, entry);
  violations_.back().index_expected = expected;
  violations_.back().index_found = found;
  return Status::OK();
}

Status AuditReplay::SaveState(const std::string& path, const std::string& log_vkey,
                              const std::string& checkpoint_note) {
  LEDGER_RETURN_IF_ERROR(FlushIndex());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot create " + tmp + ": " + std::strerror(errno));
  StateWriter w(fd);
  w.Line(kStateMagic);
  w.Line("log-key", log_vkey);
  w.Line("max-skew", std::to_string(max_skew_));
  w.Line("witnesses", witness_policy_);
  w.Line("checkpoint", ledger::Base64Encode(checkpoint_note));
  w.Line("size", std::to_string(range_.size()));
  for (const Hash& h : range_.frontier()) w.Line("frontier", B64(h));
  w.Line("max-time", max_access_time_ ? std::to_string(*max_access_time_) : "none");
  json counters;
  counters["entries"] = entries_;
  counters["entries_by_kind"] = by_kind_;
  counters["accesses"] = accesses_;
  w.Line("counters", counters.dump(-1, ' ', false, json::error_handler_t::replace));
  for (const Violation& v : violations_)
    w.Line("violation", ViolationCoreJson(v).dump(-1, ' ', false, json::error_handler_t::replace));
  for (const auto& [k, v] : state_.others().data())
    w.Line("state", ledger::Base64UrlEncode(k) + " " + ledger::Base64UrlEncode(v));
  const RequestIdSet& ids = state_.ids();
  w.Line("request-ids", ledger::Base64UrlEncode(ids.key()) + " " + std::to_string(ids.fingerprint_bits()) + " " +
                            std::to_string(ids.size()));
  Status listed =
      ids.ForEach([&](uint64_t fp, uint64_t index) { w.Line("request", std::to_string(fp) + " " + std::to_string(index)); });
  if (!listed.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return listed;
  }
  // The subject index: its counters and root, then every tag's value (the
  // tree is rebuilt from them on load and must give the same root).
  const SubjectIndexSummary& ix = index_summary_;
  w.Line("index", B64(ix.root) + " " + std::to_string(ix.subjects) + " " + std::to_string(ix.accesses) + " " +
                      std::to_string(ix.commitments) + " " +
                      (ix.last_commitment ? std::to_string(*ix.last_commitment) : std::string("none")));
  Status walked = ForEachSubjectLeaf(index_, [&](const ledger::SubjectNode& n) {
    w.Line("subject", B64(n.tag) + " " + std::to_string(n.value.count) + " " + B64(n.value.chain));
  });
  if (!walked.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return walked;
  }
  // The count guards against a truncated file (the rename makes a torn
  // write impossible, but a copied or edited file is not).
  uint64_t lines = w.lines();
  w.Line("end", std::to_string(lines));
  bool ok = w.Flush();
  int err = errno;
  if (ok && ::fsync(fd) != 0) ok = false, err = errno;
  if (::close(fd) != 0 && ok) ok = false, err = errno;
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) ok = false, err = errno;
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::IOError("cannot write the audit state " + path + ": " + std::strerror(err));
  }
  auto slash = path.rfind('/');
  return FsyncDirectory(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

Status AuditReplay::LoadState(const std::string& path, const std::string& log_vkey, std::string* checkpoint_note) {
  // Read line by line: the file holds a line per request id, and a copy
  // of it in memory would grow with the log.
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    auto unreadable = ReadWholeFile(path);  // NotFound or IOError, as for other files
    if (!unreadable.ok()) return unreadable.status();
    return Status::IOError("cannot read " + path);
  }
  auto bad = [&](const std::string& why) { return Status::Corruption("audit state " + path + ": " + why); };
  std::string line;
  uint64_t line_no = 0;
  uint64_t size = 0;
  bool have_size = false, ended = false, have_witnesses = false, v1 = false, have_index = false;
  bool have_request_ids = false;
  uint64_t expected_requests = 0;
  std::vector<Hash> frontier;
  SubjectIndexSummary saved_index;
  std::vector<std::pair<ledger::SubjectTag, ledger::SubjectValue>> subjects;
  while (std::getline(in, line)) {
    line_no++;
    if (ended) return bad("data after the end line");
    if (line_no == 1) {
      v1 = line == kStateMagicV1;
      if (line != kStateMagic && line != kStateMagicV2 && !v1) return bad("not an audit state file (first line \"" + line.substr(0, 60) + "\")");
      continue;
    }
    auto sp = line.find(' ');
    std::string tag = line.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (tag == "log-key") {
      if (rest != log_vkey)
        return Status::InvalidArgument("audit state " + path + " belongs to the log key " + rest + ", not " + log_vkey);
    } else if (tag == "max-skew") {
      if (rest != std::to_string(max_skew_))
        return Status::InvalidArgument("audit state " + path + " was built with --max-skew " + rest +
                                       "; use the same value (or a new state file)");
    } else if (tag == "witnesses") {
      have_witnesses = true;
      if (rest != witness_policy_)
        return Status::InvalidArgument("audit state " + path + " was built with the witness policy \"" + rest +
                                       "\", not \"" + witness_policy_ +
                                       "\"; use the same --witness and --quorum (or a new state file)");
    } else if (tag == "checkpoint") {
      auto note = ledger::Base64Decode(rest);
      if (!note.ok()) return bad("line " + std::to_string(line_no) + ": bad checkpoint");
      *checkpoint_note = *note;
    } else if (tag == "size") {
      auto n = ledger::ParseUint64(rest);
      if (!n.ok()) return bad("line " + std::to_string(line_no) + ": bad size");
      size = *n;
      have_size = true;
    } else if (tag == "frontier") {
      auto raw = ledger::Base64Decode(rest);
      if (!raw.ok() || raw->size() != 32) return bad("line " + std::to_string(line_no) + ": bad frontier hash");
      frontier.push_back(*ledger::HashFromBytes(*raw));
    } else if (tag == "max-time") {
      if (rest == "none") {
        max_access_time_.reset();
      } else {
        char* endp = nullptr;
        errno = 0;
        long long t = std::strtoll(rest.c_str(), &endp, 10);
        if (rest.empty() || errno != 0 || *endp != '\0') return bad("line " + std::to_string(line_no) + ": bad max-time");
        max_access_time_ = static_cast<int64_t>(t);
      }
    } else if (tag == "counters") {
      json j = json::parse(rest, nullptr, false);
      if (!j.is_object() || !j.contains("entries") || !j["entries"].is_number_unsigned() ||
          !j.contains("entries_by_kind") || !j["entries_by_kind"].is_object() || !j.contains("accesses") ||
          !j["accesses"].is_object())
        return bad("line " + std::to_string(line_no) + ": bad counters");
      entries_ = j["entries"].get<uint64_t>();
      for (const auto& [k, v] : j["entries_by_kind"].items()) {
        if (!v.is_number_unsigned()) return bad("bad entries_by_kind");
        by_kind_[k] = v.get<uint64_t>();
      }
      for (const auto& [acc, purposes] : j["accesses"].items()) {
        if (!purposes.is_object()) return bad("bad accesses");
        for (const auto& [purpose, cats] : purposes.items()) {
          if (!cats.is_object()) return bad("bad accesses");
          for (const auto& [cat, n] : cats.items()) {
            if (!n.is_number_unsigned()) return bad("bad accesses");
            accesses_[acc][purpose][cat] = n.get<uint64_t>();
          }
        }
      }
    } else if (tag == "violation") {
      auto v = ViolationFromCoreJson(json::parse(rest, nullptr, false));
      if (!v) return bad("line " + std::to_string(line_no) + ": bad violation");
      violations_.push_back(std::move(*v));
    } else if (tag == "state") {
      auto sp2 = rest.find(' ');
      auto k = ledger::Base64UrlDecode(rest.substr(0, sp2));
      auto v = ledger::Base64UrlDecode(sp2 == std::string::npos ? "" : rest.substr(sp2 + 1));
      if (sp2 == std::string::npos || !k.ok() || !v.ok()) return bad("line " + std::to_string(line_no) + ": bad state");
      LEDGER_RETURN_IF_ERROR(state_.Put(*k, *v));
    } else if (tag == "request-ids") {
      std::istringstream f(rest);
      std::string key, bits, count;
      f >> key >> bits >> count;
      auto k = ledger::Base64UrlDecode(key);
      auto b = ledger::ParseUint64(bits);
      auto n = ledger::ParseUint64(count);
      if (!k.ok() || k->size() != 16 || !b.ok() || *b < 1 || *b > 64 || !n.ok() || state_.ids().size() != 0)
        return bad("line " + std::to_string(line_no) + ": bad request-ids line");
      const RequestIdSet& ids = state_.ids();
      state_.mutable_ids() = RequestIdSet(static_cast<unsigned>(*b), *k, ids.memory_budget(), ids.spill_dir());
      expected_requests = *n;
      have_request_ids = true;
    } else if (tag == "request") {
      auto sp2 = rest.find(' ');
      auto fp = ledger::ParseUint64(rest.substr(0, sp2));
      auto index = ledger::ParseUint64(sp2 == std::string::npos ? "" : rest.substr(sp2 + 1));
      if (!have_request_ids || !fp.ok() || !index.ok() || *index >= size)
        return bad("line " + std::to_string(line_no) + ": bad request line");
      LEDGER_RETURN_IF_ERROR(state_.mutable_ids().Insert(*fp, *index));
    } else if (tag == "index") {
      std::istringstream f(rest);
      std::string root, subj, acc, com, last;
      f >> root >> subj >> acc >> com >> last;
      auto r = ledger::Base64Decode(root);
      auto ns = ledger::ParseUint64(subj), na = ledger::ParseUint64(acc), nc = ledger::ParseUint64(com);
      auto nl = ledger::ParseUint64(last);
      if (!r.ok() || r->size() != 32 || !ns.ok() || !na.ok() || !nc.ok() || (last != "none" && !nl.ok()))
        return bad("line " + std::to_string(line_no) + ": bad index line");
      saved_index.root = *ledger::HashFromBytes(*r);
      saved_index.subjects = *ns;
      saved_index.accesses = *na;
      saved_index.commitments = *nc;
      if (last != "none") saved_index.last_commitment = *nl;
      have_index = true;
    } else if (tag == "subject") {
      std::istringstream f(rest);
      std::string t, n, chain;
      f >> t >> n >> chain;
      auto rt = ledger::Base64Decode(t), rc = ledger::Base64Decode(chain);
      auto count = ledger::ParseUint64(n);
      if (!rt.ok() || rt->size() != 32 || !rc.ok() || rc->size() != 32 || !count.ok() || *count == 0)
        return bad("line " + std::to_string(line_no) + ": bad subject line");
      ledger::SubjectValue v;
      v.count = *count;
      v.chain = *ledger::HashFromBytes(*rc);
      subjects.emplace_back(*ledger::HashFromBytes(*rt), v);
    } else if (tag == "end") {
      if (rest != std::to_string(line_no - 1)) return bad("truncated (end line does not match)");
      ended = true;
    } else {
      return bad("line " + std::to_string(line_no) + ": unknown tag \"" + tag.substr(0, 40) + "\"");
    }
  }
  if (!ended) return bad("truncated (no end line)");
  if (have_request_ids && state_.ids().size() != expected_requests) return bad("request id count does not match");
  // A state saved before witness policies were recorded was built without
  // --witness.
  if (!have_witnesses && witness_policy_ != "none")
    return Status::InvalidArgument("audit state " + path + " was built without --witness, not with the witness policy \"" +
                                   witness_policy_ + "\"; use a new state file");
  if (!have_size || checkpoint_note->empty()) return bad("no size or checkpoint");
  if (frontier.size() != FrontierNodes(size).size()) return bad("frontier does not match the size");
  FrontierReader reader(size, std::move(frontier));
  auto range = ledger::CompactRange::FromReader(size, reader);
  if (!range.ok()) return bad(range.status().message());
  range_ = std::move(range).value();
  if (entries_ != size) return bad("counters do not match the size");
  if (v1) {
    // Written before the subject index: resumable only if it saw no access.
    if (by_kind_["access"] != 0)
      return Status::InvalidArgument("audit state " + path +
                                     " was written by an older ledger-verify, without the subject index; use a new "
                                     "state file (a full audit)");
    return Status::OK();
  }
  if (!have_index) return bad("no index line");
  if (subjects.size() != saved_index.subjects) return bad("the index counts do not match its subjects");
  uint64_t total = 0;
  for (const auto& s : subjects) total += s.second.count;
  if (total != saved_index.accesses) return bad("the index counts do not match its subjects");
  ledger::Hash root = ledger::SubjectEmptyHash();
  for (size_t at = 0; at < subjects.size(); at += 65536) {
    std::vector<std::pair<ledger::SubjectTag, ledger::SubjectValue>> chunk(
        subjects.begin() + at, subjects.begin() + std::min(subjects.size(), at + 65536));
    auto r = ledger::ApplySubjectUpdates(index_, chunk);
    if (!r.ok()) return bad("the subject index does not rebuild: " + r.status().message());
    root = *r;
  }
  if (root != saved_index.root) return bad("the subject index rebuilds to another root");
  index_summary_ = saved_index;
  return Status::OK();
}

// --- Report ------------------------------------------------------------------

ordered_json ViolationJson(const Violation& v, const SignedCheckpoint& checkpoint, Fetcher& fetcher,
                           const TileHashReader& reader) {
  ordered_json j;
  j["rule"] = v.rule;
  j["index"] = v.index;
  j["detail"] = v.detail;
  j["entry"] = ledger::Base64Encode(v.entry);
  std::vector<Hash> proof;
  std::string inclusion_error;
  // Every violation about an entry gets its proof, even an empty entry's
  // (its leaf hash is well defined); tree-level ones have no entry.
  bool about_entry = v.rule != "root mismatch" && v.rule != "fork" && v.index < checkpoint.body.size;
  if (about_entry) {
    auto p = ledger::InclusionProof(v.index, checkpoint.body.size, reader);
    if (!p.ok()) {
      inclusion_error = "cannot compute the inclusion proof from the log's tiles: " + p.status().message();
    } else {
      Status ok = ledger::VerifyInclusion(ledger::HashLeaf(v.entry), v.index, checkpoint.body.size, *p,
                                          checkpoint.body.root);
      if (ok.ok()) proof = *p;
      else inclusion_error = "the log's tiles do not prove this entry's inclusion: " + ok.message();
    }
  }
  j["inclusion"] = HashesJson(proof);
  if (!inclusion_error.empty()) j["inclusion_error"] = inclusion_error;
  j["checkpoint"] = checkpoint.note;
  if (v.policy_index) {
    ordered_json p;
    p["index"] = *v.policy_index;
    auto entry = EntryAt(fetcher, *v.policy_index, checkpoint.body.size);
    if (entry.ok()) {
      p["entry"] = ledger::Base64Encode(*entry);
      auto proof2 = ledger::InclusionProof(*v.policy_index, checkpoint.body.size, reader);
      if (proof2.ok() && ledger::VerifyInclusion(ledger::HashLeaf(*entry), *v.policy_index, checkpoint.body.size,
                                                 *proof2, checkpoint.body.root)
                             .ok())
        p["inclusion"] = HashesJson(*proof2);
      else
        p["inclusion"] = ordered_json::array();
    } else {
      p["entry"] = "";
      p["error"] = "cannot fetch the policy entry: " + entry.status().message();
    }
    j["policy"] = p;
  }
  if (!v.old_checkpoint.empty()) j["old_checkpoint"] = v.old_checkpoint;
  if (v.rule == "fork") j["consistency"] = HashesJson(v.consistency);
  if (v.computed_root) j["computed_root"] = B64(*v.computed_root);
  if (v.index_expected) j["expected"] = IndexFieldsJson(*v.index_expected);
  if (v.index_found) j["found"] = IndexFieldsJson(*v.index_found);
  return j;
}

ordered_json AuditReportJson(const AuditReport& report, Fetcher& fetcher) {
  ordered_json j;
  j["checkpoint"] = CheckpointJson(report.checkpoint.body);
  if (report.witnesses.active()) j["witnesses"] = WitnessesJson(report.witnesses, report.checkpoint.cosignatures);
  j["entries"] = report.entries;
  j["entries_by_kind"] = CountsJson(report.entries_by_kind);
  j["accesses"] = AccessesJson(report.accesses);
  const SubjectIndexSummary& ix = report.subject_index;
  j["subject_index"] = ordered_json{
      {"commitments", ix.commitments},
      {"last_commitment", ix.last_commitment ? ordered_json(*ix.last_commitment) : ordered_json(nullptr)},
      {"subjects", ix.subjects},
      {"accesses", ix.accesses},
      {"root", B64(ix.root)}};
  TileHashReader reader(&fetcher, report.checkpoint.body.size);
  ordered_json violations = ordered_json::array();
  for (const Violation& v : report.violations) violations.push_back(ViolationJson(v, report.checkpoint, fetcher, reader));
  j["violations"] = violations;
  j["verified"] = report.violations.empty();
  return j;
}

std::string AuditReportText(const AuditReport& report, const ordered_json& rj) {
  std::ostringstream out;
  const ledger::Checkpoint& cp = report.checkpoint.body;
  out << "Audit of " << cp.origin << "\n";
  out << "  checkpoint  size " << cp.size << ", root " << B64(cp.root) << " (signature verified)\n";
  if (report.witnesses.active()) out << WitnessesText(report.witnesses, report.checkpoint.cosignatures, "  ");
  if (!report.resumed_from.empty()) out << "  resumed     from " << report.resumed_from << "\n";
  uint64_t replayed = cp.size > report.replayed_from ? cp.size - report.replayed_from : 0;
  out << "  replayed    " << replayed << " entries";
  if (replayed) {
    out << " (" << report.replayed_from << ".." << cp.size - 1 << ") in ";
    char buf[64];
    double rate = report.replay_seconds > 0 ? static_cast<double>(replayed) / report.replay_seconds : 0;
    std::snprintf(buf, sizeof buf, "%.2f s, %.0f entries/s", report.replay_seconds, rate);
    out << buf;
  }
  out << "\n\n";
  out << "Entries: " << report.entries << " (";
  bool first = true;
  for (const char* k : kKinds) {
    auto it = report.entries_by_kind.find(k);
    uint64_t n = it == report.entries_by_kind.end() ? 0 : it->second;
    if ((std::string(k) == "invalid" || std::string(k) == "index") && n == 0) continue;
    out << (first ? "" : ", ") << k << " " << n;
    first = false;
  }
  out << ")\n";
  out << "Accesses by accessor, purpose and category:\n";
  if (report.accesses.empty()) out << "  (none)\n";
  for (const auto& [accessor, purposes] : report.accesses) {
    out << "  " << accessor << "\n";
    for (const auto& [purpose, cats] : purposes) {
      out << "    " << purpose << std::string(purpose.size() < 30 ? 30 - purpose.size() : 1, ' ');
      bool f = true;
      for (const auto& [cat, n] : cats) {
        out << (f ? "" : ", ") << cat << " " << n;
        f = false;
      }
      out << "\n";
    }
  }
  const SubjectIndexSummary& ix = report.subject_index;
  out << "Subject index (rebuilt): " << ix.subjects << " subjects, " << ix.accesses << " accesses, root " << B64(ix.root)
      << "; " << ix.commitments << " commitment" << (ix.commitments == 1 ? "" : "s");
  if (ix.last_commitment) out << ", the latest at entry " << *ix.last_commitment;
  out << "\n";
  const ordered_json& vs = rj["violations"];
  out << "\nViolations: " << vs.size() << "\n";
  size_t k = 0;
  for (const auto& v : vs) {
    k++;
    out << "  [" << k << "] " << v["rule"].get<std::string>() << " at entry " << v["index"].get<uint64_t>() << "\n";
    out << "      detail     " << v["detail"].get<std::string>() << "\n";
    if (!v["entry"].get<std::string>().empty()) out << "      entry      " << v["entry"].get<std::string>() << "\n";
    if (!v["inclusion"].empty()) {
      out << "      inclusion";
      for (const auto& h : v["inclusion"]) out << " " << h.get<std::string>();
      out << "\n";
    }
    if (v.contains("inclusion_error")) out << "      inclusion  " << v["inclusion_error"].get<std::string>() << "\n";
    if (v.contains("policy")) {
      const auto& p = v["policy"];
      out << "      policy in force: entry " << p["index"].get<uint64_t>() << " " << p["entry"].get<std::string>() << "\n";
    }
    if (v.contains("computed_root")) out << "      computed root " << v["computed_root"].get<std::string>() << "\n";
    if (v.contains("expected") && v.contains("found")) {
      for (const char* which : {"expected", "found"}) {
        const auto& f = v[which];
        out << "      " << which << (std::string(which) == "found" ? "   " : "") << "   size " << f["size"].get<uint64_t>()
            << ", root " << f["root"].get<std::string>() << ", subjects " << f["subjects"].get<uint64_t>()
            << ", accesses " << f["accesses"].get<uint64_t>() << "\n";
      }
    }
    if (v.contains("old_checkpoint")) {
      out << "      old checkpoint:\n";
      std::istringstream lines(v["old_checkpoint"].get<std::string>());
      std::string l;
      while (std::getline(lines, l)) out << "        " << l << "\n";
    }
  }
  if (!vs.empty()) {
    out << "\nEvidence checkpoint (every inclusion proof above is against it):\n";
    std::istringstream lines(report.checkpoint.note);
    std::string l;
    while (std::getline(lines, l)) out << "  " << l << "\n";
    out << "\nFAILED: " << vs.size() << " violation" << (vs.size() == 1 ? "" : "s") << "\n";
  } else {
    out << "\nVERIFIED: the " << report.entries
        << " entries hash to the signed root, every signature verifies and every rule holds.\n";
  }
  return out.str();
}

std::string WitnessPolicyString(const WitnessPolicy& policy) {
  if (!policy.active()) return "none";
  std::string out = "quorum " + std::to_string(policy.quorum);
  for (const std::string& k : policy.DistinctKeys()) out += " " + k;
  return out;
}

// --- The command ----------------------------------------------------------------

namespace {

constexpr char kAuditHelp[] = R"(Usage: ledger-verify audit --log URL|DIR --log-key VKEY [--state FILE]
                           [--threads N] [--connections N] [--max-skew SECONDS]
                           [--checkpoint FILE] [--witness WKEY ... [--quorum K]] [--json]

Replays the whole log and checks everything, trusting nothing the log says:
  - the checkpoint is signed by the log key (and, with --witness, cosigned
    by K distinct listed witnesses);
  - every entry bundle up to its size is fetched, and the entries hash to the
    signed root (RFC 6962);
  - every entry parses and its envelope signature verifies (on N threads);
  - the state is re-derived from the log with the log's own rules: holders,
    authorised and revoked keys, policies in force, request ids; every entry
    is checked against the state just before it, every access against the
    policy in force when it was sequenced;
  - access times never run backwards by more than --max-skew.
Prints entries by kind, accesses by accessor x purpose x category, and every
violation with evidence anyone can re-check (the entry, its inclusion proof
against the checkpoint, the checkpoint, the policy entry in force).

Options:
  --log URL|DIR        the log's base URL, or a mirror directory (C2SP
                       tlog-tiles layout, as "ledger-verify mirror" writes)
  --log-key VKEY       the log's verifier key, or @FILE (e.g. @DATA/log.vkey)
  --state FILE         incremental audit: resume from FILE if it exists (its
                       checkpoint must be consistent with the new one, or the
                       log forked: exit 1), replay only new entries, and save
                       the new state to FILE (atomically) if the tree verifies;
                       the state is bound to the log key, --max-skew and the
                       witness policy (--witness keys and --quorum): another
                       value is refused (exit 2)
  --threads N          threads verifying signatures [hardware threads]
  --connections N      concurrent bundle fetches [4]
  --max-skew SECONDS   allowed backwards step of access times [300]
  --checkpoint FILE    audit up to this signed checkpoint instead of the
                       log's latest ("-": stdin)
  --request-id-memory BYTES
                       memory for the request ids seen [33554432]; beyond
                       it they spill to an unlinked temporary file in
                       $TMPDIR (else next to --state, else /tmp)
)" LEDGER_VERIFY_WITNESS_HELP R"(  --json               print the report as JSON (documented in
                       verifier/audit.h; stable)
  --help               show this help
A progress bar with rate and ETA is drawn on stderr when it is a terminal.
Exit status: 0 verified, 1 violations found or verification failed, 2 usage
or I/O error.
)";

int RunAudit(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
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
  int64_t max_skew = 300;
  if (args.Has("--max-skew")) {
    auto n = ParseCount("--max-skew", args.Get("--max-skew"), 0, 100LL * 365 * 86400);
    if (!n.ok()) return UsageError(n.status().message());
    max_skew = static_cast<int64_t>(*n);
  }
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  bool as_json = args.Has("--json");
  auto fetcher = Fetcher::Open(args.Get("--log"));
  if (!fetcher.ok()) return UsageError(fetcher.status().message());

  // The checkpoint to audit up to.
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
    bool quorum = IsQuorumFailure(cp.status());
    if (as_json) {
      ordered_json j;
      j["verified"] = false;
      j["error"] = "checkpoint: " + cp.status().message();
      if (quorum) j["witnesses"] = WitnessesJson(*witnesses, cosigned);
      std::cout << DumpJson(j) << std::endl;
    } else if (quorum) {
      std::cout << "NOT VERIFIED: the checkpoint: " << cp.status().message() << "\n"
                << WitnessesText(*witnesses, cosigned, "  ");
    }
    return Failed("the checkpoint does not verify: " + cp.status().message());
  }

  uint64_t id_memory = RequestIdSet::kDefaultMemoryBudget;
  if (args.Has("--request-id-memory")) {
    auto n = ParseCount("--request-id-memory", args.Get("--request-id-memory"), 0, uint64_t{1} << 40);
    if (!n.ok()) return UsageError(n.status().message());
    id_memory = *n;
  }
  std::string vkey = key->VerifierKeyString();
  AuditReplay replay(Bytes(key->public_key()), max_skew, WitnessPolicyString(*witnesses));
  {
    // Spilled request ids go to $TMPDIR, else next to the state file.
    std::string spill_dir;
    const char* tmpdir = std::getenv("TMPDIR");
    std::string sp = args.Get("--state");
    if ((!tmpdir || !*tmpdir) && !sp.empty()) {
      auto slash = sp.rfind('/');
      spill_dir = slash == std::string::npos ? "." : slash == 0 ? "/" : sp.substr(0, slash);
    }
    replay.SetRequestIdMemory(id_memory, spill_dir);
  }
  // A request id's fingerprint that matches is settled by reading the
  // entry it points to again: only an entry proven to be in the audited
  // tree counts (the log could serve other bytes the second time). Any
  // failure stops the audit (exit 2): the replay cannot go on exactly.
  TileHashReader source_reader(fetcher->get(), cp->body.size);
  replay.SetEntrySource([&](uint64_t index) -> ledger::StatusOr<Bytes> {
    auto fail = [&](const std::string& why) {
      return Status::Corruption("cannot read entry " + std::to_string(index) + " again to settle a request id: " + why);
    };
    auto entry = EntryAt(**fetcher, index, cp->body.size);
    if (!entry.ok()) return fail(entry.status().message());
    auto proof = ledger::InclusionProof(index, cp->body.size, source_reader);
    if (!proof.ok()) return fail("no inclusion proof from the log's tiles: " + proof.status().message());
    Status in = ledger::VerifyInclusion(ledger::HashLeaf(*entry), index, cp->body.size, *proof, cp->body.root);
    if (!in.ok()) return fail("it is not in the checkpoint's tree as served now: " + in.message());
    return entry;
  });
  AuditReport report;
  report.checkpoint = *cp;
  report.witnesses = *witnesses;
  std::string state_path = args.Get("--state");
  std::optional<SignedCheckpoint> stored;
  if (!state_path.empty()) {
    std::string stored_note;
    Status st = replay.LoadState(state_path, vkey, &stored_note);
    if (st.ok()) {
      // Saved under the same witness policy (LoadState checked), so it
      // meets it.
      auto old = OpenSignedCheckpoint(stored_note, *key, *witnesses);
      if (!old.ok()) return IoError("audit state " + state_path + ": its checkpoint does not verify: " + old.status().message());
      if (old->body.size != replay.size() || old->body.root != replay.Root())
        return IoError("audit state " + state_path + ": its frontier does not match its checkpoint");
      stored = *old;
    } else if (!st.IsNotFound()) {
      return ExitForStatus(st);
    }  // no state file yet: this run is a full audit that creates it
  }

  // An incremental audit first proves that the new checkpoint extends the
  // one the saved state verified; otherwise the log forked (or rolled back).
  std::string unproven_detail;
  std::vector<Hash> unproven_proof;
  if (stored) {
    const ledger::Checkpoint& o = stored->body;
    const ledger::Checkpoint& n = cp->body;
    report.resumed_from = "state " + state_path + " at size " + std::to_string(o.size);
    std::string fork_detail;
    std::vector<Hash> proof;
    if (n.size < o.size) {
      fork_detail = "the log's checkpoint (size " + std::to_string(n.size) + ") is smaller than the one verified before (size " +
                    std::to_string(o.size) + "): the log rolled back or forked";
    } else {
      TileHashReader reader(fetcher->get(), n.size);
      auto p = ledger::ConsistencyProof(o.size, n.size, reader);
      if (!p.ok()) {
        if (!IsVerificationFailure(p.status()) && !p.status().IsNotFound())
          return IoError("cannot compute the consistency proof from the log's tiles: " + p.status().message());
        unproven_detail = "cannot compute a consistency proof from the log's tiles: " + p.status().message();
      } else {
        proof = *p;
        Status ok = ledger::VerifyConsistency(o.size, n.size, proof, o.root, n.root);
        if (!ok.ok()) {
          unproven_detail = "the checkpoint of size " + std::to_string(n.size) + " is not consistent with the one of size " +
                            std::to_string(o.size) + " verified before: " + ok.message();
          unproven_proof = proof;
        }
      }
      // Bad tiles alone are no proof of a fork: the replay below extends the
      // verified frontier with the new entries, and reaching the new root
      // that way proves consistency without trusting any tile. Only if it
      // does not is the fork reported (after the replay).
    }
    if (!fork_detail.empty()) {
      report.entries = replay.entries();
      report.entries_by_kind = replay.entries_by_kind();
      report.accesses = replay.accesses();
      report.violations = replay.violations();
      {
        auto ix = replay.SubjectIndex();
        if (!ix.ok()) return IoError(ix.status().message());
        report.subject_index = *ix;
      }
      Violation fork;
      fork.rule = "fork";
      fork.index = o.size;
      fork.detail = fork_detail;
      fork.old_checkpoint = stored->note;
      fork.consistency = proof;
      report.violations.push_back(fork);
      report.replayed_from = n.size;
      ordered_json rj = AuditReportJson(report, **fetcher);
      std::cout << (as_json ? DumpJson(rj) + "\n" : AuditReportText(report, rj)) << std::flush;
      return kExitFailed;
    }
  }

  // The replay: bundles stream in concurrently, the rules run in log order.
  report.replayed_from = replay.size();
  StreamOptions options;
  options.fetch_threads = (*fetcher)->is_directory() ? 1 : connections;
  options.work_threads = threads;
  ProgressBar progress("audit", cp->body.size - std::min(cp->body.size, replay.size()), true);
  int64_t started = NowMicros();
  uint64_t start = replay.size();
  std::string bundle_failure;
  Status st = StreamBundles(**fetcher, start, cp->body.size, options, [&](BundleChunk& chunk) -> Status {
    if (!chunk.status.ok()) {
      if (chunk.status.IsCorruption()) {
        bundle_failure = chunk.status.message();
        return Status::Corruption(chunk.status.message());
      }
      return chunk.status;
    }
    for (size_t k = 0; k < chunk.entries.size(); k++)
      LEDGER_RETURN_IF_ERROR(replay.Feed(chunk.first_index + k, chunk.entries[k], chunk.leaf_hashes[k], chunk.parsed[k]));
    progress.Update(replay.size() - start);
    return Status::OK();
  });
  progress.Finish();
  report.replay_seconds = static_cast<double>(NowMicros() - started) / 1e6;
  if (!st.ok() && bundle_failure.empty()) return IoError(st.message());

  report.entries = replay.entries();
  report.entries_by_kind = replay.entries_by_kind();
  report.accesses = replay.accesses();
  report.violations = replay.violations();
  {
    auto ix = replay.SubjectIndex();
    if (!ix.ok()) return IoError(ix.status().message());
    report.subject_index = *ix;
  }
  bool tree_ok = bundle_failure.empty() && replay.Root() == cp->body.root && replay.size() == cp->body.size;
  if (!tree_ok && !unproven_detail.empty() && bundle_failure.empty()) {
    // The verified frontier plus the served entries does not reach the new
    // root, and the tiles give no valid consistency proof: a fork.
    Violation fork;
    fork.rule = "fork";
    fork.index = stored->body.size;
    fork.detail = unproven_detail + "; replaying the entries after size " + std::to_string(stored->body.size) +
                  " from the verified frontier gives root " + B64(replay.Root()) + ", not the signed " +
                  B64(cp->body.root);
    fork.old_checkpoint = stored->note;
    fork.consistency = unproven_proof;
    report.violations.push_back(fork);
  } else if (!tree_ok) {
    Violation v;
    v.rule = "root mismatch";
    v.index = cp->body.size;
    if (!bundle_failure.empty()) {
      v.detail = "an entry bundle cannot be read, so the tree cannot be rebuilt: " + bundle_failure;
    } else {
      v.detail = "the log's entries hash to " + B64(replay.Root()) + ", but the checkpoint signs root " +
                 B64(cp->body.root) + " for size " + std::to_string(cp->body.size);
      v.computed_root = replay.Root();
    }
    report.violations.push_back(v);
  }
  ordered_json rj = AuditReportJson(report, **fetcher);
  // Save only a state whose tree verified: resuming from anything else
  // would build on entries the checkpoint does not cover.
  if (!state_path.empty() && tree_ok) {
    Status saved = replay.SaveState(state_path, vkey, cp->note);
    if (!saved.ok()) {
      std::cout << (as_json ? DumpJson(rj) + "\n" : AuditReportText(report, rj)) << std::flush;
      return IoError(saved.message());
    }
  }
  std::cout << (as_json ? DumpJson(rj) + "\n" : AuditReportText(report, rj)) << std::flush;
  return report.violations.empty() ? kExitVerified : kExitFailed;
}

}  // namespace

const Command kAuditCommand = {
    "audit",
    "replay the whole log: tree, signatures, rules, policies; report violations",
    kAuditHelp,
    {{"--log", true},
     {"--log-key", true},
     {"--state", true},
     {"--threads", true},
     {"--connections", true},
     {"--max-skew", true},
     {"--checkpoint", true},
     {"--request-id-memory", true},
     kWitnessFlag,
     kQuorumFlag,
     {"--json", false}},
    {"--log", "--log-key"},
    RunAudit,
};

}  // namespace verifier
