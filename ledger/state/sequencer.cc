#include "ledger/sequencer.h"

#include <pthread.h>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "ledger/merkle.h"

namespace ledger {

namespace {
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
              "futex words must be plain 32-bit atomics");

uint32_t* FutexWord(std::atomic<uint32_t>& a) { return reinterpret_cast<uint32_t*>(&a); }

// FutexWait sleeps while *word == expected (returns at once otherwise, or
// spuriously; callers re-check).
void FutexWait(std::atomic<uint32_t>& word, uint32_t expected) {
  syscall(SYS_futex, FutexWord(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, FutexWord(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}
}  // namespace

void Histogram::Observe(uint64_t v) {
  int i = 0;
  while (i < kBuckets && v > (uint64_t{1} << i)) i++;
  counts[i]++;
  sum += v;
  total++;
}

Sequencer::Sequencer(Store* store, const NoteSigner* signer, SequencerOptions options, EntryHook* hook)
    : store_(store), signer_(signer), options_(options), hook_(hook) {
  if (options_.max_batch_entries == 0) options_.max_batch_entries = 1;
}

Sequencer::~Sequencer() { Stop(); }

StatusOr<std::string> Sequencer::SignCheckpoint(uint64_t size, const Hash& root) const {
  Checkpoint cp;
  cp.origin = signer_->name();
  cp.size = size;
  cp.root = root;
  return signer_->SignNote(cp.Format());
}

Status Sequencer::Start() {
  std::string origin = store_->origin();
  if (!origin.empty() && origin != signer_->name())
    return Status::FailedPrecondition("the store belongs to log \"" + origin + "\" but the key is for \"" +
                                      signer_->name() + "\"");
  LEDGER_ASSIGN_OR_RETURN(auto reader, store_->Read());
  std::string checkpoint = reader->checkpoint();
  if (!checkpoint.empty()) {
    auto cp = OpenCheckpoint(checkpoint, signer_->verifier());
    if (!cp.ok())
      return Status::Corruption("start-up check: the stored checkpoint does not verify with the log key: " +
                                cp.status().message());
    if (cp->size != reader->size() || cp->root != reader->root())
      return Status::Corruption("start-up check: the stored checkpoint (size " + std::to_string(cp->size) +
                                ") does not match the stored tree (size " + std::to_string(reader->size()) + ")");
  } else {
    if (reader->size() != 0) return Status::Corruption("start-up check: no checkpoint for a non-empty log");
    // A new log: record the origin and sign the empty tree.
    LEDGER_ASSIGN_OR_RETURN(auto batch, store_->BeginWrite());
    LEDGER_RETURN_IF_ERROR(batch->SetOrigin(signer_->name()));
    LEDGER_ASSIGN_OR_RETURN(checkpoint, SignCheckpoint(0, EmptyTreeRoot()));
    LEDGER_RETURN_IF_ERROR(batch->SetCheckpoint(checkpoint));
    LEDGER_RETURN_IF_ERROR(batch->Commit());
  }
  std::lock_guard<std::mutex> l(mu_);
  if (started_) return Status::FailedPrecondition("sequencer already started");
  checkpoint_ = checkpoint;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

std::string Sequencer::latest_checkpoint() const {
  std::lock_guard<std::mutex> l(mu_);
  return checkpoint_;
}

Status Sequencer::storage_failure() const {
  std::lock_guard<std::mutex> l(mu_);
  return storage_failure_;
}

namespace {
Status StoppedAfter(const Status& failure) {
  return Status::Unavailable("the log stopped accepting entries after a storage failure (" + failure.message() +
                             "); nothing of the failed batch was logged; restart ledgerd");
}
}  // namespace

StatusOr<SequencerResult> Sequencer::Append(std::vector<Bytes> entries,
                                            std::vector<std::shared_ptr<const void>> contexts) {
  if (entries.empty()) return Status::InvalidArgument("no entries");
  if (!contexts.empty() && contexts.size() != entries.size())
    return Status::InvalidArgument("contexts must be empty or one per entry");
  auto req = std::make_shared<Request>();
  req->entries = std::move(entries);
  req->contexts = std::move(contexts);
  bool wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!storage_failure_.ok()) return StoppedAfter(storage_failure_);
    if (!started_ || stopping_) return Status::Unavailable("the log is shutting down");
    if (queued_entries_ + req->entries.size() > options_.max_queued_entries)
      return Status::Unavailable("the append queue is full; retry later");
    // Run waits for a first request, then (the group-commit window) for a
    // full batch: only those wake it. Waking it for every request cost two
    // context switches per single-entry append (BENCHMARKS.md, figure b).
    wake = queue_.empty() || queued_entries_ + req->entries.size() >= options_.max_batch_entries;
    queued_entries_ += req->entries.size();
    if (!open_cohort_) open_cohort_ = std::make_shared<Cohort>();
    req->cohort = open_cohort_;
    queue_.push_back(req);
  }
  if (wake) cv_.notify_all();
  // Complete sets done before it bumps the generation: a wake-up between
  // the two loads below makes FutexWait return at once.
  for (;;) {
    uint32_t generation = req->cohort->generation.load(std::memory_order_acquire);
    if (req->done.load(std::memory_order_acquire)) break;
    FutexWait(req->cohort->generation, generation);
  }
  return std::move(*req->result);
}

void Sequencer::Complete(Batch& batch) {
  // A batch holds one cohort's requests, or two when it was cut at
  // max_batch_entries (the rest of a cohort wakes with it and sleeps again).
  std::vector<std::shared_ptr<Cohort>> cohorts;
  for (auto& r : batch) {
    if (cohorts.empty() || cohorts.back() != r->cohort) cohorts.push_back(r->cohort);
    r->done.store(true, std::memory_order_release);
  }
  for (auto& c : cohorts) {
    c->generation.fetch_add(1, std::memory_order_release);
    FutexWakeAll(c->generation);
  }
}

void Sequencer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      // Already stopping; fall through to join if needed.
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Sequencer::Run() {
  pthread_setname_np(pthread_self(), "ledger-seq");  // for top -H and perf
  for (;;) {
    Batch batch;
    {
      std::unique_lock<std::mutex> l(mu_);
      // A hook may ask for a batch at a given time (e.g. a due subject
      // index commitment) even if no request arrives.
      std::optional<std::chrono::steady_clock::time_point> wake;
      // Not after a storage failure: such batches are refused unattempted.
      if (hook_ && storage_failure_.ok()) wake = hook_->NextWake();
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (wake) {
        cv_.wait_until(l, *wake, ready);
      } else {
        cv_.wait(l, ready);
      }
      if (queue_.empty()) {
        if (stopping_) return;  // stopping and drained
        if (!wake || std::chrono::steady_clock::now() < *wake) continue;
        l.unlock();
        ProcessBatch(batch);  // no requests: only the hook's BatchEnd
        continue;
      }
      // Group commit: give concurrent submitters a short window to join,
      // unless the batch is already full or we are draining.
      auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
      cv_.wait_until(l, deadline, [this] { return stopping_ || queued_entries_ >= options_.max_batch_entries; });
      size_t taken = 0;
      open_cohort_.reset();  // later requests sleep on a new word
      while (!queue_.empty()) {
        size_t n = queue_.front()->entries.size();
        if (!batch.empty() && taken + n > options_.max_batch_entries) break;
        taken += n;
        queued_entries_ -= n;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    ProcessBatch(batch);
  }
}

void Sequencer::ProcessBatch(Batch& batch) {
  auto started = std::chrono::steady_clock::now();
  auto fail_all = [&](const Status& s) {
    stats_.failed_batches++;
    if (hook_) hook_->BatchDone(false);
    for (auto& r : batch) r->result = s;
    Complete(batch);
    if (s.code() != Status::Code::kIOError && s.code() != Status::Code::kCorruption) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!storage_failure_.ok()) return;
      storage_failure_ = s;
    }
    if (options_.on_storage_failure) options_.on_storage_failure(s);
  };
  {
    // After a storage failure nothing more is attempted (see SequencerOptions).
    std::unique_lock<std::mutex> l(mu_);
    if (!storage_failure_.ok()) {
      Status stopped = StoppedAfter(storage_failure_);
      l.unlock();
      for (auto& r : batch) r->result = stopped;
      Complete(batch);
      return;
    }
  }
  auto wb = store_->BeginWrite();
  if (!wb.ok()) return fail_all(wb.status());
  WriteBatch& w = **wb;

  std::vector<SequencerResult> results(batch.size());
  uint64_t appended = 0, duplicates = 0, refused = 0, entries = 0;
  for (size_t r = 0; r < batch.size(); r++) {
    const Request& req = *batch[r];
    for (size_t e = 0; e < req.entries.size(); e++) {
      const Bytes& entry = req.entries[e];
      const void* context = req.contexts.empty() ? nullptr : req.contexts[e].get();
      entries++;
      SequencedEntry out;
      out.leaf_hash = HashLeaf(entry);
      // Exact bytes already logged: answer with the original, no checks.
      auto existing = w.FindLeaf(out.leaf_hash);
      if (existing.ok()) {
        out.index = *existing;
        out.duplicate = true;
        duplicates++;
        results[r].entries.push_back(std::move(out));
        continue;
      }
      if (!existing.status().IsNotFound()) return fail_all(existing.status());
      std::optional<uint64_t> repeat_of;
      if (hook_) {
        auto check = hook_->Check(w, entry, context);
        if (!check.ok()) {
          out.status = check.status();
          refused++;
          results[r].entries.push_back(std::move(out));
          continue;
        }
        repeat_of = *check;
      }
      if (repeat_of) {
        // An equivalent earlier entry (e.g. a retried request id): its receipt.
        auto original = w.GetEntry(*repeat_of);
        if (!original.ok()) return fail_all(original.status());
        out.index = *repeat_of;
        out.leaf_hash = HashLeaf(*original);
        out.duplicate = true;
        duplicates++;
        results[r].entries.push_back(std::move(out));
        continue;
      }
      auto leaf = w.AppendNew(entry, out.leaf_hash);
      if (!leaf.ok()) {
        // A malformed entry is refused alone; a storage failure fails all.
        if (!leaf.status().IsInvalidArgument()) return fail_all(leaf.status());
        out.status = leaf.status();
        refused++;
      } else {
        out.index = leaf->index;
        appended++;
        if (hook_) {
          Status s = hook_->Applied(w, entry, context, *leaf);
          if (!s.ok()) return fail_all(s);
        }
      }
      results[r].entries.push_back(std::move(out));
    }
  }
  if (hook_) {
    uint64_t extra = 0;
    Status s = hook_->BatchEnd(w, &extra);
    if (!s.ok()) return fail_all(s);
    appended += extra;
  }
  std::string checkpoint;
  if (appended > 0) {
    auto cp = SignCheckpoint(w.size(), w.root());
    if (!cp.ok()) return fail_all(cp.status());
    checkpoint = std::move(*cp);
    Status s = w.SetCheckpoint(checkpoint);
    if (!s.ok()) return fail_all(s);
    s = w.Commit();
    if (!s.ok()) return fail_all(s);
    if (hook_) hook_->BatchDone(true);
  } else {
    if (hook_) hook_->BatchDone(false);  // nothing appended: the transaction is dropped
    // Nothing new: the current checkpoint already covers every duplicate.
    std::lock_guard<std::mutex> l(mu_);
    checkpoint = checkpoint_;
  }
  uint64_t tree_size = w.size();
  wb->reset();  // release the writer before waking anyone
  {
    std::lock_guard<std::mutex> l(mu_);
    checkpoint_ = checkpoint;
  }
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  stats_.batches++;
  stats_.appended += appended;
  stats_.duplicates += duplicates;
  stats_.refused += refused;
  stats_.batch_entries.Observe(entries);
  stats_.commit_micros.Observe(static_cast<uint64_t>(micros.count()));
  for (size_t r = 0; r < batch.size(); r++) {
    results[r].tree_size = tree_size;
    results[r].checkpoint = checkpoint;
    batch[r]->result = std::move(results[r]);
  }
  Complete(batch);
}

}  // namespace ledger
