// Command-line flags of the servers (ledgerd, ledger-gate, ledger-witness).
// Only the mechanics are shared; each program keeps its own table of flags.
#ifndef LEDGER_CLI_FLAGS_H_
#define LEDGER_CLI_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace ledger_cli {

// Die prints "<program>: <msg>" to stderr and exits with |code|.
[[noreturn]] void Die(const std::string& program, const std::string& msg, int code = 1);

// FlagReader reads "--name value" and "--name=value" flags, and |switches|
// that take no value (ledgerd's "--demo"):
//
//   ledger_cli::FlagReader flags("ledgerd", kUsage, argc, argv, {"--demo"});
//   std::string name, value;
//   while (flags.Next(&name, &value)) {
//     if (name == "--threads") threads = flags.ParseNumber(name, value, 1, 1024);
//     else flags.Unknown(name);
//   }
//
// A malformed command line is reported as "<program>: <why>" with exit
// status 2; --help or -h prints |usage| and exits 0.
class FlagReader {
 public:
  FlagReader(std::string program, const char* usage, int argc, char** argv, std::vector<std::string> switches = {});

  // Next sets *name to the next flag ("--data") and *value to its value
  // (empty for a switch); false once every argument is read.
  bool Next(std::string* name, std::string* value);

  // ParseNumber returns |value| as a whole number from |min| to |max|, or
  // exits 2 naming |flag|.
  uint64_t ParseNumber(const std::string& flag, const std::string& value, uint64_t min, uint64_t max) const;

  // ParseListen splits the --listen value "HOST:PORT" (port 0 to 65535;
  // "[::1]:8080" gives the host "::1"), or exits 2.
  void ParseListen(const std::string& value, std::string* host, int* port) const;

  // Unknown exits 2 for a flag the program does not have.
  [[noreturn]] void Unknown(const std::string& flag) const;

 private:
  [[noreturn]] void Fail(const std::string& msg) const;
  bool IsSwitch(const std::string& arg) const;

  std::string program_;
  const char* usage_;
  int argc_;
  char** argv_;
  std::vector<std::string> switches_;
  int next_ = 1;  // argv_[0] is the program
};

}  // namespace ledger_cli

#endif  // LEDGER_CLI_FLAGS_H_
