// Start-up work of ledgerd in ledger mode: appending holder entries from the
// operator's holders file, and the demo configuration tools/run starts with.
//
// Thread-safety: called from main before the HTTP server starts.
#ifndef LEDGER_SERVER_SETUP_H_
#define LEDGER_SERVER_SETUP_H_

#include <string>

#include "ledger/note.h"
#include "ledger/sequencer.h"
#include "ledger/status.h"
#include "ledger/store.h"

namespace ledgerd {

// SyncHolders reads the holders file (SPEC.md §11) and appends a holder
// entry, signed by the log key, for every holder that is new or whose keys
// changed; each is printed. Holders in the log but absent from the file are
// reported (the log is append-only; nothing is removed).
ledger::Status SyncHolders(const std::string& path, ledger::Store& store, ledger::Sequencer& sequencer,
                           const ledger::NoteSigner& log_key);

// PrepareDemo creates, on first use, the demo keys and holders file under
// DIR/demo and returns the holders file's path.
ledger::StatusOr<std::string> PrepareDemo(const std::string& data_dir);

// PopulateDemo appends, once, the demo accessor's authorisation, its policy
// and a handful of accesses, and prints what to try next.
ledger::Status PopulateDemo(const std::string& data_dir, ledger::Store& store, ledger::Sequencer& sequencer,
                            const std::string& base_url, const std::string& vkey);

}  // namespace ledgerd

#endif  // LEDGER_SERVER_SETUP_H_
