#include "tiles_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/tiles.h"

namespace ledgerd {
namespace {

using ledger::Status;
using ledger::StatusOr;

Status Errno(const std::string& what) { return Status::IOError(what + ": " + std::strerror(errno)); }

// MakeDirs creates |dir| and its parents (mode 0755: a web server reads them).
Status MakeDirs(const std::string& dir) {
  std::string partial;
  for (size_t i = 0; i <= dir.size(); i++) {
    if (i == dir.size() || dir[i] == '/') {
      if (!partial.empty() && mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        return Errno("creating " + partial);
    }
    if (i < dir.size()) partial.push_back(dir[i]);
  }
  return Status::OK();
}

// CheckpointSize reads the tree size (second line) of a checkpoint file; 0
// if there is none or it does not parse.
uint64_t CheckpointSize(const std::string& path) {
  std::ifstream in(path);
  std::string origin, size;
  if (!in || !std::getline(in, origin) || !std::getline(in, size)) return 0;
  auto v = ledger::ParseUint64(size);
  return v.ok() ? *v : 0;
}

}  // namespace

StatusOr<std::unique_ptr<TilesExporter>> TilesExporter::Create(const ledger::Store* store, TilesExportOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("--tiles-dir is empty");
  while (options.dir.size() > 1 && options.dir.back() == '/') options.dir.pop_back();
  LEDGER_RETURN_IF_ERROR(MakeDirs(options.dir + "/tile/entries"));
  uint64_t exported = CheckpointSize(options.dir + "/checkpoint");
  // A directory ahead of the store belongs to another log (or a lost
  // store): refuse rather than serve a checkpoint the log does not have.
  if (exported > store->size())
    return Status::FailedPrecondition("--tiles-dir " + options.dir + " holds a checkpoint of size " +
                                      std::to_string(exported) + ", beyond the log's size " +
                                      std::to_string(store->size()) + "; use an empty directory");
  return std::unique_ptr<TilesExporter>(new TilesExporter(store, std::move(options), exported));
}

TilesExporter::TilesExporter(const ledger::Store* store, TilesExportOptions options, uint64_t exported)
    : store_(store), options_(std::move(options)), exported_(exported) {}

TilesExporter::~TilesExporter() { Stop(); }

uint64_t TilesExporter::exported_size() const {
  std::lock_guard<std::mutex> l(mu_);
  return exported_;
}

uint64_t TilesExporter::files_written() const {
  std::lock_guard<std::mutex> l(mu_);
  return files_written_;
}

Status TilesExporter::WriteFile(const std::string& rel, ledger::ByteView data) {
  std::string path = options_.dir + "/" + rel;
  std::string dir = path.substr(0, path.rfind('/'));
  std::string tmp = dir + "/.tmp." + path.substr(path.rfind('/') + 1);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ENOENT) {
    LEDGER_RETURN_IF_ERROR(MakeDirs(dir));
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (fd < 0) return Errno("creating " + tmp);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Errno("writing " + tmp);
      close(fd);
      unlink(tmp.c_str());
      return s;
    }
    off += static_cast<size_t>(n);
  }
  // fchmod: the umask must not hide files from the web server.
  if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
    unlink(tmp.c_str());
    return Errno("closing " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Errno("renaming " + tmp);
    unlink(tmp.c_str());
    return s;
  }
  std::lock_guard<std::mutex> l(mu_);
  files_written_++;
  return Status::OK();
}

StatusOr<uint64_t> TilesExporter::SyncOnce() {
  std::lock_guard<std::mutex> sync(sync_mu_);
  DeleteExpired(false);
  LEDGER_ASSIGN_OR_RETURN(auto reader, store_->Read());
  const uint64_t size = reader->size();
  const uint64_t old = exported_size();
  if (size == old || reader->checkpoint().empty()) return old;
  if (size < old) return Status::FailedPrecondition("the log is smaller than the exported checkpoint");
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> superseded;

  // Entry bundles: from the one holding entry |old| (a partial tile at the
  // old size, or the first new one) to the last.
  for (uint64_t n = old / ledger::kTileWidth; n * ledger::kTileWidth < size; n++) {
    uint64_t first = n * ledger::kTileWidth;
    uint32_t width = static_cast<uint32_t>(std::min<uint64_t>(ledger::kTileWidth, size - first));
    ledger::TileId id{true, 0, n, width};
    std::string rel = ledger::FormatTilePath(id);
    if (width == ledger::kTileWidth) {
      LEDGER_ASSIGN_OR_RETURN(ledger::ByteView stored, reader->GetEntryBundle(n));  // stored as served
      LEDGER_RETURN_IF_ERROR(WriteFile(rel, stored));
    } else {
      LEDGER_ASSIGN_OR_RETURN(auto entries, reader->GetEntries(first, width));
      LEDGER_ASSIGN_OR_RETURN(ledger::Bytes bundle, ledger::EncodeEntryBundle(entries));
      LEDGER_RETURN_IF_ERROR(WriteFile(rel, bundle));
    }
    if (old > first && old - first < ledger::kTileWidth)
      superseded.push_back(ledger::FormatTilePath(ledger::TileId{true, 0, n, static_cast<uint32_t>(old - first)}));
  }
  // Hash tiles, level by level: level L holds nodes of tree level 8L.
  for (uint8_t level = 0; level < 64; level++) {
    uint64_t shift = 8u * level;
    uint64_t count = shift >= 64 ? 0 : size >> shift;        // nodes at tree level 8L
    uint64_t old_count = shift >= 64 ? 0 : old >> shift;
    if (count == 0) break;
    if (count == old_count) continue;  // this level did not change
    for (uint64_t n = old_count / ledger::kTileWidth; n * ledger::kTileWidth < count; n++) {
      uint64_t first = n * ledger::kTileWidth;
      uint32_t width = static_cast<uint32_t>(std::min<uint64_t>(ledger::kTileWidth, count - first));
      ledger::TileId id{false, level, n, width};
      std::string rel = ledger::FormatTilePath(id);
      LEDGER_ASSIGN_OR_RETURN(ledger::Bytes tile, ledger::ReadTile(id, size, *reader));
      LEDGER_RETURN_IF_ERROR(WriteFile(rel, tile));
      if (old_count > first && old_count - first < ledger::kTileWidth)
        superseded.push_back(
            ledger::FormatTilePath(ledger::TileId{false, level, n, static_cast<uint32_t>(old_count - first)}));
    }
  }
  // Last, the checkpoint: everything it names is in place.
  LEDGER_RETURN_IF_ERROR(WriteFile("checkpoint", reader->checkpoint()));
  {
    std::lock_guard<std::mutex> l(mu_);
    exported_ = size;
  }
  for (auto& p : superseded) superseded_.emplace_back(now, std::move(p));
  return size;
}

void TilesExporter::DeleteExpired(bool all_due) {
  auto now = std::chrono::steady_clock::now();
  while (!superseded_.empty() && (all_due || now - superseded_.front().first >= options_.partial_grace)) {
    std::string path = options_.dir + "/" + superseded_.front().second;
    if (unlink(path.c_str()) == 0) {
      // Remove the ".p" directory once its last partial is gone.
      std::string dir = path.substr(0, path.rfind('/'));
      rmdir(dir.c_str());
    }
    superseded_.pop_front();
  }
}

void TilesExporter::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void TilesExporter::Notify() {
  {
    std::lock_guard<std::mutex> l(mu_);
    notified_ = true;
  }
  cv_.notify_one();
}

void TilesExporter::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void TilesExporter::Loop() {
  bool reported = false;
  for (;;) {
    bool stop;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, options_.poll, [this] { return stopping_ || notified_ || store_->size() != exported_; });
      notified_ = false;
      stop = stopping_;
    }
    auto s = SyncOnce();
    if (!s.ok()) {
      // Logged once per failure streak; retried at the next poll.
      if (!reported) std::cerr << "ledgerd: --tiles-dir: " << s.status().ToString() << std::endl;
      reported = true;
    } else {
      reported = false;
    }
    if (stop) return;
  }
}

}  // namespace ledgerd
