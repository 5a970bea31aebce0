// ledger-bench: load generator, baseline server and log builder used by
// tools/bench to measure ledgerd against baselines run on the same machine.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "bench.h"

namespace bench {

constexpr char kUsage[] = R"(Usage: ledger-bench <command> [flags]   (ledger-bench <command> --help for flags)

Commands:
  baseline-server  trivial HTTP server with exactly ledgerd's httplib settings
  load             closed-loop HTTP load generator; prints JSON results
  build-log        create a log of N random entries, ready for ledgerd --data DIR
  gen-bodies       write POST /v1/entries bodies of random entries, one per line
  gen-access-bodies  write bodies of signed access records for a --demo log
  verify-baseline  bare Ed25519 verification loop (the bound of verified appends)
  gen-paths        write random inclusion-proof / tile / bundle paths, one per line
  lmdb-baseline    durable append rate through Store/WriteBatch (storage limit)
  build-subject-log  a ledger-mode log of N subjects' accesses, built as ledgerd builds it
  subject-proof-bytes  average answer and proof bytes of GET /v1/subjects lookups
  scale            build a large log; disk bytes/entry, append rate, proof latency, open time
  build-audit-log  a ledger-mode log of N signed accesses to audit (figure g)

tools/bench runs all of them and writes BENCHMARKS.md.
)";

[[noreturn]] void Die(const std::string& msg, int code) {
  std::cerr << "ledger-bench: " << msg << "\n";
  std::exit(code);
}

Flags::Flags(int argc, char** argv, int first, const std::vector<std::string>& known, const char* usage,
             const std::vector<std::string>& bools) {
  auto is_bool = [&](const std::string& n) {
    for (const auto& b : bools)
      if (b == n) return true;
    return false;
  };
  for (int i = first; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) {
      std::cerr << usage;
      Die("unexpected argument \"" + a + "\"", 2);
    }
    std::string name, value;
    auto eq = a.find('=');
    if (eq != std::string::npos) {
      name = a.substr(2, eq - 2);
      value = a.substr(eq + 1);
    } else if (is_bool(a.substr(2))) {
      name = a.substr(2);
      value = "1";
    } else {
      name = a.substr(2);
      if (i + 1 >= argc) Die("flag --" + name + " needs a value (see --help)", 2);
      value = argv[++i];
    }
    bool ok = false;
    for (const auto& k : known) ok = ok || k == name;
    ok = ok || is_bool(name);
    if (!ok) Die("unknown flag --" + name + " (see --help)", 2);
    values_[name] = value;
  }
}

std::string Flags::str(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Flags::required(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) Die("--" + name + " is required (see --help)", 2);
  return it->second;
}

uint64_t Flags::num(const std::string& name, uint64_t fallback, uint64_t min, uint64_t max) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || s[0] == '-' || *end != '\0' || errno != 0 || v < min || v > max)
    Die("--" + name + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
            ", got \"" + s + "\"",
        2);
  return v;
}

double Flags::real(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || !(v >= 0)) Die("--" + name + " must be a non-negative number", 2);
  return v;
}

void SplitHostPort(const std::string& hostport, std::string* host, int* port) {
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos || colon == 0) Die("expected HOST:PORT, got \"" + hostport + "\"", 2);
  *host = hostport.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  std::string p = hostport.substr(colon + 1);
  char* end = nullptr;
  long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || v < 0 || v > 65535) Die("bad port in \"" + hostport + "\"", 2);
  *port = static_cast<int>(v);
}

void FillRandom(std::mt19937_64& rng, char* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t r = rng();
    std::memcpy(out + i, &r, 8);
  }
  if (i < n) {
    uint64_t r = rng();
    std::memcpy(out + i, &r, n - i);
  }
}

}  // namespace bench

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << bench::kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "baseline-server") return bench::BaselineServerMain(argc, argv);
  if (cmd == "load") return bench::LoadMain(argc, argv);
  if (cmd == "build-log") return bench::BuildLogMain(argc, argv);
  if (cmd == "gen-bodies") return bench::GenBodiesMain(argc, argv);
  if (cmd == "gen-paths") return bench::GenPathsMain(argc, argv);
  if (cmd == "lmdb-baseline") return bench::LmdbBaselineMain(argc, argv);
  if (cmd == "verify-baseline") return bench::VerifyBaselineMain(argc, argv);
  if (cmd == "gen-access-bodies") return bench::GenAccessBodiesMain(argc, argv);
  if (cmd == "build-subject-log") return bench::BuildSubjectLogMain(argc, argv);
  if (cmd == "subject-proof-bytes") return bench::SubjectProofBytesMain(argc, argv);
  if (cmd == "scale") return bench::ScaleMain(argc, argv);
  if (cmd == "build-audit-log") return bench::BuildAuditLogMain(argc, argv);
  std::cerr << bench::kUsage;
  bench::Die("unknown command \"" + cmd + "\"", 2);
}
