#include "subject.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.h"
#include "ledger/merkle.h"
#include "ledger/rules.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::Hash;
using ledger::Status;
using json = nlohmann::json;

std::string B64(const Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }
std::string B64Url(const Hash& h) { return ledger::Base64UrlEncode(ledger::HashView(h)); }

// CustomerText shows a customer id as text when it is printable ASCII,
// else as base64url.
std::string CustomerText(const Bytes& id) {
  for (unsigned char ch : id)
    if (ch < 0x20 || ch > 0x7e) return "(base64url) " + ledger::Base64UrlEncode(id);
  return id;
}

// The JSON readers below never throw: a missing or mistyped field is a
// failure of the log's answer, reported in words.
bool GetU64(const json& j, const char* key, uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return false;
  *out = it->get<uint64_t>();
  return true;
}

bool GetString(const json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

std::optional<Hash> HashFromB64(const json& j) {
  if (!j.is_string()) return std::nullopt;
  auto raw = ledger::Base64Decode(j.get<std::string>());
  if (!raw.ok() || raw->size() != 32) return std::nullopt;
  return *ledger::HashFromBytes(*raw);
}

std::optional<std::vector<Hash>> HashList(const json& j, size_t max) {
  if (!j.is_array() || j.size() > max) return std::nullopt;
  std::vector<Hash> out;
  for (const auto& h : j) {
    auto v = HashFromB64(h);
    if (!v) return std::nullopt;
    out.push_back(*v);
  }
  return out;
}

// ProvenEntry is {"index", "entry", "inclusion"} checked against a
// checkpoint: the entry's bytes are included at that index.
struct ProvenEntry {
  uint64_t index = 0;
  Bytes entry;
};

std::optional<ProvenEntry> CheckProvenEntry(const json& j, const ledger::Checkpoint& cp, const std::string& what,
                                            std::vector<std::string>* failures) {
  ProvenEntry out;
  std::string entry_b64;
  if (!j.is_object() || !GetU64(j, "index", &out.index) || !GetString(j, "entry", &entry_b64) ||
      !j.contains("inclusion")) {
    failures->push_back(what + ": not an object with index, entry and inclusion");
    return std::nullopt;
  }
  auto entry = ledger::Base64Decode(entry_b64);
  if (!entry.ok()) {
    failures->push_back(what + " (entry " + std::to_string(out.index) + "): the entry is not base64");
    return std::nullopt;
  }
  out.entry = std::move(*entry);
  auto proof = HashList(j["inclusion"], 64);
  if (!proof) {
    failures->push_back(what + " (entry " + std::to_string(out.index) + "): malformed inclusion proof");
    return std::nullopt;
  }
  if (out.index >= cp.size) {
    failures->push_back(what + ": entry " + std::to_string(out.index) + " is beyond the checkpoint's size " +
                        std::to_string(cp.size));
    return std::nullopt;
  }
  Status ok = ledger::VerifyInclusion(ledger::HashLeaf(out.entry), out.index, cp.size, *proof, cp.root);
  if (!ok.ok()) {
    failures->push_back(what + ": entry " + std::to_string(out.index) + " is not proven in the checkpoint's tree: " +
                        ok.message());
    return std::nullopt;
  }
  return out;
}

// PolicyRef is a verified policy entry from the answer's "policies".
struct PolicyRef {
  uint64_t index = 0;
  ledger::PolicyRecord policy;
};

// Disclose decides whether |row|'s access is covered by the policy the log
// names for it (looked up in |policies|), and records why in words.
void Disclose(SubjectAccessRow* row, const json& j, const std::map<uint64_t, PolicyRef>& policies,
              std::vector<std::string>* failures) {
  const ledger::AccessRecord& a = row->access;
  std::string where = "access entry " + std::to_string(row->index);
  auto it = j.find("policy");
  if (it == j.end()) {
    failures->push_back(where + ": the log does not say which policy was in force");
    row->disclosure = "unknown: the log names no policy";
    return;
  }
  if (it->is_null()) {
    row->disclosed = false;
    row->disclosure = "no policy of " + a.accessor + " was in force";
    return;
  }
  if (!it->is_number_unsigned()) {
    failures->push_back(where + ": \"policy\" is not an entry index");
    row->disclosure = "unknown: malformed policy reference";
    return;
  }
  uint64_t p = it->get<uint64_t>();
  row->policy_index = p;
  auto pit = policies.find(p);
  if (pit == policies.end()) {
    failures->push_back(where + ": the policy entry " + std::to_string(p) + " it names is not among the proven policies");
    row->disclosure = "unknown: policy entry " + std::to_string(p) + " is not proven";
    return;
  }
  const ledger::PolicyRecord& pol = pit->second.policy;
  if (p >= row->index) {
    failures->push_back(where + ": the policy entry " + std::to_string(p) + " it names comes after it");
    row->disclosure = "unknown: the named policy comes after the access";
    return;
  }
  if (pol.holder != a.holder || pol.accessor != a.accessor) {
    failures->push_back(where + ": the policy entry " + std::to_string(p) + " is " + pol.accessor + "'s for " +
                        pol.holder + ", not " + a.accessor + "'s for " + a.holder);
    row->disclosure = "unknown: the named policy belongs to someone else";
    return;
  }
  row->policy_version = pol.version;
  ledger::PolicyInForce in_force;
  in_force.version = pol.version;
  in_force.index = p;
  for (const auto& pp : pol.purposes) in_force.purposes[pp.purpose] = pp.categories;
  Status s = ledger::LedgerRules::CheckDisclosed(in_force, a);
  row->disclosed = s.ok();
  row->disclosure = s.ok() ? "disclosed in policy v" + std::to_string(pol.version) + " (entry " + std::to_string(p) + ")"
                           : s.message();
}

// CommitmentOf reads the fields of an index commitment entry.
SubjectCommitment CommitmentOf(const ledger::ParsedEntry& e, uint64_t index, const Bytes& entry) {
  const ledger::IndexRecord& r = e.index();
  SubjectCommitment c;
  c.index = index;
  c.size = r.size;
  c.root = r.root;
  c.subjects = r.subjects;
  c.accesses = r.accesses;
  c.time = r.time;
  c.entry = entry;
  return c;
}

// CheckAccessEntry verifies that a proven entry is a valid access entry
// for |tag|; fills |row|.
bool CheckAccessEntry(const ProvenEntry& pe, const ledger::SubjectTag& tag, const std::string& what,
                      SubjectAccessRow* row, std::vector<std::string>* failures) {
  auto parsed = ledger::ParseEntry(pe.entry);
  std::string where = what + " " + std::to_string(pe.index);
  if (!parsed.ok()) {
    failures->push_back(where + " does not parse or its signature fails: " + parsed.status().message());
    return false;
  }
  if (parsed->kind != ledger::EntryKind::kAccess) {
    failures->push_back(where + " is a " + ledger::EntryKindName(parsed->kind) + " entry, not an access");
    return false;
  }
  if (parsed->access().subject != Bytes(ledger::HashView(tag))) {
    failures->push_back(where + " is an access to another subject (" +
                        ledger::Base64UrlEncode(parsed->access().subject) + ")");
    return false;
  }
  row->index = pe.index;
  row->entry = pe.entry;
  row->access = parsed->access();
  return true;
}

}  // namespace

ledger::Status VerifySubjectPage(const std::string& body, const ledger::SubjectTag& tag, uint64_t offset,
                                 uint64_t limit, const ledger::NoteVerifier& log_key, const WitnessPolicy& witnesses,
                                 SubjectPage* page) {
  std::vector<std::string>& failures = page->failures;
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) {
    failures.push_back("the answer is not a JSON object");
    return Status::OK();
  }
  // The checkpoint first: every proof below is against it.
  std::string note;
  if (!GetString(j, "checkpoint", &note)) {
    failures.push_back("the answer has no checkpoint");
    return Status::OK();
  }
  auto cp = OpenSignedCheckpoint(note, log_key, witnesses);
  if (!cp.ok()) {
    if (!IsVerificationFailure(cp.status())) return cp.status();
    failures.push_back("the checkpoint does not verify: " + cp.status().message());
    return Status::OK();
  }
  page->checkpoint = *cp;
  const ledger::Checkpoint& c = cp->body;
  std::string subject;
  if (!GetString(j, "subject", &subject) || subject != B64Url(tag))
    failures.push_back("the answer is about subject \"" + subject.substr(0, 60) + "\", not " + B64Url(tag));

  // The commitment: a log-signed index entry, included, at its own size.
  Hash root = ledger::SubjectEmptyHash();
  auto cit = j.find("commitment");
  if (cit == j.end()) {
    failures.push_back("the answer has no commitment field");
    return Status::OK();
  }
  if (!cit->is_null()) {
    auto pe = CheckProvenEntry(*cit, c, "the commitment", &failures);
    if (!pe) return Status::OK();
    auto parsed = ledger::ParseEntry(pe->entry);
    if (!parsed.ok()) {
      failures.push_back("the commitment entry " + std::to_string(pe->index) +
                         " does not parse or its signature fails: " + parsed.status().message());
      return Status::OK();
    }
    if (parsed->kind != ledger::EntryKind::kIndex) {
      failures.push_back("the commitment entry " + std::to_string(pe->index) + " is a " +
                         ledger::EntryKindName(parsed->kind) + " entry, not an index commitment");
      return Status::OK();
    }
    if (parsed->envelope.public_key != Bytes(log_key.public_key())) {
      failures.push_back("the commitment entry " + std::to_string(pe->index) + " is signed by " +
                         ledger::Base64UrlEncode(parsed->envelope.public_key) + ", not by the log key");
      return Status::OK();
    }
    SubjectCommitment com = CommitmentOf(*parsed, pe->index, pe->entry);
    if (com.size != com.index) {
      failures.push_back("the commitment entry " + std::to_string(com.index) + " covers size " +
                         std::to_string(com.size) + ", not its own index");
      return Status::OK();
    }
    root = com.root;
    page->commitment = com;
  }

  // The indices: strictly increasing, below the commitment's size.
  uint64_t count = 0;
  auto iit = j.find("indices");
  if (!GetU64(j, "count", &count) || iit == j.end() || !iit->is_array()) {
    failures.push_back("the answer has no count or indices");
    return Status::OK();
  }
  uint64_t bound = page->commitment ? page->commitment->size : 0;
  for (const auto& v : *iit) {
    if (!v.is_number_unsigned()) {
      failures.push_back("an index is not a whole number");
      return Status::OK();
    }
    uint64_t i = v.get<uint64_t>();
    if (!page->indices.empty() && i <= page->indices.back()) {
      failures.push_back("the indices do not strictly increase (" + std::to_string(page->indices.back()) + " then " +
                         std::to_string(i) + ")");
      return Status::OK();
    }
    if (i >= bound) {
      failures.push_back("index " + std::to_string(i) + " is not below the commitment's size " + std::to_string(bound));
      return Status::OK();
    }
    page->indices.push_back(i);
  }
  if (count != page->indices.size())
    failures.push_back("count is " + std::to_string(count) + " but " + std::to_string(page->indices.size()) +
                       " indices are listed");
  if (page->commitment && page->indices.size() > page->commitment->accesses)
    failures.push_back(std::to_string(page->indices.size()) + " indices listed, but the commitment counts only " +
                       std::to_string(page->commitment->accesses) + " accesses in all");

  // The index proof: the value recomputed from the indices (or the tag's
  // absence) must lead to the commitment's root.
  auto pit = j.find("proof");
  std::string end;
  if (pit == j.end() || !pit->is_object() || !GetString(*pit, "end", &end) || !pit->contains("siblings")) {
    failures.push_back("the answer has no index proof");
    return Status::OK();
  }
  ledger::SubjectIndexProof proof;
  auto end_kind = ledger::ParseSubjectIndexProofEnd(end);
  auto siblings = HashList((*pit)["siblings"], 256);
  if (!end_kind.ok() || !siblings) {
    failures.push_back("the index proof is malformed");
    return Status::OK();
  }
  proof.end = *end_kind;
  proof.siblings = std::move(*siblings);
  page->proof_end = end;
  page->proof_siblings = proof.siblings.size();
  if (proof.end == ledger::SubjectIndexProof::End::kLeaf) {
    std::string other_tag, other_value;
    auto ot = GetString(*pit, "other_tag", &other_tag) ? ledger::Base64UrlDecode(other_tag)
                                                        : ledger::StatusOr<Bytes>(Status::InvalidArgument("missing"));
    auto ov = GetString(*pit, "other_value", &other_value) ? ledger::Base64Decode(other_value)
                                                            : ledger::StatusOr<Bytes>(Status::InvalidArgument("missing"));
    if (!ot.ok() || ot->size() != 32 || !ov.ok()) {
      failures.push_back("the index proof's other tag or value is malformed");
      return Status::OK();
    }
    auto value = ledger::DecodeSubjectValue(*ov);
    if (!value.ok()) {
      failures.push_back("the index proof's other value is malformed: " + value.status().message());
      return Status::OK();
    }
    proof.other_tag = *ledger::HashFromBytes(*ot);
    proof.other_value = *value;
  }
  std::optional<ledger::SubjectValue> value;
  if (!page->indices.empty()) value = ledger::SubjectValueOf(page->indices);
  bool member = proof.end == ledger::SubjectIndexProof::End::kMember;
  if (member != value.has_value()) {
    failures.push_back(member ? "the index proof says the subject is in the index, but no indices are listed"
                              : "indices are listed, but the index proof says the subject is not in the index");
  } else {
    Status ok = ledger::VerifySubjectIndexProof(root, tag, value, proof);
    if (!ok.ok())
      failures.push_back("the index proof does not verify against the commitment's root" +
                         std::string(page->commitment ? "" : " (no commitment: the empty root)") + ": " + ok.message() +
                         (value ? " (value recomputed from " + std::to_string(page->indices.size()) + " indices)" : ""));
  }

  // Policies, then this page's entries and the pending ones.
  std::map<uint64_t, PolicyRef> policies;
  auto polit = j.find("policies");
  if (polit != j.end()) {
    if (!polit->is_array()) {
      failures.push_back("\"policies\" is not a list");
    } else {
      for (const auto& pj : *polit) {
        auto pe = CheckProvenEntry(pj, c, "a policy", &failures);
        if (!pe) continue;
        auto parsed = ledger::ParseEntry(pe->entry);
        if (!parsed.ok() || parsed->kind != ledger::EntryKind::kPolicy) {
          failures.push_back("the policy entry " + std::to_string(pe->index) + " is not a validly signed policy entry");
          continue;
        }
        policies[pe->index] = PolicyRef{pe->index, parsed->policy()};
      }
    }
  }
  uint64_t got_offset = 0, got_limit = 0;
  if (!GetU64(j, "offset", &got_offset) || got_offset != offset || !GetU64(j, "limit", &got_limit) ||
      got_limit != limit)
    failures.push_back("the answer is for offset " + std::to_string(got_offset) + " limit " + std::to_string(got_limit) +
                       ", not the requested " + std::to_string(offset) + " and " + std::to_string(limit));
  page->offset = offset;
  auto eit = j.find("entries");
  if (eit == j.end() || !eit->is_array()) {
    failures.push_back("the answer has no entries list");
    return Status::OK();
  }
  size_t want = offset < page->indices.size() ? std::min<uint64_t>(limit, page->indices.size() - offset) : 0;
  if (eit->size() != want)
    failures.push_back("the page holds " + std::to_string(eit->size()) + " entries, not " + std::to_string(want));
  for (size_t k = 0; k < eit->size() && k < want; k++) {
    const json& ej = (*eit)[k];
    auto pe = CheckProvenEntry(ej, c, "access entry", &failures);
    if (!pe) continue;
    uint64_t listed = page->indices[offset + k];
    if (pe->index != listed) {
      failures.push_back("the page's entry " + std::to_string(k) + " is entry " + std::to_string(pe->index) +
                         ", but the listed index is " + std::to_string(listed));
      continue;
    }
    SubjectAccessRow row;
    if (!CheckAccessEntry(*pe, tag, "access entry", &row, &failures)) continue;
    Disclose(&row, ej, policies, &failures);
    page->entries.push_back(std::move(row));
  }
  auto pendit = j.find("pending");
  if (pendit != j.end() && !pendit->is_null()) {
    if (!pendit->is_array()) {
      failures.push_back("\"pending\" is not a list");
    } else {
      std::optional<uint64_t> last;
      for (const auto& pj : *pendit) {
        auto pe = CheckProvenEntry(pj, c, "pending entry", &failures);
        if (!pe) continue;
        if (pe->index < bound || (last && pe->index <= *last)) {
          failures.push_back("pending entry " + std::to_string(pe->index) +
                             (pe->index < bound ? " is covered by the commitment, yet not listed in its indices"
                                                : " is out of order"));
          continue;
        }
        last = pe->index;
        SubjectAccessRow row;
        row.pending = true;
        if (!CheckAccessEntry(*pe, tag, "pending entry", &row, &failures)) continue;
        Disclose(&row, pj, policies, &failures);
        page->pending.push_back(std::move(row));
      }
    }
  }
  return Status::OK();
}

size_t SubjectResult::undisclosed() const {
  size_t n = 0;
  for (const auto& r : accesses) n += !r.disclosed;
  for (const auto& r : pending) n += !r.disclosed;
  return n;
}

ledger::Status LookupSubject(Fetcher& fetcher, const ledger::NoteVerifier& log_key, const WitnessPolicy& witnesses,
                             uint64_t page_size, SubjectResult* result) {
  ledger::SubjectTag tag = *ledger::HashFromBytes(result->token.tag);
  std::string base = "v1/subjects/" + B64Url(tag);
  for (int attempt = 0; attempt < 4; attempt++) {
    SubjectResult r;
    r.token = result->token;
    std::optional<std::string> commitment_entry;  // base64 of the first page's
    bool restart = false;
    uint64_t offset = 0;
    for (;;) {
      auto body = fetcher.Get(base + "?offset=" + std::to_string(offset) + "&limit=" + std::to_string(page_size));
      if (!body.ok()) {
        if (body.status().IsNotFound())
          return Status::NotFound(body.status().message() + " (the log serves no subject index: is it in ledger mode?)");
        return body.status();
      }
      SubjectPage page;
      LEDGER_RETURN_IF_ERROR(VerifySubjectPage(*body, tag, offset, page_size, log_key, witnesses, &page));
      r.pages++;
      std::string this_commitment = page.commitment ? ledger::Base64Encode(page.commitment->entry) : "";
      if (offset == 0) {
        r.checkpoint = page.checkpoint;
        r.commitment = page.commitment;
        r.indices = page.indices;
        r.proof_end = page.proof_end;
        r.proof_siblings = page.proof_siblings;
        r.pending = page.pending;
        commitment_entry = this_commitment;
      } else if (page.failures.empty() && (this_commitment != *commitment_entry || page.indices != r.indices)) {
        restart = true;  // a new commitment landed between two pages
        break;
      }
      for (auto& f : page.failures) r.failures.push_back((offset ? "page at offset " + std::to_string(offset) + ": " : "") + f);
      for (auto& e : page.entries) r.accesses.push_back(std::move(e));
      if (!page.failures.empty()) break;
      offset += page_size;
      if (offset >= r.indices.size()) break;
    }
    if (restart) continue;
    r.looked_up = true;
    *result = std::move(r);
    return Status::OK();
  }
  return Status::Unavailable("the log's subject index kept changing between pages; try again");
}

// --- Reports -------------------------------------------------------------------

namespace {

ordered_json RowJson(const SubjectAccessRow& row) {
  const ledger::AccessRecord& a = row.access;
  ordered_json j;
  j["index"] = row.index;
  j["time"] = a.time;
  j["holder"] = a.holder;
  j["accessor"] = a.accessor;
  j["actor"] = a.actor ? ordered_json(*a.actor) : ordered_json(nullptr);
  j["purpose"] = a.purpose;
  const ledger::PurposeInfo* p = ledger::FindPurpose(a.purpose);
  j["purpose_description"] = p ? p->description : "";
  j["categories"] = a.categories;
  j["request_id"] = a.request_id;
  j["consent"] = a.consent;
  j["detail"] = a.detail ? ordered_json(*a.detail) : ordered_json(nullptr);
  j["disclosed"] = row.disclosed;
  j["policy"] = row.policy_index ? ordered_json(*row.policy_index) : ordered_json(nullptr);
  j["policy_version"] = row.policy_version ? ordered_json(*row.policy_version) : ordered_json(nullptr);
  j["disclosure"] = row.disclosure;
  j["entry"] = ledger::Base64Encode(row.entry);
  return j;
}

std::string Joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}

void RowText(std::ostringstream& out, size_t n, const SubjectAccessRow& row) {
  const ledger::AccessRecord& a = row.access;
  out << "  [" << n << "] " << a.time << "  entry " << row.index << "  "
      << (row.disclosed ? "disclosed \u2713" : "NOT DISCLOSED \u2717") << (row.pending ? "  (pending)" : "") << "\n";
  out << "      who         " << a.accessor << (a.actor ? " (actor " + *a.actor + ")" : "") << " for holder " << a.holder
      << "\n";
  const ledger::PurposeInfo* p = ledger::FindPurpose(a.purpose);
  out << "      purpose     " << a.purpose << (p ? std::string(": ") + p->description : "") << "\n";
  out << "      categories  " << Joined(a.categories) << "\n";
  if (a.detail) out << "      detail      " << *a.detail << "\n";
  out << "      policy      " << row.disclosure << "\n";
}

}  // namespace

ordered_json SubjectResultJson(const SubjectResult& r) {
  ordered_json j;
  j["holder"] = r.token.holder;
  j["period"] = r.token.period;
  j["customer"] = CustomerText(r.token.customer_id);
  j["subject"] = ledger::Base64UrlEncode(r.token.tag);
  if (!r.token_error.empty()) {
    j["verified"] = false;
    j["error"] = r.token_error;
    return j;
  }
  j["checkpoint"] = CheckpointJson(r.checkpoint.body);
  if (r.commitment) {
    const SubjectCommitment& c = *r.commitment;
    j["commitment"] = ordered_json{{"index", c.index},       {"size", c.size},         {"root", B64(c.root)},
                                   {"subjects", c.subjects}, {"accesses", c.accesses}, {"time", c.time}};
  } else {
    j["commitment"] = nullptr;
  }
  j["proof"] = ordered_json{{"end", r.proof_end}, {"siblings", r.proof_siblings}};
  j["count"] = r.indices.size();
  j["pages"] = r.pages;
  ordered_json rows = ordered_json::array();
  for (const auto& row : r.accesses) rows.push_back(RowJson(row));
  j["accesses"] = rows;
  ordered_json pend = ordered_json::array();
  for (const auto& row : r.pending) pend.push_back(RowJson(row));
  j["pending"] = pend;
  j["undisclosed"] = r.undisclosed();
  j["failures"] = r.failures;
  j["verified"] = r.verified();
  return j;
}

std::string SubjectResultText(const SubjectResult& r) {
  std::ostringstream out;
  out << "Subject token of customer " << CustomerText(r.token.customer_id) << " at " << r.token.holder
      << ", period " << r.token.period << "\n";
  out << "  subject     " << ledger::Base64UrlEncode(r.token.tag) << "\n";
  if (!r.token_error.empty()) {
    out << "  token       DOES NOT VERIFY: " << r.token_error << "\n\nNOT VERIFIED: the token is not valid for this "
        << "holder's VRF key; nothing was looked up.\n";
    return out.str();
  }
  out << "  token       VRF proof verified with the holder's key\n";
  const ledger::Checkpoint& cp = r.checkpoint.body;
  if (!r.checkpoint.note.empty())
    out << "  checkpoint  size " << cp.size << ", root " << B64(cp.root) << " (signature verified)\n";
  if (r.commitment) {
    const SubjectCommitment& c = *r.commitment;
    out << "  commitment  entry " << c.index << " of " << c.time << ": index root " << B64(c.root) << ", "
        << c.subjects << " subjects, " << c.accesses << " accesses (signed by the log key)\n";
  } else {
    out << "  commitment  none yet: no access is proven complete\n";
  }
  if (!r.proof_end.empty())
    out << "  index proof " << r.proof_end << ", " << r.proof_siblings << " siblings"
        << (r.indices.empty() ? " (the subject is not in the index)" : "") << "\n";
  out << "\n";
  uint64_t covered = r.commitment ? r.commitment->size : 0;
  out << "Accesses: " << r.accesses.size();
  if (r.commitment) out << " (the complete list up to entry " << covered << ")";
  out << "\n";
  size_t n = 0;
  for (const auto& row : r.accesses) RowText(out, ++n, row);
  if (!r.pending.empty()) {
    out << "\nPending: " << r.pending.size()
        << " more in the log after the commitment (proven included; not yet proven complete)\n";
    for (const auto& row : r.pending) RowText(out, ++n, row);
  }
  if (!r.failures.empty()) {
    out << "\nFailures: " << r.failures.size() << "\n";
    for (const auto& f : r.failures) out << "  - " << f << "\n";
    out << "\nNOT VERIFIED: the log's answer does not prove the list of accesses.\n";
  } else if (r.undisclosed()) {
    out << "\nVERIFIED, but " << r.undisclosed() << " access" << (r.undisclosed() == 1 ? " was" : "es were")
        << " NOT DISCLOSED by the accessor's policy.\n";
  } else {
    out << "\nVERIFIED: " << r.accesses.size() << " access" << (r.accesses.size() == 1 ? "" : "es")
        << (r.commitment ? ", the complete list up to entry " + std::to_string(covered) : "")
        << (r.pending.empty() ? "" : ", plus " + std::to_string(r.pending.size()) + " pending")
        << "; every one disclosed.\n";
  }
  return out.str();
}

// --- The command -----------------------------------------------------------------

namespace {

constexpr char kSubjectHelp[] = R"(Usage: ledger-verify subject --log URL --log-key VKEY --holder-key VRFKEY
                             (--token TOKEN ... | --token-file FILE) [--page-size N]
                             [--witness WKEY ... [--quorum K]] [--json]

A customer's check of who accessed their data, trusting nothing the log
says. For each subject token (ledger-subject-v1:..., from the data holder):
  - the token's VRF proof must verify with the holder's VRF public key, and
    its tag must be the proof's output (so the tag really is the customer's);
  - GET /v1/subjects/<tag> is fetched page by page, and every answer is
    verified (SPEC.md §14): the checkpoint's signature (and witness quorum);
    the latest index commitment's inclusion proof, that it is an index entry
    signed by the log key, covering the entries below its own index; every
    listed access entry's inclusion proof, kind, subject tag and index; the
    indices strictly increasing and below the commitment; the subject's value
    recomputed from the indices against the index proof and the commitment's
    root (membership, or non-membership for a customer with no accesses), so
    the list is complete up to the commitment; the policy each access names:
    its inclusion proof, holder and accessor, and whether it discloses the
    access's purpose and categories;
  - accesses logged after the commitment are listed as pending (proven in
    the log, not yet proven complete).
Prints each access: when, who (accessor and actor), purpose in words,
categories, and whether the accessor's policy disclosed it.

Options:
  --log URL            the log's base URL (a mirror directory has no subject index)
  --log-key VKEY       the log's verifier key, or @FILE (e.g. @DATA/log.vkey)
  --holder-key VRFKEY  the holder's VRF public key (base64url), or @FILE: a VRF
                       key file ({"type":"ecvrf",...,"public_key":...}) or a file
                       holding the base64url key
  --token TOKEN        a subject token; repeat for several periods
  --token-file FILE    subject tokens, one per line ("-": stdin; blank lines and
                       lines starting with # are skipped)
  --page-size N        entries per request, 1 to 1000 [1000]
)" LEDGER_VERIFY_WITNESS_HELP R"(  --json               {"tokens": [{"holder", "period", "customer", "subject",
                        "checkpoint", "commitment", "proof", "count", "pages",
                        "accesses": [...], "pending": [...], "undisclosed",
                        "failures", "verified"}], "verified"}
  --help               show this help
Exit status: 0 every token verified and every access was disclosed; 1 a token
or the log's answer does not verify, or an access was not disclosed; 2 usage
or I/O error (a malformed token or key, a log that cannot be reached).
)";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
  return s.substr(i);
}

// LoadHolderKey reads --holder-key: a base64url VRF public key, or @FILE /
// a path to a VRF key file or a file holding the key.
ledger::StatusOr<Bytes> LoadHolderKey(const std::string& value) {
  if (value.empty()) return Status::InvalidArgument("--holder-key is empty");
  std::string path;
  if (value[0] == '@') {
    path = value.substr(1);
  } else {
    auto raw = ledger::Base64UrlDecode(value);
    if (raw.ok() && raw->size() == ledger::kVrfPublicKeySize) return *raw;
    struct stat st;
    if (::stat(value.c_str(), &st) != 0)
      return Status::InvalidArgument("--holder-key: not a base64url 32-byte VRF public key nor a file: " + value);
    path = value;
  }
  auto text = ReadWholeFile(path);
  if (!text.ok()) return Status::InvalidArgument("--holder-key: cannot read " + path + ": " + text.status().message());
  json j = json::parse(*text, nullptr, false);
  std::string key;
  if (j.is_object()) {
    std::string type;
    if (!GetString(j, "public_key", &key) || (GetString(j, "type", &type) && type != "ecvrf"))
      return Status::InvalidArgument("--holder-key " + path + ": not an ecvrf key file with a public_key");
  } else {
    key = Trim(*text);
  }
  auto raw = ledger::Base64UrlDecode(key);
  if (!raw.ok() || raw->size() != ledger::kVrfPublicKeySize)
    return Status::InvalidArgument("--holder-key " + path + ": not a base64url 32-byte VRF public key");
  return *raw;
}

int RunSubject(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  auto holder_key = LoadHolderKey(args.Get("--holder-key"));
  if (!holder_key.ok()) return ExitForStatus(holder_key.status());
  bool as_json = args.Has("--json");
  uint64_t page_size = 1000;
  if (args.Has("--page-size")) {
    auto n = ParseCount("--page-size", args.Get("--page-size"), 1, 1000);
    if (!n.ok()) return UsageError(n.status().message());
    page_size = *n;
  }
  std::vector<std::string> texts = args.GetAll("--token");
  if (args.Has("--token-file")) {
    auto text = ReadWholeFile(args.Get("--token-file"));
    if (!text.ok()) return IoError("--token-file: " + text.status().message());
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      line = Trim(line);
      if (line.empty() || line[0] == '#') continue;
      texts.push_back(line);
    }
  }
  if (texts.empty()) return UsageError("give --token TOKEN or --token-file FILE");
  std::vector<SubjectResult> results;
  for (const std::string& t : texts) {
    auto token = ledger::ParseSubjectToken(Trim(t));
    if (!token.ok()) return UsageError("malformed subject token: " + token.status().message());
    SubjectResult r;
    r.token = *token;
    results.push_back(std::move(r));
  }
  auto fetcher = Fetcher::Open(args.Get("--log"));
  if (!fetcher.ok()) return UsageError(fetcher.status().message());
  if ((*fetcher)->is_directory())
    return UsageError("--log must be the log's URL: a mirror directory has no subject index");

  for (SubjectResult& r : results) {
    Status s = ledger::VerifySubjectToken(r.token, *holder_key);
    if (s.IsInvalidArgument() && s.message().find("VRF public key") != std::string::npos)
      return UsageError("--holder-key: " + s.message());
    if (!s.ok()) {
      r.token_error = s.message();
      continue;
    }
    Status looked = LookupSubject(**fetcher, *key, *witnesses, page_size, &r);
    if (!looked.ok()) return IoError(looked.message());
  }

  bool all = true;
  for (const auto& r : results) all = all && r.verified() && r.undisclosed() == 0;
  if (as_json) {
    ordered_json j;
    ordered_json tokens = ordered_json::array();
    for (const auto& r : results) tokens.push_back(SubjectResultJson(r));
    j["tokens"] = tokens;
    j["verified"] = all;
    std::cout << DumpJson(j) << std::endl;
  } else {
    for (size_t i = 0; i < results.size(); i++) std::cout << (i ? "\n" : "") << SubjectResultText(results[i]);
  }
  return all ? kExitVerified : kExitFailed;
}

}  // namespace

const Command kSubjectCommand = {
    "subject",
    "a customer's accesses from subject tokens, proven complete by the subject index",
    kSubjectHelp,
    {{"--log", true},
     {"--log-key", true},
     {"--holder-key", true},
     {"--token", true, true},
     {"--token-file", true},
     {"--page-size", true},
     kWitnessFlag,
     kQuorumFlag,
     {"--json", false}},
    {"--log", "--log-key", "--holder-key"},
    RunSubject,
};

}  // namespace verifier
