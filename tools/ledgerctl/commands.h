// The ledgerctl commands, grouped by file. Each group returns its entries
// for the command table in main.cc.
#ifndef LEDGER_TOOLS_LEDGERCTL_COMMANDS_H_
#define LEDGER_TOOLS_LEDGERCTL_COMMANDS_H_

#include <string>
#include <vector>

#include "cli.h"

namespace ledgerctl {

std::vector<Command> KeyCommands();      // keygen, holder-config
std::vector<Command> EntryCommands();    // authorize, revoke, policy publish, access sign
std::vector<Command> SubmitCommands();   // submit
std::vector<Command> SubjectCommands();  // subject-token, subject-token verify
std::vector<Command> ReceiptCommands();  // receipt check

// EmitEntry delivers a freshly signed entry as the signing commands'
// --out / --log flags ask: appended to --out, submitted to --log (printing
// "entry N" or "refused: <reason>"), printed if neither. Returns the exit
// code.
int EmitEntry(const Args& args, const ledger::Bytes& entry);

}  // namespace ledgerctl

#endif  // LEDGER_TOOLS_LEDGERCTL_COMMANDS_H_
