// LogClient: submits entries to ledgerd's POST /v1/entries and turns the
// answers into verified receipts.
//
// Every receipt is checked before it is reported: the entry's leaf hash, the
// RFC 9162 inclusion proof against the returned checkpoint, and, when the
// log's verifier key is known, the checkpoint's signature and origin.
// Submissions are retried on connection failures and 503 answers, which is
// safe because the log answers a repeated entry with its original index.
//
// Thread-safety: a LogClient is used by one thread at a time.
#ifndef LEDGER_TOOLS_LEDGERCTL_CLIENT_H_
#define LEDGER_TOOLS_LEDGERCTL_CLIENT_H_

#include <httplib.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/status.h"

namespace ledgerctl {

// EntryOutcome is what became of one submitted entry.
struct EntryOutcome {
  bool accepted = false;
  std::string refusal;     // why the log (or the local pre-check) refused it
  uint64_t index = 0;      // accepted: the entry's index
  bool duplicate = false;  // accepted: the log already held it
  ledger::Hash leaf_hash{};
  std::string tlog_proof;  // accepted: C2SP tlog-proof text, extra = entry
};

class LogClient {
 public:
  // Connect prepares a client for |url| ("http://host:port[/prefix]" or
  // https). InvalidArgument for a malformed URL. Does not connect yet.
  static ledger::StatusOr<std::unique_ptr<LogClient>> Connect(const std::string& url);

  // Submit posts |entries| (1 to 1000) and returns one outcome per entry, in
  // order. Entries the log refuses are outcomes, not errors. A batch the
  // log rejects as a whole is split until each refusal is pinned to its
  // entry. Unavailable for network failures and 5xx answers (after
  // retries), Corruption for an answer that is malformed or whose receipts
  // do not verify (with |log_key|, also a checkpoint that is not signed by
  // it).
  ledger::StatusOr<std::vector<EntryOutcome>> Submit(const std::vector<ledger::Bytes>& entries,
                                                     const std::optional<ledger::NoteVerifier>& log_key);

  const std::string& url() const { return url_; }

 private:
  struct Response {
    int status = 0;
    std::string body;
  };

  LogClient() = default;
  ledger::StatusOr<Response> Send(const std::string& method, const std::string& path, const std::string& body);
  ledger::Status SubmitSome(const std::vector<ledger::Bytes>& entries, const std::vector<size_t>& which,
                            const std::optional<ledger::NoteVerifier>& log_key, std::vector<EntryOutcome>* out);
  ledger::StatusOr<ledger::Bytes> GetEntry(uint64_t index);

  std::string url_;
  std::string prefix_;  // path prefix without a trailing '/'
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace ledgerctl

#endif  // LEDGER_TOOLS_LEDGERCTL_CLIENT_H_
