// Sequencer: the log's single writer. Concurrent submitters enqueue entries;
// one thread takes a batch (bounded in entries and by a short window after
// the first request), appends it in one LMDB write transaction together with
// the newly signed checkpoint, commits durably, and only then completes every
// waiter. Nothing is acknowledged before it is durable.
//
// Thread-safety: Append and stats may be called from any number of threads.
// Start and Stop are called once each by the owner.
#ifndef LEDGER_SEQUENCER_H_
#define LEDGER_SEQUENCER_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/note.h"
#include "ledger/status.h"
#include "ledger/store.h"

namespace ledger {

struct SequencerOptions {
  size_t max_batch_entries = 4096;                    // per write transaction
  std::chrono::microseconds max_wait{500};            // batch window after the first request
  size_t max_queued_entries = 1 << 20;                // back-pressure: Unavailable beyond this
  // on_storage_failure is called once, on the sequencer thread, after the
  // first batch that fails with a storage error (IOError or Corruption, e.g.
  // a failed write or fsync); its submitters already have that error. From
  // then on the sequencer refuses every append (Unavailable) without
  // touching the store: after a failed fsync neither LMDB's environment nor
  // the page cache can be trusted until the process restarts and re-checks
  // the store. ledgerd stops cleanly here. A full map is not a storage
  // failure (ResourceExhausted: appends are refused, everything else works).
  std::function<void(const Status&)> on_storage_failure;
};

// EntryHook lets a caller validate entries against state derived from the
// log, at their exact position, and update that state in the same
// transaction. Called on the sequencer thread only. |context| is what the
// submitter passed with the entry (for example its parsed form), or null.
class EntryHook {
 public:
  virtual ~EntryHook() = default;
  // Check decides whether |entry| may be appended now: nullopt to append,
  // an index to answer it as a repeat of that earlier entry, or a non-OK
  // status that refuses this entry only (reported to its submitter).
  // Entries whose exact bytes are already in the log never reach Check.
  virtual StatusOr<std::optional<uint64_t>> Check(WriteBatch& batch, ByteView entry, const void* context) = 0;
  // Applied is called after |entry| was appended at |leaf.index|. A non-OK
  // status fails the whole batch.
  virtual Status Applied(WriteBatch& batch, ByteView entry, const void* context, const AppendedLeaf& leaf) = 0;
  // BatchEnd is called once per batch after the submitted entries (also for
  // a batch of none, when NextWake has passed): the hook may append entries
  // of its own to |batch| (WriteBatch::AppendNew, e.g. the log's subject
  // index commitments) and sets |*appended| to how many. They are in the
  // batch's transaction and checkpoint. A non-OK status fails the batch.
  virtual Status BatchEnd(WriteBatch& batch, uint64_t* appended) {
    (void)batch;
    *appended = 0;
    return Status::OK();
  }
  // NextWake returns when the sequencer should run a batch (and so
  // BatchEnd) even if no request arrives; nullopt for never. Asked before
  // each wait for requests.
  virtual std::optional<std::chrono::steady_clock::time_point> NextWake() { return std::nullopt; }
  // BatchDone is called after every batch that reached Check, Applied or
  // BatchEnd: |committed| says whether its transaction was committed, so a
  // hook keeping memory of the batch can keep or drop it.
  virtual void BatchDone(bool committed) { (void)committed; }
};

struct SequencedEntry {
  Status status;       // OK, or why this entry was refused
  uint64_t index = 0;  // valid when status is OK
  Hash leaf_hash{};
  bool duplicate = false;
};

struct SequencerResult {
  uint64_t tree_size = 0;        // size of |checkpoint|
  std::string checkpoint;        // signed note covering every entry below
  std::vector<SequencedEntry> entries;  // one per submitted entry, in order
};

// Power-of-two histogram buckets: bucket i counts values <= 2^i.
struct Histogram {
  static constexpr int kBuckets = 24;
  std::array<std::atomic<uint64_t>, kBuckets + 1> counts{};  // last = +Inf
  std::atomic<uint64_t> sum{0};
  std::atomic<uint64_t> total{0};
  void Observe(uint64_t v);
};

struct SequencerStats {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> appended{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> failed_batches{0};
  Histogram batch_entries;   // entries per batch
  Histogram commit_micros;   // write + fsync + sign, microseconds
};

class Sequencer {
 public:
  // The store and signer must outlive the sequencer. The signer's name is
  // the log origin. |hook| may be null.
  Sequencer(Store* store, const NoteSigner* signer, SequencerOptions options, EntryHook* hook = nullptr);
  ~Sequencer();  // calls Stop()

  // Start checks the stored checkpoint (signature by the signer's key,
  // matching size and root, origin), writes the first checkpoint for a new
  // log, and starts the sequencing thread. Corruption or FailedPrecondition
  // if the store does not belong to this key or is inconsistent.
  Status Start();

  // Append submits entries and blocks until they are durable. Unavailable if
  // stopped or the queue is full; IOError/ResourceExhausted if the batch
  // failed to commit (nothing of it was written).
  // |contexts| is empty or holds one pointer per entry, handed to the hook.
  StatusOr<SequencerResult> Append(std::vector<Bytes> entries,
                                   std::vector<std::shared_ptr<const void>> contexts = {});

  // Stop refuses new submissions, finishes everything queued, and joins
  // the thread. Idempotent.
  void Stop();

  const SequencerStats& stats() const { return stats_; }
  // latest_checkpoint returns the most recent signed checkpoint.
  std::string latest_checkpoint() const;
  // storage_failure returns OK, or the storage error that stopped appends.
  Status storage_failure() const;

 private:
  // A Cohort is the requests queued between two hand-offs to the
  // sequencing thread. Their submitters sleep on its one futex word, so a
  // batch is completed with one wake-up call rather than one per request
  // (each was a system call on the sequencing thread: BENCHMARKS.md, b).
  struct Cohort {
    std::atomic<uint32_t> generation{0};
  };
  struct Request {
    std::vector<Bytes> entries;
    std::vector<std::shared_ptr<const void>> contexts;
    std::shared_ptr<Cohort> cohort;
    std::optional<StatusOr<SequencerResult>> result;  // set before done
    std::atomic<bool> done{false};
  };
  using Batch = std::vector<std::shared_ptr<Request>>;
  void Run();
  void ProcessBatch(Batch& batch);
  // Complete publishes the results set in |batch| and wakes their submitters.
  static void Complete(Batch& batch);
  StatusOr<std::string> SignCheckpoint(uint64_t size, const Hash& root) const;

  Store* store_;
  const NoteSigner* signer_;
  SequencerOptions options_;
  EntryHook* hook_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  std::shared_ptr<Cohort> open_cohort_;  // guarded by mu_; joined by new requests
  size_t queued_entries_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
  std::string checkpoint_;  // guarded by mu_
  Status storage_failure_;  // guarded by mu_; non-OK once a batch failed in storage
  SequencerStats stats_;
};

}  // namespace ledger

#endif  // LEDGER_SEQUENCER_H_
