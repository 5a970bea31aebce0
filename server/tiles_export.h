// TilesExporter keeps a directory in C2SP tlog-tiles layout current with the
// log (ledgerd --tiles-dir DIR; SPEC.md §6 "Static tiles directory"): the
// signed `checkpoint`, hash tiles `tile/<L>/<N>[.p/<W>]` and entry bundles
// `tile/entries/<N>[.p/<W>]`, byte for byte what ledgerd serves, so that any
// static web server (tools/nginx/ledger-tiles.conf) or CDN can serve the
// log's read API.
//
// Every file is written to a temporary name and renamed into place. Tiles
// and bundles are written before the checkpoint that covers them, so the
// directory's checkpoint never names a tile that is not there yet. Full
// tiles are written once; a partial tile is written when its width grows,
// and the superseded narrower one is deleted after a grace period (clients
// holding an older checkpoint may still fetch it; C2SP clients fall back to
// the full tile once it exists). On start the exporter catches up from the
// store, resuming from the size of the directory's checkpoint.
//
// The work runs on the exporter's own thread, off the sequencer's path: it
// polls the store's size (a mutex, no transaction) and reads through
// snapshots. The directory is derived data and is not fsynced: renamed
// files survive a crash of ledgerd, and the next start resumes from the
// directory's checkpoint; after a crash of the operating system, delete
// DIR/checkpoint so that everything is exported again.
//
// Thread-safety: Start, Notify, Stop and SyncOnce may be called from any
// thread; SyncOnce calls are serialised.
#ifndef LEDGERD_TILES_EXPORT_H_
#define LEDGERD_TILES_EXPORT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "ledger/status.h"
#include "ledger/store.h"

namespace ledgerd {

struct TilesExportOptions {
  std::string dir;                                          // created if missing
  std::chrono::milliseconds poll{20};                       // how often the store's size is checked
  std::chrono::milliseconds partial_grace{60000};           // superseded partial tiles live this long
};

class TilesExporter {
 public:
  // Create prepares |options.dir| (creating it) and reads the size of its
  // checkpoint, if any. |store| must outlive the exporter.
  static ledger::StatusOr<std::unique_ptr<TilesExporter>> Create(const ledger::Store* store, TilesExportOptions options);
  ~TilesExporter();  // Stop()s
  TilesExporter(const TilesExporter&) = delete;
  TilesExporter& operator=(const TilesExporter&) = delete;

  // Start starts the thread, which catches up and then follows the log.
  void Start();
  // Notify wakes the thread at once (e.g. after a commit).
  void Notify();
  // Stop exports what is committed so far, then stops the thread.
  void Stop();

  // SyncOnce exports the latest committed state; returns the size the
  // directory's checkpoint now names. Errors leave the directory's
  // checkpoint at its previous size.
  ledger::StatusOr<uint64_t> SyncOnce();

  // exported_size is the size of the directory's checkpoint.
  uint64_t exported_size() const;
  // files_written counts tile, bundle and checkpoint files written.
  uint64_t files_written() const;

 private:
  TilesExporter(const ledger::Store* store, TilesExportOptions options, uint64_t exported);
  ledger::Status WriteFile(const std::string& rel, ledger::ByteView data);
  void Loop();
  void DeleteExpired(bool all_due);

  const ledger::Store* store_;
  const TilesExportOptions options_;

  std::mutex sync_mu_;  // serialises SyncOnce
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> superseded_;  // under sync_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t exported_ = 0;
  uint64_t files_written_ = 0;
  bool stopping_ = false;
  bool notified_ = false;
  std::thread thread_;
};

}  // namespace ledgerd

#endif  // LEDGERD_TILES_EXPORT_H_
