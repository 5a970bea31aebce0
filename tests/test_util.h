// Helpers shared by the tests: reading the known-answer vectors, scratch
// directories (TempDir), and in-memory Merkle trees that serve stored
// hashes (HashReader). Header-only; POSIX only.
#ifndef LEDGER_TESTS_TEST_UTIL_H_
#define LEDGER_TESTS_TEST_UTIL_H_

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ledger/merkle.h"

namespace ledger_test {

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string VectorPath(const std::string& name) { return std::string(LEDGER_VECTORS_DIR) + "/" + name; }

// TempDir makes a fresh directory $TMPDIR/<prefix>-XXXXXX (or under /tmp)
// and removes it, recursively, when destroyed. The constructor throws
// std::runtime_error if mkdtemp fails (Catch reports it as a failure).
// Not thread-safe: one owner.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ledger-test") {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr)
      throw std::runtime_error("mkdtemp " + tmpl + ": " + std::string(std::strerror(errno)));
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // store_dir is an LMDB store directory inside it (Store::Open creates it).
  std::string store_dir() const { return path_ + "/lmdb"; }

 private:
  std::string path_;
};

// MemoryReader stores every complete-subtree hash of a tree built from leaf
// hashes, and counts ReadHashes calls and the nodes they ask for, so tests
// can check batching and caching. A node outside the tree is NotFound.
// Thread-safety: ReadHashes may be called from several threads at once.
class MemoryReader : public ledger::HashReader {
 public:
  explicit MemoryReader(const std::vector<ledger::Hash>& leaves) {
    levels_.push_back(leaves);
    while (levels_.back().size() > 1) {
      const auto& below = levels_.back();
      std::vector<ledger::Hash> up;
      for (size_t i = 0; i + 1 < below.size(); i += 2) up.push_back(ledger::HashChildren(below[i], below[i + 1]));
      levels_.push_back(std::move(up));
    }
  }
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<ledger::Hash>* out) const override {
    calls++;
    nodes_read += ids.size();
    out->clear();
    for (const ledger::NodeId& id : ids) {
      if (id.level >= levels_.size() || id.index >= levels_[id.level].size())
        return ledger::Status::NotFound("node " + std::to_string(id.level) + "/" + std::to_string(id.index));
      out->push_back(levels_[id.level][id.index]);
    }
    return ledger::Status::OK();
  }
  const ledger::Hash& Node(uint8_t level, uint64_t index) const { return levels_.at(level).at(index); }
  mutable std::atomic<int> calls{0};
  mutable std::atomic<uint64_t> nodes_read{0};

 private:
  std::vector<std::vector<ledger::Hash>> levels_;
};

// MemoryTree serves any complete subtree of |leaves| (leaf hashes, which a
// test may change or extend at any time), recomputed on every read: for
// small trees only. A node outside the tree is NotFound.
class MemoryTree : public ledger::HashReader {
 public:
  MemoryTree() = default;
  // MemoryTree(entries) hashes each entry as an RFC 6962 leaf.
  explicit MemoryTree(const std::vector<ledger::Bytes>& entries) {
    for (const auto& e : entries) leaves.push_back(ledger::HashLeaf(e));
  }
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<ledger::Hash>* out) const override {
    out->clear();
    for (const ledger::NodeId& id : ids) {
      if (id.level >= 64 || id.index >= (size() >> id.level))
        return ledger::Status::NotFound("node " + std::to_string(id.level) + "/" + std::to_string(id.index));
      out->push_back(Node(id.level, id.index));
    }
    return ledger::Status::OK();
  }
  // Node is the hash of complete subtree |index| at |level| (it must exist).
  ledger::Hash Node(unsigned level, uint64_t index) const {
    if (level == 0) return leaves.at(index);
    return ledger::HashChildren(Node(level - 1, 2 * index), Node(level - 1, 2 * index + 1));
  }
  uint64_t size() const { return leaves.size(); }

  std::vector<ledger::Hash> leaves;
};

}  // namespace ledger_test

#endif  // LEDGER_TESTS_TEST_UTIL_H_
