// `ledger-verify subject`: a customer's own check of who accessed their
// data. It verifies a subject token (the VRF proof under the holder's VRF
// key, ledger/subject.h), asks the log for the token's tag
// (GET /v1/subjects/<tag>, SPEC.md §14, page by page) and verifies, trusting
// nothing the log says:
//   - the checkpoint's signature (and witness quorum with --witness);
//   - the index commitment: its inclusion proof, that it is an `index`
//     entry signed by the log key, that its size is its own leaf index;
//   - every listed access entry: its inclusion proof, that it is an access
//     entry with this subject tag, at the listed index;
//   - the indices: strictly increasing, below the commitment's size, no
//     more than the commitment's access count;
//   - the tag's value recomputed from the indices (or its absence) against
//     the index proof and the commitment's root: the list is complete up to
//     the commitment;
//   - each access's referenced policy: its inclusion proof, that it is a
//     policy entry of the same holder and accessor logged before the access,
//     and whether it covers the access's purpose and categories (disclosed);
//   - pending accesses (after the commitment): inclusion, access kind, tag.
//
// VerifySubjectPage is the pure check of one answer (unit-tested with
// crafted answers); LookupSubject fetches every page and combines them.
//
// Thread-safety: everything here runs on the calling thread.
#ifndef LEDGER_VERIFIER_SUBJECT_H_
#define LEDGER_VERIFIER_SUBJECT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "fetcher.h"
#include "ledger/bytes.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/subject.h"
#include "ledger/subject_index.h"
#include "log_reader.h"

namespace verifier {

// SubjectAccessRow is one verified access entry of the tag.
struct SubjectAccessRow {
  uint64_t index = 0;
  ledger::Bytes entry;
  ledger::AccessRecord access;
  bool pending = false;                   // after the commitment
  std::optional<uint64_t> policy_index;   // the policy the log says was in force
  std::optional<uint64_t> policy_version;
  bool disclosed = false;
  std::string disclosure;                 // why (not) disclosed, in words
};

// SubjectCommitment is a verified index commitment entry.
struct SubjectCommitment {
  uint64_t index = 0;  // its leaf index, equal to size
  uint64_t size = 0;
  ledger::Hash root{};
  uint64_t subjects = 0;
  uint64_t accesses = 0;
  std::string time;
  ledger::Bytes entry;
};

// SubjectPage is one checked answer of GET /v1/subjects/<tag>.
struct SubjectPage {
  SignedCheckpoint checkpoint;
  std::optional<SubjectCommitment> commitment;
  std::vector<uint64_t> indices;
  std::string proof_end;  // "member", "empty" or "leaf"
  size_t proof_siblings = 0;
  uint64_t offset = 0;
  std::vector<SubjectAccessRow> entries;  // indices[offset ...], verified
  std::vector<SubjectAccessRow> pending;
  // Every check that failed, in words; empty if the page verified.
  std::vector<std::string> failures;
};

// VerifySubjectPage checks one answer |body| for |tag| asked at |offset|
// with |limit| (SPEC.md §14, "A client checks"). Verification failures go
// to page->failures; the return value is non-OK only when the checkpoint
// cannot be opened for reasons other than verification (never for a lying
// log). |holder| names the token's holder (accesses naming another holder
// are reported, not hidden).
ledger::Status VerifySubjectPage(const std::string& body, const ledger::SubjectTag& tag, uint64_t offset,
                                 uint64_t limit, const ledger::NoteVerifier& log_key, const WitnessPolicy& witnesses,
                                 SubjectPage* page);

// SubjectResult is the outcome for one token.
struct SubjectResult {
  ledger::SubjectToken token;
  std::string token_error;  // the token does not verify: nothing was looked up
  bool looked_up = false;
  SignedCheckpoint checkpoint;  // of the first page
  std::optional<SubjectCommitment> commitment;
  std::vector<uint64_t> indices;
  std::string proof_end;
  size_t proof_siblings = 0;
  std::vector<SubjectAccessRow> accesses;  // covered by the commitment, in log order
  std::vector<SubjectAccessRow> pending;
  std::vector<std::string> failures;
  uint64_t pages = 0;

  bool verified() const { return token_error.empty() && looked_up && failures.empty(); }
  size_t undisclosed() const;
};

// LookupSubject fetches every page for |result->token.tag| (|page_size|
// entries per page) and verifies them; all pages must show the same
// commitment (the lookup restarts, at most 3 times, if a new commitment
// lands between pages). Returns non-OK only for I/O failures (the log
// cannot be reached, answers 404 or 5xx).
ledger::Status LookupSubject(Fetcher& fetcher, const ledger::NoteVerifier& log_key, const WitnessPolicy& witnesses,
                             uint64_t page_size, SubjectResult* result);

// SubjectResultJson / SubjectResultText render one token's result.
ordered_json SubjectResultJson(const SubjectResult& r);
std::string SubjectResultText(const SubjectResult& r);

// kSubjectCommand is `ledger-verify subject`.
extern const Command kSubjectCommand;

}  // namespace verifier

#endif  // LEDGER_VERIFIER_SUBJECT_H_
