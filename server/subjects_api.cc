#include "subjects_api.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ledger/ledger_hook.h"
#include "ledger/merkle.h"
#include "ledger/record.h"
#include "ledger/subject_state.h"
#include "query.h"

namespace ledgerd {
namespace {

using json = nlohmann::json;
using ledger::Status;

std::string B64(const ledger::Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

json HashesJson(const std::vector<ledger::Hash>& hashes) {
  json arr = json::array();
  for (const auto& h : hashes) arr.push_back(B64(h));
  return arr;
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& reason) {
  SendJson(res, status, json{{"error", reason}});
}

// Proven is one entry with its inclusion proof against the snapshot's size.
ledger::StatusOr<json> Proven(const ledger::LogReader& reader, const ledger::HashReader& nodes, uint64_t index,
                              ledger::ByteView* entry_out = nullptr) {
  LEDGER_ASSIGN_OR_RETURN(ledger::ByteView entry, reader.GetEntry(index));
  LEDGER_ASSIGN_OR_RETURN(std::vector<ledger::Hash> proof, ledger::InclusionProof(index, reader.size(), nodes));
  if (entry_out) *entry_out = entry;
  return json{{"index", index}, {"entry", ledger::Base64Encode(entry)}, {"inclusion", HashesJson(proof)}};
}

}  // namespace

ledger::StatusOr<json> SubjectAnswer(const ledger::LogReader& reader, ledger::SubjectNodeStore& tree,
                                     const ledger::SubjectTag& tag, uint64_t offset, uint64_t limit) {
  ledger::ReaderStateStore state(reader);
  ledger::CachingHashReader nodes(reader);
  LEDGER_ASSIGN_OR_RETURN(auto last, ledger::ReadLastCommitment(state));

  json out;
  out["checkpoint"] = reader.checkpoint();
  out["subject"] = ledger::Base64UrlEncode(ledger::HashView(tag));
  uint64_t covered = 0;  // accesses below this index are covered by the commitment
  if (last) {
    ledger::ByteView entry;
    LEDGER_ASSIGN_OR_RETURN(json c, Proven(reader, nodes, last->index, &entry));
    auto env = ledger::ParseEnvelope(entry);
    if (!env.ok() || env->payload_type != ledger::kIndexPayloadType)
      return Status::Corruption("the latest index commitment's entry is not an index entry");
    auto record = ledger::ParseIndex(env->payload);
    if (!record.ok()) return Status::Corruption("the latest index commitment does not parse");
    LEDGER_ASSIGN_OR_RETURN(ledger::Hash stored_root, ledger::SubjectIndexRoot(tree));
    if (stored_root != record->root || record->size != last->index)
      return Status::Corruption("the stored subject index does not match the latest commitment");
    covered = record->size;
    out["commitment"] = std::move(c);
  } else {
    out["commitment"] = nullptr;
  }
  LEDGER_ASSIGN_OR_RETURN(ledger::SubjectLookup lookup, ledger::ProveSubject(tree, tag));

  // The tag's covered access indices, ascending (its leaf's list, SPEC.md
  // §10), and the pending ones (y/ keys).
  LEDGER_ASSIGN_OR_RETURN(std::vector<uint64_t> indices, ledger::CoveredSubjectAccesses(reader, tree, tag));
  for (uint64_t i : indices)
    if (i >= covered) return Status::Corruption("a subject's listed access is not below the latest commitment");
  LEDGER_ASSIGN_OR_RETURN(std::vector<uint64_t> pending, ledger::PendingSubjectAccesses(reader, tag, kSubjectMaxPending));
  uint64_t count = lookup.value ? lookup.value->count : 0;
  if (count != indices.size())
    return Status::Corruption("the subject index counts " + std::to_string(count) + " accesses for the tag, the state lists " +
                              std::to_string(indices.size()));

  out["count"] = count;
  out["indices"] = indices;
  json proof;
  proof["end"] = ledger::SubjectIndexProofEndName(lookup.proof.end);
  proof["siblings"] = HashesJson(lookup.proof.siblings);
  if (lookup.proof.end == ledger::SubjectIndexProof::End::kLeaf) {
    proof["other_tag"] = ledger::Base64UrlEncode(ledger::HashView(lookup.proof.other_tag));
    proof["other_value"] = ledger::Base64Encode(ledger::EncodeSubjectValue(lookup.proof.other_value));
  }
  out["proof"] = std::move(proof);
  out["offset"] = offset;
  out["limit"] = limit;

  // Entries with the policy in force at each (the greatest policy index of
  // its holder and accessor below it), and each such policy once.
  std::set<uint64_t> policies;
  auto list = [&](uint64_t i) -> ledger::StatusOr<json> {
    ledger::ByteView entry;
    LEDGER_ASSIGN_OR_RETURN(json e, Proven(reader, nodes, i, &entry));
    auto env = ledger::ParseEnvelope(entry);
    if (!env.ok() || env->payload_type != ledger::kAccessPayloadType)
      return Status::Corruption("entry " + std::to_string(i) + " is listed for a subject but is no access entry");
    auto access = ledger::ParseAccess(env->payload);
    if (!access.ok()) return Status::Corruption("entry " + std::to_string(i) + " is listed for a subject but does not parse");
    LEDGER_ASSIGN_OR_RETURN(std::optional<uint64_t> p, ledger::PolicyAt(reader, access->holder, access->accessor, i));
    if (p) {
      e["policy"] = *p;
      policies.insert(*p);
    } else {
      e["policy"] = nullptr;
    }
    return e;
  };
  json entries = json::array();
  for (uint64_t k = offset; k < indices.size() && k - offset < limit; k++) {
    LEDGER_ASSIGN_OR_RETURN(json e, list(indices[k]));
    entries.push_back(std::move(e));
  }
  json pending_json = json::array();
  for (uint64_t i : pending) {
    LEDGER_ASSIGN_OR_RETURN(json e, list(i));
    pending_json.push_back(std::move(e));
  }
  out["entries"] = std::move(entries);
  out["pending"] = std::move(pending_json);
  json policies_json = json::array();
  for (uint64_t p : policies) {
    LEDGER_ASSIGN_OR_RETURN(json e, Proven(reader, nodes, p));
    policies_json.push_back(std::move(e));
  }
  out["policies"] = std::move(policies_json);
  return out;
}

void RegisterSubjects(httplib::Server& server, ledger::Store* store, ledger::SubjectTreeStore* tree) {
  server.Get(R"(/v1/subjects/([^/]*))", [store, tree](const httplib::Request& req, httplib::Response& res) {
    if (!tree) return SendError(res, 404, "no subject index: this log holds opaque entries");
    Status params = CheckQueryParams(req.target, req.params, {"offset", "limit"});
    if (!params.ok()) return SendError(res, 400, params.message());
    auto raw = ledger::Base64UrlDecode(req.matches[1].str());
    if (!raw.ok() || raw->size() != 32)
      return SendError(res, 400, "the subject tag must be 32 bytes in canonical unpadded base64url (43 characters)");
    ledger::SubjectTag tag;
    std::copy(raw->begin(), raw->end(), tag.begin());
    auto offset = ParseQueryUint(req.params, "offset", 0);
    if (!offset.ok()) return SendError(res, 400, offset.status().message());
    auto limit = ParseQueryUint(req.params, "limit", kSubjectDefaultLimit);
    if (!limit.ok()) return SendError(res, 400, limit.status().message());
    if (*limit < 1 || *limit > kSubjectMaxLimit)
      return SendError(res, 400, "limit must be from 1 to " + std::to_string(kSubjectMaxLimit));
    // The tree's view first, then the log snapshot: the view then holds the
    // version of the snapshot's latest commitment (subject_tree.h).
    auto view = tree->View();
    if (!view.ok()) return SendError(res, 500, view.status().message());
    auto reader = store->Read();
    if (!reader.ok()) return SendError(res, 500, reader.status().message());
    if (auto s = ledger::SetSubjectTreeVersion(**view, **reader); !s.ok()) return SendError(res, 500, s.message());
    auto answer = SubjectAnswer(**reader, **view, tag, *offset, *limit);
    if (!answer.ok()) return SendError(res, 500, answer.status().message());
    SendJson(res, 200, *answer);
  });
}

}  // namespace ledgerd
