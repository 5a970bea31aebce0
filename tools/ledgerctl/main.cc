// ledgerctl: keys, signed entries, submission, subject tokens and receipt
// checks for the Access Ledger. See `ledgerctl --help` and cli.h for the
// conventions every command follows.
#include <sodium.h>

#include <csignal>
#include <iostream>
#include <string>

#include "cli.h"
#include "commands.h"

namespace ledgerctl {
namespace {

std::vector<Command> AllCommands() {
  std::vector<Command> all;
  for (auto group : {KeyCommands, EntryCommands, SubmitCommands, SubjectCommands, ReceiptCommands})
    for (Command& c : group()) all.push_back(std::move(c));
  return all;
}

void PrintUsage(std::ostream& out, const std::vector<Command>& commands) {
  out << "Usage: ledgerctl <command> [options]\n\n"
         "Keys, signed entries, submission, subject tokens and receipt checks for the\n"
         "Access Ledger (SPEC.md). Commands:\n";
  for (const Command& c : commands) {
    if (!c.summary) continue;
    std::string name = c.name;
    out << "  " << name << std::string(name.size() < 22 ? 22 - name.size() : 1, ' ') << c.summary << "\n";
  }
  out << "\nRun \"ledgerctl <command> --help\" for a command's options.\n"
         "Exit status: 0 success, 1 failure or refusal, 2 usage error.\n"
         "Results (including refusals) go to stdout, errors to stderr. Key files\n"
         "are JSON with mode 0600; ledgerctl never prints a secret.\n";
}

int Main(int argc, char** argv) {
  std::vector<Command> commands = AllCommands();
  if (argc < 2) {
    PrintUsage(std::cerr, commands);
    return kExitUsage;
  }
  std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    PrintUsage(std::cout, commands);
    return kExitOk;
  }
  // Two-word commands ("policy publish") take precedence over groups.
  const Command* cmd = nullptr;
  int consumed = 1;
  if (argc >= 3) {
    std::string two = first + " " + argv[2];
    for (const Command& c : commands)
      if (two == c.name) {
        cmd = &c;
        consumed = 2;
      }
  }
  if (!cmd) {
    for (const Command& c : commands)
      if (first == c.name) cmd = &c;
  }
  if (!cmd) {
    std::cerr << "ledgerctl: unknown command \"" << first << "\" (see ledgerctl --help)" << std::endl;
    return kExitUsage;
  }
  SetCommandName(cmd->name);
  Args args;
  int rc = ParseArgs(*cmd, argc - 1 - consumed, argv + 1 + consumed, &args);
  if (rc >= 0) return rc;
  return cmd->run(args);
}

}  // namespace
}  // namespace ledgerctl

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) {
    std::cerr << "ledgerctl: libsodium failed to initialise" << std::endl;
    return 1;
  }
  return ledgerctl::Main(argc, argv);
}
