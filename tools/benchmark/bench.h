// Shared helpers of ledger-bench: flag parsing and the subcommand entry
// points. Each subcommand is documented by its --help.
#ifndef LEDGER_TOOLS_BENCHMARK_BENCH_H_
#define LEDGER_TOOLS_BENCHMARK_BENCH_H_

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace bench {

// Flags holds "--name value" / "--name=value" pairs of one subcommand.
class Flags {
 public:
  // Reads argv[first..argc). Exits with status 2 (after printing
  // |usage|) on a malformed command line or a flag not in |known|; prints
  // |usage| and exits 0 on --help.
  // Flags named in |bools| take no value ("--name" means "1").
  Flags(int argc, char** argv, int first, const std::vector<std::string>& known, const char* usage,
        const std::vector<std::string>& bools = {});

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string str(const std::string& name, const std::string& fallback = "") const;
  std::string required(const std::string& name) const;
  uint64_t num(const std::string& name, uint64_t fallback, uint64_t min = 0, uint64_t max = UINT64_MAX) const;
  double real(const std::string& name, double fallback) const;

 private:
  std::map<std::string, std::string> values_;
};

[[noreturn]] void Die(const std::string& msg, int code = 1);

// SplitHostPort splits "HOST:PORT" (IPv6 hosts in brackets). Dies if malformed.
void SplitHostPort(const std::string& hostport, std::string* host, int* port);

// FillRandom writes |n| pseudo-random bytes (fast, not cryptographic).
void FillRandom(std::mt19937_64& rng, char* out, size_t n);

int BaselineServerMain(int argc, char** argv);
int LoadMain(int argc, char** argv);
int BuildLogMain(int argc, char** argv);
int GenBodiesMain(int argc, char** argv);
int GenPathsMain(int argc, char** argv);
int LmdbBaselineMain(int argc, char** argv);
int VerifyBaselineMain(int argc, char** argv);
int GenAccessBodiesMain(int argc, char** argv);
int BuildSubjectLogMain(int argc, char** argv);
int SubjectProofBytesMain(int argc, char** argv);
int ScaleMain(int argc, char** argv);
int BuildAuditLogMain(int argc, char** argv);

}  // namespace bench

#endif  // LEDGER_TOOLS_BENCHMARK_BENCH_H_
