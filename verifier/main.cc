// ledger-verify: the standalone verifier of the Access Ledger. It links only
// the pure ledger library, an HTTP client and JSON, and trusts nothing the
// log says without a proof: see `ledger-verify --help` and verifier/README.md.
#include <malloc.h>
#include <sodium.h>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"

namespace verifier {
namespace {

const std::vector<const Command*>& AllCommands() {
  static const std::vector<const Command*> all = {&kCheckpointCommand, &kInclusionCommand, &kConsistencyCommand,
                                                  &kReceiptCommand,    &kAuditCommand,     &kMirrorCommand,
                                                  &kReconcileCommand,  &kSubjectCommand};
  return all;
}

void PrintUsage(std::ostream& out) {
  out << "Usage: ledger-verify <command> --log URL|DIR --log-key VKEY [options]\n\n"
         "The Access Ledger's standalone verifier: it checks signatures, proofs and\n"
         "the whole log's rules itself, trusting nothing the log operator says.\n\n"
         "Commands:\n";
  for (const Command* c : AllCommands()) {
    std::string name = c->name;
    out << "  " << name << std::string(name.size() < 14 ? 14 - name.size() : 1, ' ') << c->summary << "\n";
  }
  out << "\nCommon options:\n"
         "  --log URL|DIR   the log's base URL (http://host:port[/prefix]) or a mirror\n"
         "                  directory in C2SP tlog-tiles layout (DIR/checkpoint, DIR/tile/...)\n"
         "  --log-key VKEY  the log's verifier key \"<name>+<hash>+<base64>\", or @FILE\n"
         "                  to read it from a file such as DATA/log.vkey\n"
         "  --witness WKEY  a witness's cosignature/v1 verifier key, or @FILE (such as\n"
         "                  ledger-witness's STATE/witness.vkey); repeatable\n"
         "  --quorum K      every checkpoint used needs valid cosignatures from K distinct\n"
         "                  listed witnesses [all listed; 0 without --witness]\n"
         "  --json          machine-readable output\n"
         "  --help          a command's options\n"
         "\nExit status: 0 verified, 1 verification failed or violations found,\n"
         "2 usage or I/O error.\n";
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(std::cout);
    return kExitVerified;
  }
  for (const Command* c : AllCommands()) {
    if (name != c->name) continue;
    SetCommandName(c->name);
    Args args;
    int rc = ParseArgs(*c, argc - 2, argv + 2, &args);
    if (rc >= 0) return rc;
    return c->run(args);
  }
  std::cerr << "ledger-verify: unknown command \"" << name << "\" (see ledger-verify --help)" << std::endl;
  return kExitUsage;
}

}  // namespace
}  // namespace verifier

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // An audit streams ~150 KB entry bundles through a few threads: with
  // glibc's defaults each one was mmap'ed or carved from a heap that was
  // trimmed again soon after, so its pages were faulted in afresh every time
  // (thousands of page faults per 30,000 entries). A fixed mmap threshold and
  // a high trim threshold keep freed bundle memory for the next bundle; the
  // peak stays the same, as what is in flight is bounded by the window.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  if (sodium_init() < 0) {
    std::cerr << "ledger-verify: libsodium failed to initialise" << std::endl;
    return verifier::kExitUsage;
  }
  return verifier::Main(argc, argv);
}
