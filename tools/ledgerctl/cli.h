// Command-line plumbing shared by the ledgerctl commands: the command table,
// strict flag parsing, exit codes, and helpers that turn flag values into
// keys, names and entries.
//
// Exit codes: 0 success; 1 failure or refusal (the log, the gate or a check
// said no, a file or the network failed); 2 usage error (unknown flag,
// missing or malformed value). Results, including refusals, go to stdout;
// errors go to stderr as one line "ledgerctl <command>: <message>".
//
// Thread-safety: single-threaded tool; the current command's name is
// process-global.
#ifndef LEDGER_TOOLS_LEDGERCTL_CLI_H_
#define LEDGER_TOOLS_LEDGERCTL_CLI_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/status.h"

namespace ledgerctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct Command;

// Args holds the parsed flags and positional arguments of one command.
class Args {
 public:
  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  // Get returns the value of a single-valued flag, or |fallback|.
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
  // All returns every value of a repeatable flag, in order.
  std::vector<std::string> All(const std::string& flag) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend int ParseArgs(const Command&, int, char**, Args*);
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

struct FlagDef {
  enum Kind { kValue, kRepeated, kSwitch };
  const char* name;  // "--out"
  Kind kind;
};

struct Command {
  const char* name;     // "policy publish"
  const char* summary;  // one line for `ledgerctl --help`
  const char* help;     // full text for `ledgerctl <name> --help`
  std::vector<FlagDef> flags;
  std::vector<const char*> required;  // flags that must be given
  size_t min_positional;
  size_t max_positional;
  int (*run)(const Args&);
};

// ParseArgs parses argv[0..argc) (the words after the command name) against
// |cmd|. Accepts "--flag value", "--flag=value", switches, "--" and
// positional arguments (a lone "-" is positional). Returns -1 to go on, 0
// after printing the help for "--help", or kExitUsage after printing why.
int ParseArgs(const Command& cmd, int argc, char** argv, Args* out);

// SetCommandName names the running command in error messages.
void SetCommandName(const std::string& name);

// Fail prints "ledgerctl <command>: <message>" to stderr and returns 1.
int Fail(const std::string& message);
// UsageError prints the message and a pointer to --help; returns 2.
int UsageError(const std::string& message);
// FailStatus fails with |s|'s message; InvalidArgument is a usage error
// when |usage_if_invalid| is set.
int FailStatus(const ledger::Status& s, const std::string& context = "", bool usage_if_invalid = false);

// NowRfc3339 returns the current UTC time as "YYYY-MM-DDTHH:MM:SSZ".
std::string NowRfc3339();
// RandomRequestId returns 128 random bits in lowercase hex.
std::string RandomRequestId();

// ParseCategories splits "C1,C2" into codes; InvalidArgument on an empty
// code, an unknown code or a repeated one.
ledger::StatusOr<std::set<std::string>> ParseCategories(const std::string& text);

// DecodePublicKey decodes a base64url 32-byte public key given on the
// command line. InvalidArgument naming |flag| otherwise.
ledger::StatusOr<ledger::Bytes> DecodePublicKey(const std::string& text, const std::string& flag);

// PublicKeyFromFile returns the public key of a key file of |type|
// ("ed25519" or "ecvrf"). A file with a seed is loaded in full (mode 0600
// and the seed must match); a file with only {"type","public_key"} is
// accepted as a public key file.
ledger::StatusOr<ledger::Bytes> PublicKeyFromFile(const std::string& path, const std::string& type);

// PublicKeyArg accepts a key file path (if such a file exists) or a base64url
// public key.
ledger::StatusOr<ledger::Bytes> PublicKeyArg(const std::string& value, const std::string& type,
                                             const std::string& flag);

// LoadLogKey accepts a verifier key string ("<name>+<hash>+<base64>") or the
// path of a file holding one (such as DIR/log.vkey).
ledger::StatusOr<ledger::NoteVerifier> LoadLogKey(const std::string& value);

// ReadInput reads a whole file, or stdin for "-".
ledger::StatusOr<std::string> ReadInput(const std::string& path);

// AppendText appends |data| (whole lines) to |path|, creating it with mode
// 0644 if missing, and flushes it to disk (fsync).
ledger::Status AppendText(const std::string& path, const std::string& data);

}  // namespace ledgerctl

#endif  // LEDGER_TOOLS_LEDGERCTL_CLI_H_
