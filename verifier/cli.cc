#include "cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace verifier {
namespace {

std::string g_command = "ledger-verify";

const FlagDef* FindFlag(const Command& cmd, const std::string& name) {
  for (const auto& f : cmd.flags)
    if (name == f.name) return &f;
  return nullptr;
}

std::string TrimLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
  return s.substr(i);
}

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

ledger::Status WriteAll(int fd, ledger::ByteView data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ledger::Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return ledger::Status::OK();
}

std::string Duration(double seconds) {
  if (seconds < 0 || seconds > 359999) return "--:--";
  auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

std::string Rate(double per_second) {
  char buf[32];
  if (per_second >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM/s", per_second / 1e6);
  else if (per_second >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fk/s", per_second / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f/s", per_second);
  return buf;
}

}  // namespace

std::string Args::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> Args::GetAll(const std::string& flag) const {
  auto it = all_.find(flag);
  return it == all_.end() ? std::vector<std::string>() : it->second;
}

int ParseArgs(const Command& cmd, int argc, char** argv, Args* out) {
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << cmd.help;
      return 0;
    }
    if (a.rfind("--", 0) != 0) return UsageError("unexpected argument \"" + a + "\"");
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
    if (out->Has(a) && !def->repeatable) return UsageError("flag " + a + " given twice");
    if (!def->takes_value) {
      if (has_inline) return UsageError("flag " + a + " takes no value");
      out->values_[a] = "";
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= argc) return UsageError("flag " + a + " needs a value");
      value = argv[++i];
    }
    out->values_[a] = value;
    out->all_[a].push_back(value);
  }
  for (const char* r : cmd.required)
    if (!out->Has(r)) return UsageError(std::string("missing required flag ") + r);
  return -1;
}

void SetCommandName(const std::string& name) { g_command = "ledger-verify " + name; }

int UsageError(const std::string& message) {
  std::cerr << g_command << ": " << message << " (see " << g_command << " --help)" << std::endl;
  return kExitUsage;
}

int IoError(const std::string& message) {
  std::cerr << g_command << ": " << message << std::endl;
  return kExitUsage;
}

int Failed(const std::string& message) {
  std::cerr << g_command << ": " << message << std::endl;
  return kExitFailed;
}

int ExitForStatus(const ledger::Status& s, const std::string& context) {
  std::string msg = context.empty() ? s.message() : context + ": " + s.message();
  if (s.IsInvalidArgument()) return UsageError(msg);
  return IoError(msg);
}

ledger::StatusOr<ledger::NoteVerifier> LoadLogKey(const std::string& value) {
  if (value.empty()) return ledger::Status::InvalidArgument("--log-key is empty");
  std::string path;
  if (value[0] == '@') {
    path = value.substr(1);
  } else {
    auto direct = ledger::NoteVerifier::Parse(value);
    if (direct.ok()) return direct;
    // A verifier key always has two '+'; anything else may be a file name
    // (the way ledgerctl and ledger-gate take DATA/log.vkey).
    struct stat st;
    if (::stat(value.c_str(), &st) != 0)
      return ledger::Status::InvalidArgument("--log-key: not a verifier key (" + direct.status().message() +
                                             ") nor a file: " + value);
    path = value;
  }
  auto text = ReadWholeFile(path);
  if (!text.ok()) return ledger::Status::InvalidArgument("--log-key: cannot read " + path + ": " + text.status().message());
  std::string line = text->substr(0, text->find('\n'));
  auto key = ledger::NoteVerifier::Parse(TrimLine(line));
  if (!key.ok()) return ledger::Status::InvalidArgument("--log-key " + path + ": " + key.status().message());
  return key;
}

std::vector<std::string> WitnessPolicy::DistinctKeys() const {
  std::vector<std::string> keys;
  for (const auto& w : witnesses) keys.push_back(w.VerifierKeyString());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

ledger::StatusOr<ledger::CosignatureVerifier> LoadWitnessKey(const std::string& value) {
  if (value.empty()) return ledger::Status::InvalidArgument("--witness is empty");
  std::string path;
  if (value[0] == '@') {
    path = value.substr(1);
  } else {
    auto direct = ledger::CosignatureVerifier::Parse(value);
    if (direct.ok()) return direct;
    struct stat st;
    if (::stat(value.c_str(), &st) != 0)
      return ledger::Status::InvalidArgument("--witness: not a witness verifier key (" + direct.status().message() +
                                             ") nor a file: " + value);
    path = value;
  }
  auto text = ReadWholeFile(path);
  if (!text.ok()) return ledger::Status::InvalidArgument("--witness: cannot read " + path + ": " + text.status().message());
  std::string line = text->substr(0, text->find('\n'));
  auto key = ledger::CosignatureVerifier::Parse(TrimLine(line));
  if (!key.ok()) return ledger::Status::InvalidArgument("--witness " + path + ": " + key.status().message());
  return key;
}

ledger::StatusOr<WitnessPolicy> LoadWitnessPolicy(const Args& args) {
  WitnessPolicy policy;
  for (const std::string& value : args.GetAll("--witness")) {
    LEDGER_ASSIGN_OR_RETURN(ledger::CosignatureVerifier w, LoadWitnessKey(value));
    bool dup = false;
    for (const auto& seen : policy.witnesses) {
      if (seen.name() != w.name() || seen.key_id() != w.key_id()) continue;
      if (seen.public_key() != w.public_key())
        return ledger::Status::InvalidArgument("--witness: two different keys share the name and key ID of " +
                                               w.VerifierKeyString());
      dup = true;
    }
    if (!dup) policy.distinct++;
    policy.witnesses.push_back(std::move(w));
  }
  policy.quorum = policy.distinct;  // default: every listed witness
  if (args.Has("--quorum")) {
    auto q = ledger::ParseUint64(args.Get("--quorum"));
    if (!q.ok()) return ledger::Status::InvalidArgument("--quorum must be a whole number, got \"" + args.Get("--quorum") + "\"");
    if (*q > policy.distinct)
      return ledger::Status::InvalidArgument("--quorum " + args.Get("--quorum") + " exceeds the " +
                                             std::to_string(policy.distinct) + " distinct witness" +
                                             (policy.distinct == 1 ? "" : "es") + " given with --witness");
    policy.quorum = static_cast<size_t>(*q);
  }
  return policy;
}

ledger::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  if (path == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return ledger::Status::NotFound("no such file: " + path);
    return ledger::Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ledger::Status::IOError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

ledger::Status FsyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ledger::Status::IOError("cannot open directory " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ledger::Status::IOError("cannot fsync directory " + dir + ": " + std::strerror(err));
  return ledger::Status::OK();
}

ledger::Status WriteFileAtomic(const std::string& path, ledger::ByteView data, unsigned mode) {
  // The temporary name is unique per process and thread so concurrent
  // writers of different files never collide.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ledger::Status::IOError("cannot create " + tmp + ": " + std::strerror(errno));
  ledger::Status st = WriteAll(fd, data, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = ledger::Status::IOError("cannot fsync " + tmp + ": " + std::strerror(errno));
  if (::close(fd) != 0 && st.ok()) st = ledger::Status::IOError("cannot close " + tmp + ": " + std::strerror(errno));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = ledger::Status::IOError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDirectory(DirName(path));
}

ledger::Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return ledger::Status::OK();
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string prefix = dir.substr(0, pos);
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return ledger::Status::IOError("cannot create directory " + prefix + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return ledger::Status::IOError(dir + " is not a directory");
  return ledger::Status::OK();
}

ledger::StatusOr<uint64_t> ParseCount(const std::string& flag, const std::string& value, uint64_t min, uint64_t max) {
  auto v = ledger::ParseUint64(value);
  if (!v.ok() || *v < min || *v > max)
    return ledger::Status::InvalidArgument(flag + " must be a whole number from " + std::to_string(min) + " to " +
                                           std::to_string(max) + ", got \"" + value + "\"");
  return *v;
}

std::string DumpJson(const ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, ordered_json::error_handler_t::replace);
}

ordered_json CheckpointJson(const ledger::Checkpoint& cp) {
  ordered_json j;
  j["origin"] = cp.origin;
  j["size"] = cp.size;
  j["root"] = ledger::Base64Encode(ledger::HashView(cp.root));
  return j;
}

ordered_json HashesJson(const std::vector<ledger::Hash>& hashes) {
  ordered_json list = ordered_json::array();
  for (const auto& h : hashes) list.push_back(ledger::Base64Encode(ledger::HashView(h)));
  return list;
}

ledger::StatusOr<ledger::Bytes> EntryFromFile(const std::string& path) {
  LEDGER_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(path));
  if (!data.empty() && data.back() == '\n') data.pop_back();
  if (!data.empty() && data.back() == '\r') data.pop_back();
  if (data.empty()) return ledger::Status::InvalidArgument("the entry in " + path + " is empty");
  return data;
}

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ProgressBar::ProgressBar(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && StderrIsTerminal()), start_us_(NowMicros()) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done) {
  if (!enabled_) return;
  int64_t now = NowMicros();
  if (drawn_ && now - last_draw_us_ < 100000 && done < total_) return;
  last_draw_us_ = now;
  double elapsed = static_cast<double>(now - start_us_) / 1e6;
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  constexpr int kWidth = 30;
  int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1;
  char line[256];
  std::snprintf(line, sizeof line, "\r%s [%s] %3d%% %llu/%llu entries %s ETA %s ", label_.c_str(), bar.c_str(),
                static_cast<int>(frac * 100), static_cast<unsigned long long>(done),
                static_cast<unsigned long long>(total_), Rate(rate).c_str(), Duration(eta).c_str());
  std::cerr << line << std::flush;
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!enabled_ || !drawn_) return;
  std::cerr << "\r\033[K" << std::flush;
  drawn_ = false;
}

}  // namespace verifier
