// Helpers shared by the tests: reading the known-answer vectors.
#ifndef LEDGER_TESTS_TEST_UTIL_H_
#define LEDGER_TESTS_TEST_UTIL_H_

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ledger_test {

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string VectorPath(const std::string& name) { return std::string(LEDGER_VECTORS_DIR) + "/" + name; }

}  // namespace ledger_test

#endif  // LEDGER_TESTS_TEST_UTIL_H_
