// The ledger-verify commands, one Command each (see cli.h for the
// conventions and exit codes every command follows):
//   checkpoint, inclusion, consistency, receipt   proof_commands.cc
//   audit                                          audit.cc
//   mirror                                         mirror.cc
//   reconcile                                      reconcile.cc
//   subject                                        subject.cc
//
// Thread-safety: commands run on the main thread (some start workers).
#ifndef LEDGER_VERIFIER_COMMANDS_H_
#define LEDGER_VERIFIER_COMMANDS_H_

#include "cli.h"

namespace verifier {

extern const Command kCheckpointCommand;
extern const Command kInclusionCommand;
extern const Command kConsistencyCommand;
extern const Command kReceiptCommand;
extern const Command kAuditCommand;
extern const Command kMirrorCommand;
extern const Command kReconcileCommand;
extern const Command kSubjectCommand;

}  // namespace verifier

#endif  // LEDGER_VERIFIER_COMMANDS_H_
