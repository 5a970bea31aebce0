// GET /v1/subjects/<tag> (SPEC.md §14): a subject tag's access entries, the
// index proof that the list is complete up to the latest index commitment,
// the commitment, the policies in force at each listed access, and every
// inclusion proof, all from one read snapshot and against its checkpoint.
//
// Thread-safety: the handler runs on any worker thread with its own
// snapshot; SubjectAnswer is pure over the reader it is given.
#ifndef LEDGER_SERVER_SUBJECTS_API_H_
#define LEDGER_SERVER_SUBJECTS_API_H_

#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "ledger/store.h"
#include "ledger/subject_index.h"
#include "ledger/subject_tree.h"

namespace ledgerd {

constexpr uint64_t kSubjectDefaultLimit = 100;
constexpr uint64_t kSubjectMaxLimit = 1000;
constexpr uint64_t kSubjectMaxPending = 1000;

// SubjectAnswer builds the response body for |tag| from |reader| and
// |tree|, the subject tree of the reader's latest commitment: entries
// indices[offset, offset + limit). Corruption if the tree does not match
// the latest commitment.
ledger::StatusOr<nlohmann::json> SubjectAnswer(const ledger::LogReader& reader, ledger::SubjectNodeStore& tree,
                                               const ledger::SubjectTag& tag, uint64_t offset, uint64_t limit);

// RegisterSubjects installs GET /v1/subjects/<tag> over |store| and |tree|
// (not owned). With no |tree| (opaque mode: no subject index) the route
// answers 404.
void RegisterSubjects(httplib::Server& server, ledger::Store* store, ledger::SubjectTreeStore* tree);

}  // namespace ledgerd

#endif  // LEDGER_SERVER_SUBJECTS_API_H_
