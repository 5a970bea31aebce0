#include "cli.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "ledger/files.h"

namespace ledgerctl {
namespace {

std::string g_command = "ledgerctl";

const FlagDef* FindFlag(const Command& cmd, const std::string& name) {
  for (const auto& f : cmd.flags)
    if (name == f.name) return &f;
  return nullptr;
}

// Trim removes leading and trailing ASCII whitespace.
std::string Trim(std::string s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.back())) s.pop_back();
  size_t i = 0;
  while (i < s.size() && space(s[i])) i++;
  return s.substr(i);
}

}  // namespace

std::string Args::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  if (it == values_.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> Args::All(const std::string& flag) const {
  auto it = values_.find(flag);
  if (it == values_.end()) return {};
  return it->second;
}

int ParseArgs(const Command& cmd, int argc, char** argv, Args* out) {
  bool flags_done = false;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (flags_done || a == "-" || a.rfind("--", 0) != 0) {
      if (!flags_done && a.size() > 1 && a[0] == '-' && a != "-")
        return UsageError("unknown flag " + a);
      out->positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      std::cout << cmd.help;
      return 0;
    }
    std::string value;
    bool has_inline = false;
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_inline = true;
    }
    const FlagDef* def = FindFlag(cmd, a);
    if (!def) return UsageError("unknown flag " + a);
    if (def->kind == FlagDef::kSwitch) {
      if (has_inline) return UsageError("flag " + a + " takes no value");
      if (out->Has(a)) return UsageError("flag " + a + " given twice");
      out->values_[a].push_back("");
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= argc) return UsageError("flag " + a + " needs a value");
      value = argv[++i];
    }
    if (def->kind == FlagDef::kValue && out->Has(a)) return UsageError("flag " + a + " given twice");
    out->values_[a].push_back(value);
  }
  for (const char* r : cmd.required)
    if (!out->Has(r)) return UsageError(std::string("missing required flag ") + r);
  if (out->positional_.size() < cmd.min_positional)
    return UsageError(cmd.min_positional == 1 ? "missing the input argument" : "missing arguments");
  if (out->positional_.size() > cmd.max_positional)
    return UsageError("unexpected argument \"" + out->positional_[cmd.max_positional] + "\"");
  return -1;
}

void SetCommandName(const std::string& name) { g_command = "ledgerctl " + name; }

int Fail(const std::string& message) {
  std::cerr << g_command << ": " << message << std::endl;
  return kExitFailure;
}

int UsageError(const std::string& message) {
  std::cerr << g_command << ": " << message << " (see " << g_command << " --help)" << std::endl;
  return kExitUsage;
}

int FailStatus(const ledger::Status& s, const std::string& context, bool usage_if_invalid) {
  std::string msg = context.empty() ? s.message() : context + ": " + s.message();
  if (usage_if_invalid && s.IsInvalidArgument()) return UsageError(msg);
  return Fail(msg);
}

std::string NowRfc3339() { return ledger::FormatTime(static_cast<int64_t>(time(nullptr))); }

std::string RandomRequestId() {
  if (sodium_init() < 0) std::abort();
  unsigned char buf[16];
  randombytes_buf(buf, sizeof buf);
  return ledger::HexEncode(ledger::ByteView(reinterpret_cast<const char*>(buf), sizeof buf));
}

ledger::StatusOr<std::set<std::string>> ParseCategories(const std::string& text) {
  std::set<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string code = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (code.empty()) return ledger::Status::InvalidArgument("--categories: empty category in \"" + text + "\"");
    if (!ledger::FindCategory(code)) {
      std::string known;
      for (const auto& c : ledger::Categories()) known += std::string(known.empty() ? "" : ", ") + c.code;
      return ledger::Status::InvalidArgument("--categories: unknown data category \"" + code + "\" (known: " + known + ")");
    }
    if (!out.insert(code).second)
      return ledger::Status::InvalidArgument("--categories: category \"" + code + "\" listed twice");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

ledger::StatusOr<ledger::Bytes> DecodePublicKey(const std::string& text, const std::string& flag) {
  auto raw = ledger::Base64UrlDecode(text);
  if (!raw.ok() || raw->size() != 32)
    return ledger::Status::InvalidArgument(flag + " must be a base64url 32-byte public key");
  return *raw;
}

ledger::StatusOr<ledger::Bytes> PublicKeyFromFile(const std::string& path, const std::string& type) {
  LEDGER_ASSIGN_OR_RETURN(std::string text, ledger::ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  sodium_memzero(text.data(), text.size());
  if (j.is_object() && j.contains("seed")) {
    if (j["seed"].is_string()) {
      std::string& seed = j["seed"].get_ref<std::string&>();
      sodium_memzero(seed.data(), seed.size());
    }
    if (type == "ecvrf") {
      LEDGER_ASSIGN_OR_RETURN(auto key, ledger::LoadVrfKeyFile(path));
      return ledger::Bytes(key->public_key());
    }
    LEDGER_ASSIGN_OR_RETURN(auto key, ledger::LoadSigningKeyFile(path));
    return ledger::Bytes(key->public_key());
  }
  if (!j.is_object() || !j.contains("type") || !j.contains("public_key") || !j["type"].is_string() ||
      !j["public_key"].is_string() || j.size() != 2)
    return ledger::Status::InvalidArgument("key file " + path + ": not a key file (want {\"type\", \"public_key\"[, \"seed\"]})");
  if (j["type"].get<std::string>() != type)
    return ledger::Status::InvalidArgument("key file " + path + " is not an " + type + " key");
  auto raw = ledger::Base64UrlDecode(j["public_key"].get<std::string>());
  if (!raw.ok() || raw->size() != 32)
    return ledger::Status::InvalidArgument("key file " + path + ": public_key must be base64url 32 bytes");
  return *raw;
}

ledger::StatusOr<ledger::Bytes> PublicKeyArg(const std::string& value, const std::string& type,
                                             const std::string& flag) {
  if (access(value.c_str(), F_OK) == 0) return PublicKeyFromFile(value, type);
  auto key = DecodePublicKey(value, flag);
  if (!key.ok())
    return ledger::Status::InvalidArgument(flag + " must be a base64url 32-byte public key or a key file");
  return key;
}

ledger::StatusOr<ledger::NoteVerifier> LoadLogKey(const std::string& value) {
  std::string vkey = value;
  if (access(value.c_str(), F_OK) == 0) {
    LEDGER_ASSIGN_OR_RETURN(std::string text, ledger::ReadFile(value));
    vkey = Trim(text);
  }
  auto v = ledger::NoteVerifier::Parse(vkey);
  if (!v.ok())
    return ledger::Status::InvalidArgument("--log-key must be a verifier key <name>+<hash>+<base64> or a file holding one: " +
                                           v.status().message());
  return v;
}

ledger::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path != "-") return ledger::ReadFile(path);
  std::string out{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (std::cin.bad()) return ledger::Status::IOError("reading stdin failed");
  return out;
}

ledger::Status AppendText(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ledger::Status::IOError("opening " + path + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ledger::Status s = ledger::Status::IOError("writing " + path + ": " + std::strerror(errno));
      close(fd);
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    ledger::Status s = ledger::Status::IOError("fsync " + path + ": " + std::strerror(errno));
    close(fd);
    return s;
  }
  close(fd);
  return ledger::Status::OK();
}

}  // namespace ledgerctl
