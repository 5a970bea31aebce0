// LedgerModeLog writes a ledger-mode log through the library the way ledgerd
// writes it (Sequencer + RulesHook + SubjectIndexer: rules, derived state,
// subject index and log-signed commitments), minus HTTP, so that the
// benchmark data builders (build-subject-log, build-audit-log) make logs of
// millions of accesses in seconds. Not thread-safe (AppendAccesses runs its
// own threads). Every failure exits the process (bench::Die).
#ifndef LEDGER_TOOLS_BENCHMARK_LEDGER_LOG_H_
#define LEDGER_TOOLS_BENCHMARK_LEDGER_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ledger/ledger_hook.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/sequencer.h"
#include "ledger/store.h"
#include "ledger/subject_state.h"

namespace bench {

class LedgerModeLog {
 public:
  // LedgerModeLog opens a new log in |dir| (log key DIR/log.key, LMDB in
  // DIR/lmdb with a map of |map_gib| GiB; dies if DIR already holds a log)
  // and appends its set-up: holder "bench-bank" (signed by the log key), its
  // accessor "chat-banking" and that accessor's policy v1 with |purposes|.
  // The sequencer commits batches of up to |batch| entries.
  LedgerModeLog(const std::string& dir, uint64_t batch, uint64_t map_gib, std::vector<ledger::PolicyPurpose> purposes);
  ~LedgerModeLog();

  // AppendAccesses signs accesses [base, base + n) by the accessor on every
  // core, |fill(i, &record)| setting what varies (request id, subject,
  // purpose, categories; the rest is preset), then appends them in full
  // batches from 4 submitting threads, handed to the hook already parsed.
  // Returns the seconds spent signing.
  double AppendAccesses(uint64_t base, uint64_t n, const std::function<void(uint64_t, ledger::AccessRecord*)>& fill);

  // Finish waits (up to a minute) for the commitment of the last accesses,
  // stops the sequencer and writes DIR/log.vkey.
  void Finish();

  ledger::Sequencer& sequencer() { return *seq_; }
  ledger::Store& store() { return *store_; }

 private:
  std::string dir_;
  uint64_t batch_;
  std::string now_text_;
  std::unique_ptr<ledger::NoteSigner> signer_;
  std::unique_ptr<ledger::Store> store_;
  std::unique_ptr<ledger::RulesHook> hook_;
  std::unique_ptr<ledger::SubjectTreeStore> tree_;
  std::unique_ptr<ledger::SubjectIndexer> indexer_;
  std::unique_ptr<ledger::Sequencer> seq_;
  std::unique_ptr<ledger::Ed25519Signer> holder_;
  std::unique_ptr<ledger::Ed25519Signer> accessor_;
};

}  // namespace bench

#endif  // LEDGER_TOOLS_BENCHMARK_LEDGER_LOG_H_
