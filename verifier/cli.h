// Command-line plumbing shared by the ledger-verify commands: the command
// table, strict flag parsing, exit codes, the common --log / --log-key flags,
// JSON output helpers and durable file writes.
//
// Exit codes: 0 verified; 1 verification failed or violations found; 2 usage
// or I/O error (including a log that cannot be reached). Reports go to
// stdout (human text, or one JSON document with --json); errors go to
// stderr as one line "ledger-verify <command>: <message>".
//
// Thread-safety: flag parsing and error reporting run on the main thread;
// WriteFileAtomic and ReadWholeFile are safe on different paths from any
// thread.
#ifndef LEDGER_VERIFIER_CLI_H_
#define LEDGER_VERIFIER_CLI_H_

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/status.h"

namespace verifier {

constexpr int kExitVerified = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Reports keep their fields in the documented order.
using ordered_json = nlohmann::ordered_json;

struct Command;

// Args holds the parsed flags of one command.
class Args {
 public:
  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  // Get returns the flag's value (the last one of a repeatable flag).
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
  // GetAll returns every value of a repeatable flag, in order.
  std::vector<std::string> GetAll(const std::string& flag) const;

 private:
  friend int ParseArgs(const Command&, int, char**, Args*);
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_;
};

struct FlagDef {
  const char* name;         // "--out"
  bool takes_value;         // false: a switch such as --json
  bool repeatable = false;  // may be given several times (--witness)
};

struct Command {
  const char* name;     // "audit"
  const char* summary;  // one line for `ledger-verify --help`
  const char* help;     // full text for `ledger-verify <name> --help`
  std::vector<FlagDef> flags;
  std::vector<const char*> required;
  int (*run)(const Args&);
};

// ParseArgs parses the words after the command name. Accepts "--flag value"
// and "--flag=value"; every flag at most once; no positional arguments.
// Returns -1 to go on, 0 after printing the help, kExitUsage after printing
// why the command line is wrong.
int ParseArgs(const Command& cmd, int argc, char** argv, Args* out);

// SetCommandName names the running command in error messages.
void SetCommandName(const std::string& name);
// UsageError prints "ledger-verify <cmd>: <message> (see --help)"; returns 2.
int UsageError(const std::string& message);
// IoError prints the message; returns 2 (the check could not be made).
int IoError(const std::string& message);
// Failed prints the message to stderr; returns 1 (the check was made and
// failed).
int Failed(const std::string& message);
// ExitForStatus maps a Status from a fetch or a file to an exit code:
// InvalidArgument from user input is a usage error (2), anything else an
// I/O error (2), after printing it with |context|.
int ExitForStatus(const ledger::Status& s, const std::string& context = "");

// LoadLogKey accepts the verifier key string, "@FILE" to read it from a
// file (such as DATA/log.vkey), or a path to such a file.
ledger::StatusOr<ledger::NoteVerifier> LoadLogKey(const std::string& value);

// WitnessPolicy is what --witness KEY (repeatable) and --quorum K ask of
// every checkpoint a command opens: valid cosignature/v1 cosignatures from
// at least |quorum| distinct listed witnesses (ledger::OpenWitnessedCheckpoint).
// No --witness: quorum 0, the log's signature alone. --witness without
// --quorum: every distinct listed witness must cosign.
struct WitnessPolicy {
  std::vector<ledger::CosignatureVerifier> witnesses;  // as listed
  size_t distinct = 0;  // distinct (name, key ID) among |witnesses|
  size_t quorum = 0;
  // active: a checkpoint must satisfy more than the log's signature (or a
  // listed witness's line must at least verify).
  bool active() const { return !witnesses.empty() || quorum > 0; }
  // DistinctKeys returns the distinct listed witnesses' verifier key
  // strings, sorted (a canonical form for the audit state).
  std::vector<std::string> DistinctKeys() const;
};

// The --witness and --quorum flags, accepted by every command that opens a
// checkpoint, and their lines for the commands' --help texts.
inline const FlagDef kWitnessFlag{"--witness", true, true};
inline const FlagDef kQuorumFlag{"--quorum", true};
#define LEDGER_VERIFY_WITNESS_HELP                                                        \
  "  --witness WKEY       a witness's cosignature/v1 verifier key\n"                      \
  "                       \"<name>+<hash>+<base64>\", or @FILE (e.g. ledger-witness's\n" \
  "                       STATE/witness.vkey); repeat for several witnesses\n"            \
  "  --quorum K           valid cosignatures needed from distinct listed witnesses\n"     \
  "                       [every listed witness; 0 without --witness]; more than\n"      \
  "                       the distinct witnesses listed is a usage error\n"

// LoadWitnessKey accepts a cosignature/v1 verifier key string
// "<name>+<hash>+<base64(0x04||pub)>", "@FILE" to read it from a file (such
// as a witness's STATE/witness.vkey), or a path to such a file.
ledger::StatusOr<ledger::CosignatureVerifier> LoadWitnessKey(const std::string& value);

// LoadWitnessPolicy reads --witness (repeatable) and --quorum. InvalidArgument
// (a usage error) for a malformed key, two different keys with one name and
// key ID, or a quorum larger than the number of distinct witnesses.
ledger::StatusOr<WitnessPolicy> LoadWitnessPolicy(const Args& args);

// ReadWholeFile reads a file, or stdin for "-". NotFound / IOError.
ledger::StatusOr<std::string> ReadWholeFile(const std::string& path);

// WriteFileAtomic durably replaces |path| with |data|: a temporary file in
// the same directory, fsync, rename, fsync of the directory. Readers see the
// old or the new file, never a torn one.
ledger::Status WriteFileAtomic(const std::string& path, ledger::ByteView data, unsigned mode = 0644);
// FsyncDirectory makes renames in |dir| durable.
ledger::Status FsyncDirectory(const std::string& dir);
// MakeDirs creates |dir| and its parents (mode 0755) if missing.
ledger::Status MakeDirs(const std::string& dir);

// ParseCount parses a whole number within [min, max] for |flag|.
ledger::StatusOr<uint64_t> ParseCount(const std::string& flag, const std::string& value, uint64_t min,
                                      uint64_t max);

// DumpJson renders a report; invalid UTF-8 from a hostile log is replaced
// rather than thrown on.
std::string DumpJson(const ordered_json& j, int indent = -1);

// JSON forms shared by the reports.
ordered_json CheckpointJson(const ledger::Checkpoint& cp);
ordered_json HashesJson(const std::vector<ledger::Hash>& hashes);

// EntryFromFile reads an entry: the whole file, less one final newline
// (entries are written one per line, as ledgerctl prints them).
ledger::StatusOr<ledger::Bytes> EntryFromFile(const std::string& path);

// ProgressBar draws "[####....] 42% 123456/300000 entries 45.1k/s ETA 0:04"
// on stderr when stderr is a terminal, at most ten times a second, and
// nothing otherwise. Main thread only.
class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, bool enabled);
  ~ProgressBar();
  void Update(uint64_t done);
  // Finish erases the bar.
  void Finish();

 private:
  std::string label_;
  uint64_t total_;
  bool enabled_;
  bool drawn_ = false;
  int64_t start_us_;
  int64_t last_draw_us_ = 0;
};

// StderrIsTerminal tells whether progress may be drawn.
bool StderrIsTerminal();
// NowMicros returns a monotonic clock reading.
int64_t NowMicros();

}  // namespace verifier

#endif  // LEDGER_VERIFIER_CLI_H_
