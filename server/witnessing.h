// Witnessing: ledgerd's side of C2SP tlog-witness. A background thread
// offers each new checkpoint (rate-limited) to every configured witness
// concurrently (POST <url>/add-checkpoint with the consistency proof from
// the witness's last known size), collects their cosignatures (checked with
// ledger::VerifyCosignature against the configured keys) and keeps the
// newest checkpoint that carries cosignatures from at least a quorum of K
// distinct witnesses. GET /checkpoint and the receipts serve that witnessed
// checkpoint when K > 0 (SPEC.md §13).
//
// Per witness a worker thread submits the latest offered checkpoint: a slow
// or dead witness (bounded by timeout_ms per submission) never delays the
// others, it resumes with the newest checkpoint once it answers again, and a
// failed submission is retried with backoff (250 ms doubling to 2 s) or as
// soon as a newer checkpoint is offered. A 409 answer carries the witness's
// size (text/x.tlog.size): the worker retries once with that old size and
// the matching proof, computed with ledger::ConsistencyProof over a fresh
// store->Read() snapshot.
//
// The newest witnessed checkpoint is also written to a file (durably), so a
// restart serves it until new cosignatures arrive; on start it is re-checked
// (log signature, K valid cosignatures, same root as the store at its size)
// and ignored with a warning if it does not pass.
//
// No HTTP types leak out of witnessing.cc (it uses an httplib::Client per
// request, no keep-alive: a witness restart never meets a stale connection).
//
// Thread-safety: every public method may be called from any thread once
// Start returned; Stop is idempotent and also wakes every WaitFor.
#ifndef LEDGER_SERVER_WITNESSING_H_
#define LEDGER_SERVER_WITNESSING_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ledger/cosignature.h"
#include "ledger/note.h"
#include "ledger/status.h"
#include "ledger/store.h"
#include "metrics.h"

namespace ledgerd {

// One witness as configured: a label (metrics, logs), the base URL its
// add-checkpoint endpoint lives under, and its cosignature/v1 verifier key
// ("<name>+<8 hex key ID>+<base64(0x04 || Ed25519 public key)>").
struct WitnessConfig {
  std::string name;
  std::string url;
  std::string key;
};

// The --witnesses file:
//   {"quorum": K, "interval_ms": N, "timeout_ms": T, "receipt_timeout_ms": R,
//    "max_receipt_waiters": W, "witnesses": [{"name": "...", "url": "http://...", "key": "..."}]}
struct WitnessingConfig {
  size_t quorum = 0;
  std::chrono::milliseconds interval{1000};          // at most one new checkpoint offered per interval
  std::chrono::milliseconds timeout{5000};           // per witness submission (including a 409 retry)
  std::chrono::milliseconds receipt_timeout{10000};  // how long a receipt waits for a witnessed checkpoint
  size_t max_receipt_waiters = 16;                   // requests waiting at once; more get 503 at once
  std::vector<WitnessConfig> witnesses;
};

// ParseWitnessingConfig parses and validates the file's text. Unknown
// fields, duplicate names or keys, malformed keys or URLs, and a quorum
// larger than the number of witnesses are InvalidArgument.
ledger::StatusOr<WitnessingConfig> ParseWitnessingConfig(std::string_view text);
// LoadWitnessingConfig reads and parses |path|.
ledger::StatusOr<WitnessingConfig> LoadWitnessingConfig(const std::string& path);

// A log-signed checkpoint with the cosignature lines appended.
struct WitnessedCheckpoint {
  uint64_t size = 0;
  ledger::Hash root{};
  std::string note;      // the signed note: log signature line, then cosignature lines
  size_t cosigners = 0;  // distinct configured witnesses that cosigned it
};

class Witnessing {
 public:
  // Create validates |config| (parses every key). |store| must outlive this
  // object. |state_file| is where the witnessed checkpoint is kept ("" to
  // keep nothing).
  static ledger::StatusOr<std::unique_ptr<Witnessing>> Create(ledger::Store* store, const ledger::NoteVerifier& log_key,
                                                              WitnessingConfig config, std::string state_file);
  ~Witnessing();  // Stop()
  Witnessing(const Witnessing&) = delete;
  Witnessing& operator=(const Witnessing&) = delete;

  // Start loads the state file (if any) and starts the threads.
  ledger::Status Start();
  // Stop wakes every waiter (Unavailable) and joins the threads; a worker in
  // the middle of a request finishes it first (at most timeout_ms).
  void Stop();

  size_t quorum() const { return config_.quorum; }
  size_t witness_count() const { return witnesses_.size(); }
  // enforced: K > 0, so /checkpoint and receipts use witnessed checkpoints.
  bool enforced() const { return config_.quorum > 0; }
  std::chrono::milliseconds receipt_timeout() const { return config_.receipt_timeout; }

  // Current returns the newest checkpoint with at least K cosignatures, or
  // null if there is none yet (or K = 0).
  std::shared_ptr<const WitnessedCheckpoint> Current() const;

  // WaitFor blocks until a witnessed checkpoint of at least |size| exists and
  // returns it; Unavailable, with a reason naming the witnesses' state, when
  // |timeout| passes first, on Stop, or at once when max_receipt_waiters
  // requests are already waiting. It also wakes the submitter, so a new
  // checkpoint is offered without waiting for the next poll.
  ledger::StatusOr<std::shared_ptr<const WitnessedCheckpoint>> WaitFor(uint64_t size,
                                                                       std::chrono::milliseconds timeout);

  // Notify tells the submitter the log may have grown.
  void Notify();

  const WitnessingStats& stats() const { return stats_; }

 private:
  struct Job;
  struct Witness;
  struct Candidate {
    uint64_t size = 0;
    ledger::Hash root{};
    std::string note;                      // log-signed
    std::map<size_t, std::string> lines;   // witness index -> cosignature line
  };
  struct Outcome;

  Witnessing(ledger::Store* store, const ledger::NoteVerifier& log_key, WitnessingConfig config,
             std::string state_file);
  void LoadState();
  void RunSubmitter();
  void RunWorker(size_t index);
  Outcome Submit(Witness& w, const Job& job, uint64_t known_size, bool known);
  // Called with mu_ held.
  void Deliver(size_t index, const Job& job, const std::string& line);
  void Persist();
  std::string DescribeWitnessesLocked() const;

  ledger::Store* store_;
  ledger::NoteVerifier log_key_;
  WitnessingConfig config_;
  std::string state_file_;
  std::vector<std::unique_ptr<Witness>> witnesses_;
  WitnessingStats stats_;

  mutable std::mutex mu_;
  std::condition_variable submitter_cv_;  // new checkpoint or stop
  std::condition_variable workers_cv_;    // new job or stop
  std::condition_variable waiters_cv_;    // new witnessed checkpoint or stop
  bool stopping_ = false;
  bool started_ = false;
  bool kicked_ = false;
  size_t waiters_ = 0;  // requests inside WaitFor
  uint64_t next_seq_ = 1;
  std::map<uint64_t, Candidate> candidates_;              // by tree size
  std::shared_ptr<const WitnessedCheckpoint> current_;    // K > 0 only

  std::mutex persist_mu_;
  std::string persisted_note_;  // guarded by persist_mu_

  std::mutex stop_mu_;  // serialises Start and Stop (joins)
  std::thread submitter_;
};

}  // namespace ledgerd

#endif  // LEDGER_SERVER_WITNESSING_H_
