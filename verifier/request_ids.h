// The audit's derived state in a compact form. The rules (ledger/rules.h)
// keep one state key per access, "r/<accessor>/<request id>" ->
// "<index> <hex SHA-256 of the payload>", so that a request id reused
// anywhere in the log is caught. Held as strings in a std::map that is
// ~280 bytes per access; here it is a 64-bit keyed fingerprint of the key
// and the entry's index (13 bytes a slot, ~17-35 bytes an access with the
// table's load), and the exact value is rebuilt on demand from the log:
// when a key's fingerprint matches, the entry at the recorded index is read
// again (through an EntrySource that proves it is in the audited tree) and
// its request key and payload hash are compared exactly. In an honest log
// that never happens (fingerprints are SipHash-2-4 under a random key, so
// a log cannot aim for collisions); each reused request id costs one read.
//
// Thread-safety: none; used by the audit's replay thread only.
#ifndef LEDGER_VERIFIER_REQUEST_IDS_H_
#define LEDGER_VERIFIER_REQUEST_IDS_H_

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/rules.h"
#include "ledger/status.h"

namespace verifier {

// RequestIdSet maps 64-bit fingerprints to entry indexes (several indexes
// may share a fingerprint). Indexes must be below 2^40.
//
// Memory is bounded by |memory_budget|: the in-memory tables grow up to
// 7/8 of it, and then their contents are sorted and appended to a
// temporary spill file as a run (16 bytes an id), and the tables are
// emptied (their memory kept for the next ids). A run keeps in memory only
// the first fingerprint of each 4 KiB block (8 bytes per 256 ids); a
// lookup reads one block of each run with pread, unless a fixed-size
// one-hash Bloom filter over the spilled ids (the last 1/8 of the budget)
// rules the fingerprint out, as it does for most absent ids until the
// spilled ids approach its bit count. Runs are merged into one when there
// are more than eight. The spill file is created (and at once unlinked, so it goes away
// with the process however it ends) in |spill_dir|, or $TMPDIR, or /tmp;
// it is read and written with pread/pwrite, never mapped, so it is not in
// the process's resident set.
class RequestIdSet {
 public:
  static constexpr uint64_t kDefaultMemoryBudget = uint64_t{32} << 20;

  // |fingerprint_bits| narrows the fingerprints (tests force collisions);
  // the key is random unless |key| (16 bytes) is given.
  explicit RequestIdSet(unsigned fingerprint_bits = 64, const ledger::Bytes& key = ledger::Bytes(),
                        uint64_t memory_budget = kDefaultMemoryBudget, std::string spill_dir = "");
  ~RequestIdSet();
  RequestIdSet(RequestIdSet&&) noexcept;
  RequestIdSet& operator=(RequestIdSet&&) noexcept;
  RequestIdSet(const RequestIdSet&) = delete;
  RequestIdSet& operator=(const RequestIdSet&) = delete;

  uint64_t Fingerprint(ledger::ByteView state_key) const;
  // Find appends to |out| every index recorded under |fp|; IOError if the
  // spill file cannot be read.
  ledger::Status Find(uint64_t fp, std::vector<uint64_t>* out) const;
  // Insert records |index| under |fp|; InvalidArgument if index >= 2^40,
  // IOError if the tables had to be spilled and that failed.
  ledger::Status Insert(uint64_t fp, uint64_t index);
  // Replace changes the index recorded under |fp| from |from| to |to|.
  ledger::Status Replace(uint64_t fp, uint64_t from, uint64_t to);

  uint64_t size() const { return size_; }
  // memory_bytes is the tables' allocated size plus the runs' block index.
  uint64_t memory_bytes() const;
  // spilled is the number of ids in the spill file; runs its runs.
  uint64_t spilled() const;
  size_t runs() const;
  uint64_t memory_budget() const { return budget_; }
  const std::string& spill_dir() const { return spill_dir_; }
  const ledger::Bytes& key() const { return key_; }
  unsigned fingerprint_bits() const { return bits_; }
  // ForEach calls |fn| on every (fp, index) pair (the in-memory ones first,
  // then each run in fingerprint order); IOError if a run cannot be read.
  ledger::Status ForEach(const std::function<void(uint64_t fp, uint64_t index)>& fn) const;

 private:
  // One of 256 open-addressing (linear probing) tables chosen by the
  // fingerprint's top byte, so growing one never doubles the whole set.
  struct Shard {
    std::vector<uint64_t> fps;    // 0 = empty slot
    std::vector<uint32_t> lo;     // index bits 0..31
    std::vector<uint8_t> hi;      // index bits 32..39
    uint64_t used = 0;
  };
  struct Spill;  // the spill file and its runs (request_ids.cc)
  static uint64_t Stored(uint64_t fp) { return fp == 0 ? 1 : fp; }
  Shard& ShardOf(uint64_t fp) { return shards_[(fp >> 56) & 0xff]; }
  const Shard& ShardOf(uint64_t fp) const { return shards_[(fp >> 56) & 0xff]; }
  static void Grow(Shard& s);
  static void Put(Shard& s, uint64_t fp, uint64_t index);
  static uint64_t ShardBytes(size_t slots) { return slots * 13; }
  // SpillTables writes the in-memory ids to the spill file as one run and
  // empties the tables.
  ledger::Status SpillTables();

  unsigned bits_;
  ledger::Bytes key_;  // crypto_shorthash key
  uint64_t budget_;
  std::string spill_dir_;
  std::vector<Shard> shards_;
  uint64_t table_bytes_ = 0;  // sum of ShardBytes over the shards
  uint64_t size_ = 0;
  std::unique_ptr<Spill> spill_;
};

// AuditStateStore is the audit's ledger::StateStore: request keys ("r/...")
// in a RequestIdSet, resolved exactly through |resolve|, everything else
// (holders, keys, policies: a few keys per party) in a MemoryStateStore.
class AuditStateStore : public ledger::StateStore {
 public:
  // ResolvedRequest is what the access entry at an index says: its state
  // key and the rules' value for it ("<index> <hex SHA-256 of payload>"),
  // or nullopt for an entry that is not a valid access.
  struct ResolvedRequest {
    std::string key;
    std::string value;
  };
  using Resolver = std::function<ledger::StatusOr<std::optional<ResolvedRequest>>(uint64_t index)>;

  explicit AuditStateStore(RequestIdSet ids = RequestIdSet()) : ids_(std::move(ids)) {}
  void set_resolver(Resolver r) { resolve_ = std::move(r); }

  ledger::StatusOr<std::optional<ledger::Bytes>> Get(ledger::ByteView key) override;
  ledger::Status Put(ledger::ByteView key, ledger::ByteView value) override;
  // Delete: request keys are never deleted by the rules (Internal).
  ledger::Status Delete(ledger::ByteView key) override;

  // MaybeSeen tells whether |request_key| may have been recorded (false:
  // it has certainly not; true: Get decides), and sets *fp to its
  // fingerprint (for RecordNew).
  ledger::StatusOr<bool> MaybeSeen(ledger::ByteView request_key, uint64_t* fp) const;
  // RecordNew records a request key known not to be present, by its
  // fingerprint |fp|, at |index| (what the rules' Apply would Put, without
  // computing its value).
  ledger::Status RecordNew(uint64_t fp, uint64_t index);

  const RequestIdSet& ids() const { return ids_; }
  RequestIdSet& mutable_ids() { return ids_; }
  const ledger::MemoryStateStore& others() const { return others_; }
  ledger::MemoryStateStore& mutable_others() { return others_; }
  uint64_t resolutions() const { return resolutions_; }

 private:
  ledger::StatusOr<std::optional<ResolvedRequest>> Resolve(uint64_t index);

  RequestIdSet ids_;
  ledger::MemoryStateStore others_;
  Resolver resolve_;
  uint64_t resolutions_ = 0;
  // A few recent resolutions, so a request id reused many times costs one
  // read of its first entry.
  std::list<uint64_t> lru_;
  std::unordered_map<uint64_t, std::pair<std::optional<ResolvedRequest>, std::list<uint64_t>::iterator>> cache_;
};

// RequestKeyOf is the rules' state key of an access's request id
// (ledger/rules.h: "r/<accessor>/<request id>").
std::string RequestKeyOf(const std::string& accessor, const std::string& request_id);

// ResolvedRequestOf returns the state key and value of the access entry
// |entry| at |index|, nullopt if it is not a valid access entry.
std::optional<AuditStateStore::ResolvedRequest> ResolvedRequestOf(ledger::ByteView entry, uint64_t index);

}  // namespace verifier

#endif  // LEDGER_VERIFIER_REQUEST_IDS_H_
