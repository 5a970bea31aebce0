#include "cli/flags.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "ledger/bytes.h"

namespace ledger_cli {

void Die(const std::string& program, const std::string& msg, int code) {
  std::cerr << program << ": " << msg << "\n";
  std::exit(code);
}

FlagReader::FlagReader(std::string program, const char* usage, int argc, char** argv,
                       std::vector<std::string> switches)
    : program_(std::move(program)), usage_(usage), argc_(argc), argv_(argv), switches_(std::move(switches)) {}

bool FlagReader::Next(std::string* name, std::string* value) {
  if (next_ >= argc_) return false;
  std::string arg = argv_[next_++];
  if (arg == "--help" || arg == "-h") {
    std::cout << usage_;
    std::exit(0);
  }
  value->clear();
  if (IsSwitch(arg)) {
    *name = arg;
    return true;
  }
  if (arg.rfind("--", 0) != 0) Fail("unexpected argument \"" + arg + "\" (see --help)");
  size_t eq = arg.find('=');
  if (eq != std::string::npos) {
    *name = arg.substr(0, eq);
    *value = arg.substr(eq + 1);
    // "--demo=1" is no flag of the program: a switch takes no value.
    if (IsSwitch(*name)) Unknown(*name);
    return true;
  }
  if (next_ >= argc_) Fail("flag " + arg + " needs a value (see --help)");
  *name = arg;
  *value = argv_[next_++];
  return true;
}

uint64_t FlagReader::ParseNumber(const std::string& flag, const std::string& value, uint64_t min,
                                 uint64_t max) const {
  auto number = ledger::ParseUint64(value);
  if (!number.ok() || *number < min || *number > max)
    Fail(flag + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", got \"" +
         value + "\"");
  return *number;
}

void FlagReader::ParseListen(const std::string& value, std::string* host, int* port) const {
  size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) Fail("--listen must be HOST:PORT, got \"" + value + "\"");
  *host = value.substr(0, colon);
  // The brackets only keep an IPv6 host's colons apart from the port's.
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  *port = static_cast<int>(ParseNumber("--listen port", value.substr(colon + 1), 0, 65535));
}

void FlagReader::Unknown(const std::string& flag) const { Fail("unknown flag " + flag + " (see --help)"); }

void FlagReader::Fail(const std::string& msg) const { Die(program_, msg, 2); }

bool FlagReader::IsSwitch(const std::string& arg) const {
  return std::find(switches_.begin(), switches_.end(), arg) != switches_.end();
}

}  // namespace ledger_cli
