#include "ledger/store.h"

#include <lmdb.h>
#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

#include "ledger/tiles.h"
#include "lmdb_txn.h"

namespace ledger {
namespace {

constexpr int kGroupHeight = 4;            // tree levels per stored group
constexpr uint64_t kChunkWidth = 16;       // hashes per stored chunk (2^kGroupHeight)
constexpr int kGroups = 64 / kGroupHeight;  // groups 0..15 cover levels 0..63
constexpr char kFormatVersion[] = "5";  // SPEC.md §7; "1" to "4" are migrated on open
constexpr uint64_t kBundleWidth = 256;      // entries per stored bundle (C2SP entry bundle)
constexpr size_t kChunkBytes = kChunkWidth * 32;

Status LmdbError(const char* what, int rc) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) return Status::ResourceExhausted(msg + " (the LMDB map is full; restart with a larger --map-size)");
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID) return Status::Corruption(msg);
  return Status::IOError(msg);
}

MDB_val Val(ByteView b) { return MDB_val{b.size(), const_cast<char*>(b.data())}; }
ByteView View(const MDB_val& v) { return ByteView(static_cast<const char*>(v.mv_data), v.mv_size); }

std::string IndexKey(uint64_t i) {
  std::string k;
  AppendU64(&k, i);
  return k;
}

// ChunkKeyV2 is the format-2 key of a hash chunk (read by the migration).
std::string ChunkKeyV2(int group, uint64_t chunk) {
  std::string k(1, static_cast<char>(group));
  AppendU64(&k, chunk);
  return k;
}

// ChunkCreationLeaf is the index of the leaf whose append creates the first
// hash of chunk |chunk| of |group|: chunk * 16^(group+1) + 16^group - 1.
// At most one chunk is created per leaf index (the one whose group is the
// position of index + 1's lowest non-zero hex digit, if that digit is 1),
// so these keys are unique
// and grow in creation order: every new chunk is appended at the end of
// `tree` (format 3). nullopt if beyond 2^64 (such a chunk never exists).
std::optional<uint64_t> ChunkCreationLeaf(int group, uint64_t chunk) {
  int shift = kGroupHeight * (group + 1);
  uint64_t low = (uint64_t{1} << (kGroupHeight * group)) - 1;
  if (shift >= 64) return chunk == 0 ? std::optional<uint64_t>(low) : std::nullopt;
  if (chunk > (UINT64_MAX >> shift)) return std::nullopt;
  return (chunk << shift) + low;
}

// ChunkFill is how many hashes chunk |chunk| of |group| holds at tree size
// |size| (0: not yet created).
uint64_t ChunkFill(int group, uint64_t chunk, uint64_t size) {
  uint64_t count = size >> (kGroupHeight * group);
  if (chunk >= count / kChunkWidth + (count % kChunkWidth != 0)) return 0;
  return std::min<uint64_t>(kChunkWidth, count - chunk * kChunkWidth);
}


// Cursor owns an MDB_cursor.
class Cursor {
 public:
  ~Cursor() {
    if (c_) mdb_cursor_close(c_);
  }
  int Open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &c_); }
  MDB_cursor* get() const { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
};

struct EnvCloser {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};

// PerfectRoot reduces 2^k consecutive sibling hashes to their subtree root.
// count is at most 2^(kGroupHeight-1) = 8, so this never allocates.
Hash PerfectRoot(const uint8_t* hashes, uint64_t count) {
  Hash level[8];
  for (uint64_t i = 0; i < count; i++) std::memcpy(level[i].data(), hashes + 32 * i, 32);
  for (uint64_t n = count; n > 1; n /= 2)
    for (uint64_t i = 0; i < n / 2; i++) level[i] = HashChildren(level[2 * i], level[2 * i + 1]);
  return level[0];
}

// PartialChunk is the last, growing chunk of one group.
struct PartialChunk {
  uint64_t chunk = 0;
  Bytes hashes;  // < 16 * 32 bytes
};

using Partials = std::array<PartialChunk, kGroups>;

struct Dbis {
  MDB_dbi entries = 0, bundles = 0, tree = 0, leafruns = 0, leafbloom = 0, meta = 0, state = 0, keys = 0;
};

// PendingLeaves indexes the leaf hashes appended since the last merge into
// the LMDB leaf index. Inserting random hash keys into a B-tree costs about
// one page write per entry (measured: 13 KB written per 256-byte entry at
// 1000 entries per commit), so new leaves are indexed in memory and merged
// in large sorted runs. The durable source of truth for pending leaves is the
// level-0 hashes, from which Open rebuilds this index. Snapshots hold the
// generation they started with, so a merge never hides a leaf from them.
// Thread-safety: internally synchronised.
class PendingLeaves {
 public:
  // |expected| sizes the table (it grows past that if needed): an
  // open-addressing table of (prefix, index + 1) slots, so an add or a
  // probe touches one slot (a cache line) instead of a bucket and a node.
  explicit PendingLeaves(uint64_t expected = 0) {
    size_t slots = 16;
    while (slots < expected * 2) slots *= 2;  // load below 1/2
    slots_.resize(slots);
  }
  void Add(uint64_t prefix, uint64_t index) {
    std::lock_guard<std::mutex> l(mu_);
    if ((used_ + 1) * 4 > slots_.size() * 3) Grow();
    Put(prefix, index);
  }
  // Candidates returns the indexes below |size| whose leaf hash has |prefix|.
  std::vector<uint64_t> Candidates(uint64_t prefix, uint64_t size) const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<uint64_t> out;
    const size_t mask = slots_.size() - 1;
    for (size_t i = prefix & mask; slots_[i].index_plus1 != 0; i = (i + 1) & mask)
      if (slots_[i].prefix == prefix && slots_[i].index_plus1 - 1 < size) out.push_back(slots_[i].index_plus1 - 1);
    return out;
  }
  size_t size() const {
    std::lock_guard<std::mutex> l(mu_);
    return used_;
  }
  // ForEach calls |fn(prefix, index)| for every leaf, in no order.
  template <typename Fn>
  void ForEach(Fn fn) const {
    std::lock_guard<std::mutex> l(mu_);
    for (const Slot& slot : slots_)
      if (slot.index_plus1 != 0) fn(slot.prefix, slot.index_plus1 - 1);
  }
  // Clear empties the table, keeping its memory.
  void Clear() {
    std::lock_guard<std::mutex> l(mu_);
    std::fill(slots_.begin(), slots_.end(), Slot{});
    used_ = 0;
  }
  // Sorted returns (prefix, index) pairs in key order, for the merge.
  std::vector<std::pair<uint64_t, uint64_t>> Sorted() const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<std::pair<uint64_t, uint64_t>> out;
    out.reserve(used_);
    for (const Slot& slot : slots_)
      if (slot.index_plus1 != 0) out.emplace_back(slot.prefix, slot.index_plus1 - 1);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  struct Slot {
    uint64_t prefix = 0;
    uint64_t index_plus1 = 0;  // 0: empty
  };
  // Put inserts without locking or growing. Prefixes are hash bytes, so
  // their low bits pick the slot.
  void Put(uint64_t prefix, uint64_t index) {
    const size_t mask = slots_.size() - 1;
    size_t i = prefix & mask;
    while (slots_[i].index_plus1 != 0) i = (i + 1) & mask;
    slots_[i] = Slot{prefix, index + 1};
    used_++;
  }
  void Grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    used_ = 0;
    for (const Slot& slot : old)
      if (slot.index_plus1 != 0) Put(slot.prefix, slot.index_plus1 - 1);
  }

  mutable std::mutex mu_;
  std::vector<Slot> slots_;
  size_t used_ = 0;
};

uint64_t PrefixOf(const Hash& h) { return LoadU64(h.data()); }

// ---------------------------------------------------------------------------
// Leaf index (format 2): a leveled LSM of sorted runs.
//
// Leaves not yet in a run are indexed in memory (PendingLeaves). Once
// leaf_index_merge_threshold (T) of them are pending, they are frozen and
// merged into the first level L >= 1 whose capacity T * 8^L holds them
// together with every run of levels 1..L; those runs are replaced by the
// merged one. The merge is spread over the following commits (LeafMerge).
// Each level holds at most one run, so a lookup probes the pending table,
// the frozen leaves and at most ~log8(n / T) runs (2 at 10M leaves), and
// a leaf is rewritten about 4 times (at most 8) per level it passes through:
// the merge cost per leaf is bounded by the number of levels instead of
// growing with the log, as merging into one B-tree of random keys did.
//
// A run is stored in `leafruns` as blocks of up to kRunBlockPairs pairs,
// sorted by (prefix, index): a pair is the leaf hash's first 6 bytes then
// the leaf index as 5 bytes, big-endian (11 bytes). A block's key is
// u64be run id || the block's first 6-byte prefix; blocks of 4070 bytes
// fill exactly one 4 KiB LMDB overflow page. Run ids only grow, so every
// block is written with MDB_APPEND (full pages, no splits). The runs'
// directory is the meta value `leafruns`: per run, u64be id || u8 level ||
// u64be pair count.

constexpr size_t kPrefixBytes = 6;
constexpr size_t kIndexBytes = 5;
constexpr size_t kPairBytes = kPrefixBytes + kIndexBytes;
constexpr size_t kRunBlockPairs = 370;  // 4070 bytes: one overflow page with its 16-byte header
constexpr uint64_t kMaxIndexedLeaf = uint64_t{1} << (8 * kIndexBytes);
constexpr uint64_t kLevelFanout = 8;

struct LeafPair {
  uint64_t prefix;  // top 48 bits of the leaf hash (prefix >> 16 of PrefixOf)
  uint64_t index;
  bool operator<(const LeafPair& o) const { return prefix != o.prefix ? prefix < o.prefix : index < o.index; }
};

uint64_t Prefix48(uint64_t prefix64) { return prefix64 >> 16; }

void PutBE(char* out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = static_cast<char>(v >> (8 * (n - 1 - i)));
}
// Be64 reads 8 bytes big-endian (compilers turn the loop into one load).
inline uint64_t Be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// DecodePair reads one 11-byte pair with two 8-byte loads inside it (the
// merge and lookups decode every pair they pass).
inline LeafPair DecodePair(const char* p) {
  return LeafPair{Be64(p) >> 16, Be64(p + 3) & ((uint64_t{1} << 40) - 1)};
}

struct LeafRun {
  uint64_t id = 0;
  uint8_t level = 0;
  uint64_t count = 0;
  bool bloom = false;  // has a Bloom filter (not stored in the directory: found on load)
};

std::string EncodeRuns(const std::vector<LeafRun>& runs) {
  std::string out;
  for (const LeafRun& r : runs) {
    AppendU64(&out, r.id);
    out.push_back(static_cast<char>(r.level));
    AppendU64(&out, r.count);
  }
  return out;
}

StatusOr<std::vector<LeafRun>> DecodeRuns(ByteView v) {
  if (v.size() % 17 != 0) return Status::Corruption("meta leafruns has a bad length");
  std::vector<LeafRun> runs;
  for (size_t i = 0; i < v.size(); i += 17) {
    LeafRun r;
    r.id = LoadU64(v.data() + i);
    r.level = static_cast<uint8_t>(v[i + 8]);
    r.count = LoadU64(v.data() + i + 9);
    if (r.level == 0 || r.level > 30) return Status::Corruption("meta leafruns has a bad level");
    runs.push_back(r);
  }
  return runs;
}

StatusOr<std::vector<LeafRun>> LoadRuns(MDB_txn* txn, MDB_dbi meta) {
  std::string key = "leafruns";
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn, meta, &k, &v);
  if (rc == MDB_NOTFOUND) return std::vector<LeafRun>();
  if (rc != 0) return LmdbError("reading leaf runs", rc);
  return DecodeRuns(View(v));
}

std::string BlockKey(uint64_t run, uint64_t prefix48) {
  std::string k;
  AppendU64(&k, run);
  k.resize(8 + kPrefixBytes);
  PutBE(&k[8], prefix48, kPrefixBytes);
  return k;
}

// Leaf-index Bloom filters. Every run written since 2026-12-01 has one in
// the `leafbloom` database, so that a lookup of a new leaf (every append
// looks its leaf up) skips a run after reading one 64-byte block instead
// of a B-tree leaf and a block of the run: that probe was most of the
// append's cost growth with the log. A filter has 10 bits per leaf in
// 512-bit blocks; the block of a leaf is chosen by its 48-bit prefix
// (prefix * blocks >> 48, so a run's sorted pairs fill the blocks in
// order and a merge writes them as it goes), and 7 bits in the block by
// Mix64(prefix). Blocks are stored 1023 per value (65,472 bytes: 16 pages,
// which LMDB frees after the commit instead of keeping them for reuse)
// under an integer key (MDB_INTEGERKEY, native byte order) run id * 2^32 +
// chunk number, so that the database has few keys and a lookup compares
// integers; a chunk that no leaf falls into is not stored. Runs without a
// filter (older stores) are always probed.
constexpr uint64_t kBloomBitsPerLeaf = 10;
constexpr size_t kBloomBlockBytes = 64;
constexpr uint64_t kBloomChunkBlocks = 1023;
constexpr int kBloomProbes = 7;

uint64_t BloomBlocks(uint64_t count) {
  return std::max<uint64_t>(1, (count * kBloomBitsPerLeaf + kBloomBlockBytes * 8 - 1) / (kBloomBlockBytes * 8));
}
uint64_t BloomBlockOf(uint64_t prefix48, uint64_t blocks) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(prefix48) * blocks) >> 48);
}
void BloomSet(char* block, uint64_t prefix48) {
  uint64_t h = Mix64(prefix48);
  for (int i = 0; i < kBloomProbes; i++, h >>= 9) block[(h & 511) >> 3] |= static_cast<char>(1u << (h & 7));
}
bool BloomTest(const char* block, uint64_t prefix48) {
  uint64_t h = Mix64(prefix48);
  for (int i = 0; i < kBloomProbes; i++, h >>= 9)
    if ((static_cast<uint8_t>(block[(h & 511) >> 3]) & (1u << (h & 7))) == 0) return false;
  return true;
}
uint64_t BloomKey(uint64_t run, uint64_t chunk) { return run << 32 | chunk; }
MDB_val BloomVal(const uint64_t& key) { return MDB_val{sizeof key, const_cast<uint64_t*>(&key)}; }

// RunProbe is a run as lookups see it within one read transaction: its
// filter's chunks, located once each (LMDB keeps values of a read
// transaction in place until it ends).
struct RunProbe {
  LeafRun run;
  std::vector<const char*> chunks;  // nullptr: not yet read; kNoChunk: none stored
};
const char kNoChunkByte = 0;
const char* const kNoChunk = &kNoChunkByte;

// BloomMayContain is false only if |probe|'s run holds no pair with
// |prefix48|. |txn| must be a read-only transaction (see RunProbe).
StatusOr<bool> BloomMayContain(MDB_txn* txn, MDB_dbi dbi, RunProbe* probe, uint64_t prefix48) {
  const LeafRun& run = probe->run;
  if (!run.bloom) return true;
  const uint64_t blocks = BloomBlocks(run.count), block = BloomBlockOf(prefix48, blocks);
  const uint64_t chunk = block / kBloomChunkBlocks;
  if (probe->chunks.empty()) probe->chunks.assign(blocks / kBloomChunkBlocks + 1, nullptr);
  const char*& at = probe->chunks[chunk];
  if (at == nullptr) {
    const uint64_t key = BloomKey(run.id, chunk);
    MDB_val k = BloomVal(key), v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError("reading leaf index filter", rc);
    const uint64_t in_chunk = std::min(kBloomChunkBlocks, blocks - chunk * kBloomChunkBlocks);
    if (rc == 0 && v.mv_size != in_chunk * kBloomBlockBytes)
      return Status::Corruption("leaf index filter chunk has a bad length");
    at = rc == MDB_NOTFOUND ? kNoChunk : static_cast<const char*>(v.mv_data);
  }
  if (at == kNoChunk) return false;  // no leaf of the run falls into this chunk
  return BloomTest(at + (block % kBloomChunkBlocks) * kBloomBlockBytes, prefix48);
}

// LoadRunsForLookup is LoadRuns with each run's |bloom| flag set.
StatusOr<std::vector<RunProbe>> LoadRunsForLookup(MDB_txn* txn, const Dbis& dbis) {
  LEDGER_ASSIGN_OR_RETURN(std::vector<LeafRun> runs, LoadRuns(txn, dbis.meta));
  std::vector<RunProbe> out;
  if (runs.empty()) return out;
  Cursor cur;
  int rc = cur.Open(txn, dbis.leafbloom);
  if (rc != 0) return LmdbError("opening cursor", rc);
  for (LeafRun& r : runs) {
    const uint64_t key = BloomKey(r.id, 0);
    MDB_val k = BloomVal(key), v;
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError("reading leaf index filter", rc);
    uint64_t found = 0;
    if (rc == 0 && k.mv_size == sizeof found) std::memcpy(&found, k.mv_data, sizeof found);
    r.bloom = rc == 0 && found >> 32 == r.id;
    out.push_back(RunProbe{r, {}});
  }
  return out;
}

// BloomWriter writes one new run's filter in block order, a chunk at a
// time (a partial chunk waits in memory). Copyable.
class BloomWriter {
 public:
  BloomWriter(MDB_dbi dbi, uint64_t run, uint64_t count) : dbi_(dbi), run_(run), blocks_(BloomBlocks(count)) {}
  // Add sets |prefix48|'s bits; prefixes must not decrease.
  Status Add(MDB_txn* txn, uint64_t prefix48) {
    const uint64_t block = BloomBlockOf(prefix48, blocks_), chunk = block / kBloomChunkBlocks;
    if (chunk != chunk_) {
      LEDGER_RETURN_IF_ERROR(Flush(txn));
      chunk_ = chunk;
    }
    if (chunk_bytes_.empty())
      chunk_bytes_.assign(std::min(kBloomChunkBlocks, blocks_ - chunk_ * kBloomChunkBlocks) * kBloomBlockBytes, '\0');
    BloomSet(&chunk_bytes_[(block % kBloomChunkBlocks) * kBloomBlockBytes], prefix48);
    return Status::OK();
  }
  Status Flush(MDB_txn* txn) {
    if (chunk_bytes_.empty()) return Status::OK();
    const uint64_t key = BloomKey(run_, chunk_);
    MDB_val k = BloomVal(key), v = Val(chunk_bytes_);
    int rc = mdb_put(txn, dbi_, &k, &v, MDB_APPEND);
    if (rc != 0) return LmdbError("writing leaf index filter", rc);
    chunk_bytes_.clear();
    return Status::OK();
  }

 private:
  MDB_dbi dbi_;
  uint64_t run_;
  uint64_t blocks_;
  uint64_t chunk_ = 0;
  std::string chunk_bytes_;  // empty: no partial chunk
};

// ScanBlock appends to |out| the indexes below |size| paired with |prefix48|
// in one stored block.
Status ScanBlock(ByteView block, uint64_t prefix48, uint64_t size, std::vector<uint64_t>* out) {
  if (block.empty() || block.size() % kPairBytes != 0) return Status::Corruption("leaf index block has a bad length");
  size_t n = block.size() / kPairBytes;
  // First pair with prefix >= prefix48.
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if ((Be64(block.data() + mid * kPairBytes) >> 16) < prefix48) lo = mid + 1;
    else hi = mid;
  }
  for (size_t i = lo; i < n; i++) {
    const char* p = block.data() + i * kPairBytes;
    LeafPair pair = DecodePair(p);
    if (pair.prefix != prefix48) break;
    if (pair.index < size) out->push_back(pair.index);
  }
  return Status::OK();
}

// RunCandidates appends the indexes in run |run| whose prefix is |prefix48|.
// Blocks' first prefixes strictly increase (RunWriter::Add), so they are in
// the block that starts with it, if any, and in the block before the first
// one starting at or after it.
Status RunCandidates(MDB_cursor* cur, uint64_t run, uint64_t prefix48, uint64_t size, std::vector<uint64_t>* out) {
  std::string key = BlockKey(run, prefix48);
  MDB_val k = Val(key), v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  if (rc == 0) {
    if (k.mv_size == key.size() && std::memcmp(k.mv_data, key.data(), key.size()) == 0)
      LEDGER_RETURN_IF_ERROR(ScanBlock(View(v), prefix48, size, out));
    rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
  } else if (rc == MDB_NOTFOUND) {
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
  }
  if (rc == MDB_NOTFOUND) return Status::OK();
  if (rc != 0) return LmdbError("reading leaf index", rc);
  if (k.mv_size != 8 + kPrefixBytes) return Status::Corruption("leaf index key has a bad length");
  if (LoadU64(k.mv_data) != run) return Status::OK();
  return ScanBlock(View(v), prefix48, size, out);
}

// RunReader streams the pairs of one run in order. It keeps no LMDB
// handle between calls (each Next takes the current transaction), so a
// merge can read its inputs across several write transactions.
// Copyable.
class RunReader {
 public:
  RunReader(MDB_dbi dbi, uint64_t run) : dbi_(dbi), run_(run) {}
  // Next sets *p to the next pair; false at the end. Errors go to status().
  bool Next(MDB_txn* txn, LeafPair* p) {
    if (pos_ >= block_.size()) {
      if (!Load(txn)) return false;
    }
    *p = DecodePair(block_.data() + pos_);
    pos_ += kPairBytes;
    return true;
  }
  const Status& status() const { return status_; }

 private:
  // Load reads the next block. Each read seeks afresh: the transaction is
  // appending the merged run meanwhile.
  bool Load(MDB_txn* txn) {
    if (done_) return false;
    Cursor cur;
    int rc = cur.Open(txn, dbi_);
    if (rc != 0) return Fail(LmdbError("opening cursor", rc));
    MDB_val k, v;
    if (last_key_.empty()) {
      last_key_ = BlockKey(run_, 0);
      k = Val(last_key_);
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    } else {
      k = Val(last_key_);
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_KEY);
      if (rc == 0) rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 8 + kPrefixBytes || LoadU64(k.mv_data) != run_))) {
      done_ = true;
      return false;
    }
    if (rc != 0) return Fail(LmdbError("reading leaf index", rc));
    if (v.mv_size == 0 || v.mv_size % kPairBytes != 0)
      return Fail(Status::Corruption("leaf index block has a bad length"));
    last_key_.assign(static_cast<const char*>(k.mv_data), k.mv_size);
    block_.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    pos_ = 0;
    return true;
  }
  bool Fail(Status s) {
    status_ = std::move(s);
    done_ = true;
    return false;
  }

  MDB_dbi dbi_;
  uint64_t run_;
  std::string last_key_;
  std::string block_;
  size_t pos_ = 0;
  bool done_ = false;
  Status status_;
};

// RunWriter writes one new run's blocks in order; a partial block waits in
// memory until it fills (or Flush), so a run can span transactions.
// Copyable.
class RunWriter {
 public:
  RunWriter(MDB_dbi dbi, uint64_t run) : dbi_(dbi), run_(run) {}
  // Add appends the next pair. A full block is flushed first unless the
  // pair has the block's first prefix, so that blocks' first prefixes (their
  // keys) strictly increase; only 370 leaves sharing 48 hash bits would make
  // a block longer than one page.
  Status Add(MDB_txn* txn, const LeafPair& p) {
    if (block_.size() >= kRunBlockPairs * kPairBytes && p.prefix != first_) LEDGER_RETURN_IF_ERROR(Flush(txn));
    if (block_.empty()) {
      first_ = p.prefix;
      block_.reserve((kRunBlockPairs + 1) * kPairBytes);
    }
    char pair[kPairBytes];
    PutBE(pair, p.prefix, kPrefixBytes);
    PutBE(pair + kPrefixBytes, p.index, kIndexBytes);
    block_.append(pair, kPairBytes);
    count_++;
    return Status::OK();
  }
  Status Flush(MDB_txn* txn) {
    if (block_.empty()) return Status::OK();
    std::string key = BlockKey(run_, first_);
    MDB_val k = Val(key), v = Val(block_);
    int rc = mdb_put(txn, dbi_, &k, &v, MDB_APPEND);
    if (rc != 0) return LmdbError("writing leaf index", rc);
    block_.clear();
    return Status::OK();
  }
  uint64_t count() const { return count_; }

 private:
  MDB_dbi dbi_;
  uint64_t run_;
  std::string block_;
  uint64_t first_ = 0;
  uint64_t count_ = 0;
};

// DeleteRunsFrom deletes the blocks and filter chunks of runs with ids in
// [first_run, last_run].
Status DeleteRunsFrom(MDB_txn* txn, const Dbis& dbis, uint64_t first_run, uint64_t last_run = UINT64_MAX) {
  for (bool bloom : {false, true}) {
    Cursor cur;
    int rc = cur.Open(txn, bloom ? dbis.leafbloom : dbis.leafruns);
    if (rc != 0) return LmdbError("opening cursor", rc);
    const std::string block_key = BlockKey(first_run, 0);
    const uint64_t bloom_key = BloomKey(first_run, 0);
    MDB_val k = bloom ? BloomVal(bloom_key) : Val(block_key), v;
    // The run id of the key at the cursor.
    auto run_of = [&](const MDB_val& key) -> uint64_t {
      uint64_t id = UINT64_MAX;
      if (bloom && key.mv_size == sizeof id) {
        std::memcpy(&id, key.mv_data, sizeof id);
        id >>= 32;
      } else if (!bloom && key.mv_size == 8 + kPrefixBytes) {
        id = LoadU64(key.mv_data);
      }
      return id;
    };
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    while (rc == 0 && run_of(k) <= last_run) {
      if ((rc = mdb_cursor_del(cur.get(), 0)) != 0) return LmdbError("deleting leaf index", rc);
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_GET_CURRENT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND && rc != EINVAL) return LmdbError("deleting leaf index", rc);
  }
  return Status::OK();
}

Status DeleteRun(MDB_txn* txn, const Dbis& dbis, uint64_t run) { return DeleteRunsFrom(txn, dbis, run, run); }

// LevelCapacity is the most pairs a run of |level| may hold.
uint64_t LevelCapacity(uint64_t threshold, int level) {
  uint64_t c = std::max<uint64_t>(threshold, 1);
  for (int i = 0; i < level; i++) {
    if (c > UINT64_MAX / kLevelFanout) return UINT64_MAX;
    c *= kLevelFanout;
  }
  return c;
}

// FrozenLeaves are pending leaves being merged into the leaf index: sorted
// (48-bit prefix, index) pairs, probed by lookups until the merge is
// published. Immutable once made; shared by the merge and by snapshots.
// Prefixes are uniform, so a table of where each top-bits bucket starts
// finds a prefix's pairs with two memory reads instead of a binary search.
struct FrozenLeaves {
  FrozenLeaves() = default;
  explicit FrozenLeaves(std::vector<LeafPair> sorted) : pairs(std::move(sorted)) { Index(); }
  // Index fills |starts| for the sorted |pairs| (reusing its memory).
  void Index() {
    bucket_bits = 1;
    while (bucket_bits < 20 && (uint64_t{4} << bucket_bits) < pairs.size()) bucket_bits++;  // ~4 pairs a bucket
    starts.resize((size_t{1} << bucket_bits) + 1);
    size_t at = 0;
    for (size_t b = 0; b < starts.size() - 1; b++) {
      while (at < pairs.size() && Bucket(pairs[at].prefix) < b) at++;
      starts[b] = at;
    }
    starts.back() = pairs.size();
  }
  size_t Bucket(uint64_t prefix48) const { return static_cast<size_t>(prefix48 >> (48 - bucket_bits)); }
  // Candidates appends the indexes below |size| paired with |prefix48|.
  void Candidates(uint64_t prefix48, uint64_t size, std::vector<uint64_t>* out) const {
    const size_t b = Bucket(prefix48);
    for (size_t i = starts[b]; i < starts[b + 1] && pairs[i].prefix <= prefix48; i++)
      if (pairs[i].prefix == prefix48 && pairs[i].index < size) out->push_back(pairs[i].index);
  }

  std::vector<LeafPair> pairs;
  unsigned bucket_bits = 1;
  std::vector<size_t> starts;  // starts[b]: the first pair of bucket b
};

// LeafMerge is one merge of the leaf index in progress: frozen pending
// leaves and the runs of levels 1..L, into one new run at level L (see the
// comment above). Advance writes a bounded number of pairs per write
// transaction, so no commit rewrites a whole level at once (that made
// multi-second commits at 10M leaves, and LMDB keeps a buffer for every
// page its largest transaction dirtied). The new run is not in the
// directory until Finish, in the transaction that writes its last block,
// publishes it and deletes the merged runs; until then lookups probe the
// frozen leaves and the old runs. After a crash its blocks are
// unreferenced, and the next merge deletes them before it starts (its run
// id is the same: the largest id in the directory plus one).
// Copyable: a commit advances a copy and keeps it only once the
// transaction has committed. Thread-safety: none (the writer's).
class LeafMerge {
 public:
  // Start plans the merge of |incoming| (sorted, at least one pair) into
  // |runs|, the current directory; |indexed_size| is the tree size below
  // which every leaf is in |incoming| or |runs|.
  static StatusOr<LeafMerge> Start(MDB_txn* txn, const Dbis& dbis, std::vector<LeafRun> runs,
                                   std::shared_ptr<const FrozenLeaves> incoming, uint64_t threshold,
                                   uint64_t indexed_size) {
    std::sort(runs.begin(), runs.end(), [](const LeafRun& a, const LeafRun& b) { return a.level < b.level; });
    uint64_t total = incoming->pairs.size();
    int target = 1;
    size_t merged = 0;  // runs[0, merged) go into the new run
    for (;; target++) {
      while (merged < runs.size() && runs[merged].level <= target) total += runs[merged++].count;
      if (total <= LevelCapacity(threshold, target) || target >= 30) break;
    }
    uint64_t new_id = 1;
    for (const LeafRun& r : runs) new_id = std::max(new_id, r.id + 1);
    // Blocks left by a merge that a crash interrupted.
    LEDGER_RETURN_IF_ERROR(DeleteRunsFrom(txn, dbis, new_id));
    LeafMerge m(dbis, new_id, total);
    m.runs_ = std::move(runs);
    m.merged_ = merged;
    m.target_ = target;
    m.total_ = total;
    m.indexed_size_ = indexed_size;
    m.incoming_ = std::move(incoming);
    for (size_t i = 0; i < merged; i++) {
      m.readers_.emplace_back(dbis.leafruns, m.runs_[i].id);
      m.heads_.emplace_back();
      m.live_.push_back(m.readers_.back().Next(txn, &m.heads_.back()));
      LEDGER_RETURN_IF_ERROR(m.readers_.back().status());
    }
    return m;
  }

  // Advance writes up to |budget| more pairs of the new run in |txn|, and
  // the last (partial) block once every input is consumed (then done()).
  Status Advance(MDB_txn* txn, uint64_t budget) {
    for (; budget > 0 && !done_; budget--) {
      // The smallest head among the incoming pairs and the runs (few inputs).
      int best = -1;  // -1: incoming
      const LeafPair* min = in_ < incoming_->pairs.size() ? &incoming_->pairs[in_] : nullptr;
      for (size_t i = 0; i < readers_.size(); i++) {
        if (live_[i] && (min == nullptr || heads_[i] < *min)) {
          min = &heads_[i];
          best = static_cast<int>(i);
        }
      }
      if (min == nullptr) {
        LEDGER_RETURN_IF_ERROR(writer_.Flush(txn));
        LEDGER_RETURN_IF_ERROR(bloom_.Flush(txn));
        if (writer_.count() != total_) return Status::Corruption("leaf index run holds fewer pairs than its directory says");
        done_ = true;
        break;
      }
      LEDGER_RETURN_IF_ERROR(writer_.Add(txn, *min));
      LEDGER_RETURN_IF_ERROR(bloom_.Add(txn, min->prefix));
      if (best < 0) {
        in_++;
      } else {
        live_[best] = readers_[best].Next(txn, &heads_[best]);
        LEDGER_RETURN_IF_ERROR(readers_[best].status());
      }
    }
    return Status::OK();
  }

  // Finish deletes the merged runs and returns the new directory, for the
  // caller to store in the same transaction. Only once done().
  StatusOr<std::vector<LeafRun>> Finish(MDB_txn* txn) {
    if (!done_) return Status::FailedPrecondition("leaf index merge not complete");
    for (size_t i = 0; i < merged_; i++) LEDGER_RETURN_IF_ERROR(DeleteRun(txn, dbis_, runs_[i].id));
    std::vector<LeafRun> out(runs_.begin() + static_cast<std::ptrdiff_t>(merged_), runs_.end());
    out.push_back(LeafRun{new_id_, static_cast<uint8_t>(target_), total_});
    return out;
  }

  bool done() const { return done_; }
  uint64_t total() const { return total_; }
  uint64_t written() const { return writer_.count(); }
  uint64_t indexed_size() const { return indexed_size_; }
  const std::shared_ptr<const FrozenLeaves>& incoming() const { return incoming_; }

 private:
  LeafMerge(const Dbis& dbis, uint64_t new_id, uint64_t total)
      : dbis_(dbis), new_id_(new_id), writer_(dbis.leafruns, new_id), bloom_(dbis.leafbloom, new_id, total) {}

  Dbis dbis_;
  uint64_t new_id_;
  std::vector<LeafRun> runs_;  // the directory at the start, by level
  size_t merged_ = 0;          // runs_[0, merged_) are merged
  int target_ = 1;
  uint64_t total_ = 0;
  uint64_t indexed_size_ = 0;
  std::shared_ptr<const FrozenLeaves> incoming_;
  size_t in_ = 0;
  std::vector<RunReader> readers_;
  std::vector<LeafPair> heads_;
  std::vector<bool> live_;
  RunWriter writer_;
  BloomWriter bloom_;
  bool done_ = false;
};

// MergeLeafRuns merges the sorted |incoming| pairs into the runs at once
// (a migration) and returns the new directory.
StatusOr<std::vector<LeafRun>> MergeLeafRuns(MDB_txn* txn, const Dbis& dbis, std::vector<LeafRun> runs,
                                             std::vector<LeafPair> incoming, uint64_t threshold) {
  LEDGER_ASSIGN_OR_RETURN(LeafMerge m, LeafMerge::Start(txn, dbis, std::move(runs),
                                                        std::make_shared<const FrozenLeaves>(std::move(incoming)),
                                                        threshold, 0));
  LEDGER_RETURN_IF_ERROR(m.Advance(txn, UINT64_MAX));
  return m.Finish(txn);
}

// LeafMergeBudget is how many pairs the commit at tree size |size| writes
// of |merge|: enough that the merge is on schedule to end once half the
// threshold of new leaves has arrived since it started (so it ends before
// the new pending leaves reach the threshold), and at least
// leaf_index_merge_min_step. A level-L merge of up to T·8^L pairs thus
// writes at most about 2·8^L pairs per new leaf in each commit, instead of
// all of them in one.
uint64_t LeafMergeBudget(const LeafMerge& merge, uint64_t size, const StoreOptions& opts) {
  uint64_t since = size - std::min(size, merge.indexed_size());
  uint64_t deadline = std::max<uint64_t>(opts.leaf_index_merge_threshold / 2, 1);
  uint64_t due = since >= deadline
                     ? merge.total()
                     : static_cast<uint64_t>(static_cast<unsigned __int128>(merge.total()) * since / deadline);
  uint64_t behind = due > merge.written() ? due - merge.written() : 0;
  return std::max<uint64_t>({behind, opts.leaf_index_merge_min_step, 1});
}

Status PutMeta(MDB_txn* txn, MDB_dbi dbi, const char* key, ByteView value) {
  std::string k = key;
  MDB_val mk = Val(k), mv = Val(value);
  int rc = mdb_put(txn, dbi, &mk, &mv, 0);
  if (rc != 0) return LmdbError("writing meta", rc);
  return Status::OK();
}

// MigrateFormat1 converts, in |txn|, a format-1 leaf index (the DUPSORT
// database `leafidx`: first 8 bytes of the leaf hash -> u64be index) into
// one run of the format-2 index, and drops it. Everything else is the same
// in both formats. The caller then records format 2 in the same txn.
Status MigrateFormat1(MDB_txn* txn, const Dbis& dbis, uint64_t threshold) {
  MDB_dbi old = 0;
  int rc = mdb_dbi_open(txn, "leafidx", MDB_DUPSORT | MDB_DUPFIXED, &old);
  if (rc == MDB_NOTFOUND) return Status::OK();
  if (rc != 0) return LmdbError("opening the format-1 leaf index", rc);
  std::vector<LeafPair> pairs;
  {
    Cursor cur;
    if ((rc = cur.Open(txn, old)) != 0) return LmdbError("opening cursor", rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      if (k.mv_size != 8 || v.mv_size != 8) return Status::Corruption("format-1 leaf index entry has a bad length");
      uint64_t index = LoadU64(v.mv_data);
      if (index >= kMaxIndexedLeaf) return Status::Corruption("format-1 leaf index entry out of range");
      pairs.push_back(LeafPair{Prefix48(LoadU64(k.mv_data)), index});
    }
    if (rc != MDB_NOTFOUND) return LmdbError("reading the format-1 leaf index", rc);
  }
  std::sort(pairs.begin(), pairs.end());
  if (!pairs.empty()) {
    LEDGER_ASSIGN_OR_RETURN(auto runs, MergeLeafRuns(txn, dbis, {}, std::move(pairs), threshold));
    LEDGER_RETURN_IF_ERROR(PutMeta(txn, dbis.meta, "leafruns", EncodeRuns(runs)));
  }
  if ((rc = mdb_drop(txn, old, 1)) != 0) return LmdbError("dropping the format-1 leaf index", rc);
  return Status::OK();
}


// ChunkSource reads a stored chunk. |overlay| lets a write batch serve its
// uncommitted chunks.
using ChunkLookup = std::function<StatusOr<ByteView>(int group, uint64_t chunk)>;

Status ReadNodes(const std::vector<NodeId>& ids, std::vector<Hash>* out, const ChunkLookup& lookup) {
  out->resize(ids.size());
  bool have_chunk = false;
  int last_group = -1;
  uint64_t last_chunk = 0;
  ByteView data;
  for (size_t n = 0; n < ids.size(); n++) {
    const NodeId& id = ids[n];
    if (id.level >= 64) return Status::InvalidArgument("node level out of range");
    int group = id.level / kGroupHeight;
    int h = id.level % kGroupHeight;
    if (h > 0 && id.index > (UINT64_MAX >> h)) return Status::InvalidArgument("node index out of range");
    uint64_t first = id.index << h;
    uint64_t count = uint64_t{1} << h;
    uint64_t chunk = first / kChunkWidth;
    uint64_t offset = first % kChunkWidth;
    // Consecutive nodes (a tile, a proof's lower levels) share chunks: one
    // lookup per chunk, not per node.
    if (!have_chunk || group != last_group || chunk != last_chunk) {
      LEDGER_ASSIGN_OR_RETURN(data, lookup(group, chunk));
      have_chunk = true;
      last_group = group;
      last_chunk = chunk;
    }
    if (data.size() < (offset + count) * 32)
      return Status::NotFound("node (" + std::to_string(id.level) + ", " + std::to_string(id.index) +
                              ") is not stored");
    (*out)[n] = PerfectRoot(reinterpret_cast<const uint8_t*>(data.data()) + offset * 32, count);
  }
  return Status::OK();
}

// ChunkLocation is the `tree` key of chunk |chunk| of |group| and how many of
// its hashes exist at tree size |size|; NotFound if none do.
struct ChunkLocation {
  uint64_t key;
  uint64_t fill;
};
StatusOr<ChunkLocation> LocateChunk(int group, uint64_t chunk, uint64_t size) {
  uint64_t fill = ChunkFill(group, chunk, size);
  std::optional<uint64_t> leaf = ChunkCreationLeaf(group, chunk);
  if (fill == 0 || !leaf) return Status::NotFound("hash chunk not stored");
  return ChunkLocation{*leaf, fill};
}

// ChunkHashes returns the first |fill| hashes of a chunk read with status
// |rc| (mdb_get or a cursor): Corruption if it is missing or malformed.
StatusOr<ByteView> ChunkHashes(int rc, const MDB_val& v, int group, uint64_t chunk, uint64_t fill) {
  if (rc == MDB_NOTFOUND) return Status::Corruption("hash chunk (" + std::to_string(group) + ", " + std::to_string(chunk) + ") missing from store");
  if (rc != 0) return LmdbError("reading hashes", rc);
  if (v.mv_size != kChunkBytes) return Status::Corruption("stored hash chunk has a bad length");
  return View(v).substr(0, fill * 32);
}

// GetChunk returns the hashes chunk |chunk| of |group| holds at tree size
// |size| (format 3: the stored value is always 16 slots; the slots beyond
// the size are zero and not returned). NotFound if the chunk does not exist
// at that size.
StatusOr<ByteView> GetChunk(MDB_txn* txn, MDB_dbi dbi, int group, uint64_t chunk, uint64_t size) {
  LEDGER_ASSIGN_OR_RETURN(ChunkLocation at, LocateChunk(group, chunk, size));
  std::string key = IndexKey(at.key);
  MDB_val k = Val(key), v;
  return ChunkHashes(mdb_get(txn, dbi, &k, &v), v, group, chunk, at.fill);
}

// ChunkCursor reads chunks like GetChunk, through one cursor: the chunks of
// a tile or a range (consecutive chunks of one group) are a few keys apart
// in `tree`, whose keys grow with creation, so stepping forward from the
// previous chunk replaces a B-tree descent per chunk (on a 10M-entry log, 16
// descents per level-0 tile, each a cache miss or more). Not thread-safe.
class ChunkCursor {
 public:
  StatusOr<ByteView> Get(MDB_txn* txn, MDB_dbi dbi, int group, uint64_t chunk, uint64_t size) {
    LEDGER_ASSIGN_OR_RETURN(ChunkLocation want, LocateChunk(group, chunk, size));
    if (!cursor_.get()) {
      if (int rc = cursor_.Open(txn, dbi); rc != 0) return LmdbError("opening a cursor on hashes", rc);
    }
    MDB_val k, v;
    if (positioned_ && at_ == want.key && mdb_cursor_get(cursor_.get(), &k, &v, MDB_GET_CURRENT) == 0)
      return ChunkHashes(0, v, group, chunk, want.fill);
    // A few steps forward at most: between two chunks of one group lie the
    // chunks of the other groups created in between (at most one per group).
    for (int step = 0; positioned_ && at_ < want.key && step < 4; step++) {
      if (mdb_cursor_get(cursor_.get(), &k, &v, MDB_NEXT) != 0 || k.mv_size != 8) {
        positioned_ = false;
        break;
      }
      at_ = LoadU64(k.mv_data);
      if (at_ == want.key) return ChunkHashes(0, v, group, chunk, want.fill);
    }
    std::string key = IndexKey(want.key);
    k = Val(key);
    int rc = mdb_cursor_get(cursor_.get(), &k, &v, MDB_SET_KEY);
    positioned_ = rc == 0;
    at_ = want.key;
    return ChunkHashes(rc, v, group, chunk, want.fill);
  }

 private:
  Cursor cursor_;
  bool positioned_ = false;  // the cursor is on key at_
  uint64_t at_ = 0;
};

// BundleSlot returns entry |slot| of a stored entry bundle (u16be length ||
// bytes, repeated), bounds-checked.
StatusOr<ByteView> BundleSlot(ByteView bundle, uint64_t slot) {
  size_t pos = 0;
  for (uint64_t i = 0;; i++) {
    if (bundle.size() - pos < 2) return Status::Corruption("stored entry bundle is truncated");
    size_t len = (static_cast<uint8_t>(bundle[pos]) << 8) | static_cast<uint8_t>(bundle[pos + 1]);
    pos += 2;
    if (len == 0 || bundle.size() - pos < len) return Status::Corruption("stored entry bundle is truncated");
    if (i == slot) return bundle.substr(pos, len);
    pos += len;
  }
}

// ParseBundle splits a stored full bundle into its kBundleWidth entries
// (views into |bundle|); Corruption unless exactly that many fill it.
Status ParseBundle(ByteView bundle, std::vector<ByteView>* out) {
  out->clear();
  size_t pos = 0;
  while (pos < bundle.size()) {
    if (bundle.size() - pos < 2) return Status::Corruption("stored entry bundle is truncated");
    size_t len = (static_cast<uint8_t>(bundle[pos]) << 8) | static_cast<uint8_t>(bundle[pos + 1]);
    pos += 2;
    if (len == 0 || bundle.size() - pos < len) return Status::Corruption("stored entry bundle is truncated");
    out->push_back(bundle.substr(pos, len));
    pos += len;
  }
  if (out->size() != kBundleWidth) return Status::Corruption("stored entry bundle does not hold 256 entries");
  return Status::OK();
}

// ReadEntry reads entry |index| of a tree of |size| leaves: from its bundle
// if the bundle is full at that size, else from `entries`.
StatusOr<ByteView> ReadEntry(MDB_txn* txn, const Dbis& dbis, uint64_t index, uint64_t size) {
  if (index >= size) return Status::NotFound("entry " + std::to_string(index) + " is beyond the tree size");
  bool bundled = index / kBundleWidth < size / kBundleWidth;
  std::string key = IndexKey(bundled ? index / kBundleWidth : index);
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn, bundled ? dbis.bundles : dbis.entries, &k, &v);
  if (rc == MDB_NOTFOUND)
    return Status::Corruption(bundled ? "entry bundle " + std::to_string(index / kBundleWidth) + " missing from store"
                                      : "entry " + std::to_string(index) + " missing from store");
  if (rc != 0) return LmdbError("reading entry", rc);
  if (!bundled) return View(v);
  return BundleSlot(View(v), index % kBundleWidth);
}

// SealBundle moves the 256 entries of the just-filled bundle |bundle| from
// `entries` into one `bundles` value (appended: bundles fill in order).
Status SealBundle(MDB_txn* txn, const Dbis& dbis, uint64_t bundle) {
  std::string value;
  {
    Cursor cur;
    int rc = cur.Open(txn, dbis.entries);
    if (rc != 0) return LmdbError("opening cursor", rc);
    std::string first = IndexKey(bundle * kBundleWidth);
    MDB_val k = Val(first), v;
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_KEY);
    for (uint64_t i = 0; i < kBundleWidth; i++) {
      if (rc != 0) return rc == MDB_NOTFOUND ? Status::Corruption("entries missing from store") : LmdbError("reading entries", rc);
      if (k.mv_size != 8 || LoadU64(k.mv_data) != bundle * kBundleWidth + i) return Status::Corruption("entries not contiguous");
      value.push_back(static_cast<char>(v.mv_size >> 8));
      value.push_back(static_cast<char>(v.mv_size & 0xff));
      value.append(static_cast<const char*>(v.mv_data), v.mv_size);
      if ((rc = mdb_cursor_del(cur.get(), 0)) != 0) return LmdbError("moving entries into a bundle", rc);
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_GET_CURRENT);
    }
  }
  std::string key = IndexKey(bundle);
  MDB_val k = Val(key), v = Val(value);
  int rc = mdb_put(txn, dbis.bundles, &k, &v, MDB_APPEND);
  if (rc != 0) return LmdbError("writing entry bundle", rc);
  return Status::OK();
}

StatusOr<std::optional<Bytes>> GetValue(MDB_txn* txn, MDB_dbi dbi, ByteView key) {
  if (key.empty() || key.size() > 511) return Status::InvalidArgument("state key must be 1..511 bytes");
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<Bytes>();
  if (rc != 0) return LmdbError("reading", rc);
  return std::optional<Bytes>(Bytes(View(v)));
}

// IndexedCandidates appends to |out| the indexes below |size| of the pairs
// with |hash|'s prefix in the frozen leaves and the on-disk runs (not the
// pending table: the callers probe it first).
Status IndexedCandidates(const Dbis& dbis, const Hash& hash, uint64_t size, const FrozenLeaves* frozen, MDB_txn* read_txn,
                         std::optional<std::vector<RunProbe>>* runs_cache, std::vector<uint64_t>* out) {
  const uint64_t prefix48 = Prefix48(PrefixOf(hash));
  if (frozen) frozen->Candidates(prefix48, size, out);
  // The directory is fixed for a snapshot or a batch: read it once.
  if (!runs_cache->has_value()) {
    LEDGER_ASSIGN_OR_RETURN(std::vector<RunProbe> loaded, LoadRunsForLookup(read_txn, dbis));
    *runs_cache = std::move(loaded);
  }
  Cursor cur;  // opened for the first run the filter does not rule out
  for (RunProbe& probe : **runs_cache) {
    LEDGER_ASSIGN_OR_RETURN(bool maybe, BloomMayContain(read_txn, dbis.leafbloom, &probe, prefix48));
    if (!maybe) continue;
    if (!cur.get()) {
      int rc = cur.Open(read_txn, dbis.leafruns);
      if (rc != 0) return LmdbError("opening cursor", rc);
    }
    LEDGER_RETURN_IF_ERROR(RunCandidates(cur.get(), probe.run.id, prefix48, size, out));
  }
  return Status::OK();
}

// FindLeafIn looks a leaf hash up through the prefix index and confirms
// candidates against the stored level-0 hashes.
StatusOr<uint64_t> FindLeafIn(const Dbis& dbis, const Hash& leaf, uint64_t size,
                              const ChunkLookup& lookup, const PendingLeaves* pending, const FrozenLeaves* frozen,
                              MDB_txn* read_txn, std::optional<std::vector<RunProbe>>* runs_cache) {
  if (pending) {
    for (uint64_t index : pending->Candidates(PrefixOf(leaf), size)) {
      std::vector<Hash> got;
      LEDGER_RETURN_IF_ERROR(ReadNodes({NodeId{0, index}}, &got, lookup));
      if (got[0] == leaf) return index;
    }
  }
  std::vector<uint64_t> candidates;
  LEDGER_RETURN_IF_ERROR(IndexedCandidates(dbis, leaf, size, frozen, read_txn, runs_cache, &candidates));
  for (uint64_t index : candidates) {
    std::vector<Hash> got;
    LEDGER_RETURN_IF_ERROR(ReadNodes({NodeId{0, index}}, &got, lookup));
    if (got[0] == leaf) return index;
  }
  return Status::NotFound("leaf hash not in the log");
}

// KeyCandidatesIn returns the indexes below |size| whose leaf hash or
// recorded key (WriteBatch::RecordKey) shares |key|'s 6-byte prefix,
// ascending and distinct; the caller confirms them.
StatusOr<std::vector<uint64_t>> KeyCandidatesIn(const Dbis& dbis, const Hash& key, uint64_t size, const PendingLeaves* pending,
                                               const FrozenLeaves* frozen, MDB_txn* read_txn,
                                               std::optional<std::vector<RunProbe>>* runs_cache) {
  std::vector<uint64_t> out;
  if (pending) out = pending->Candidates(PrefixOf(key), size);
  LEDGER_RETURN_IF_ERROR(IndexedCandidates(dbis, key, size, frozen, read_txn, runs_cache, &out));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// DropKeysBelow deletes the recorded keys of entries below |indexed_size|:
// the merge that ends in |txn| wrote them into a run.
Status DropKeysBelow(MDB_txn* txn, const Dbis& dbis, uint64_t indexed_size) {
  Cursor cur;
  int rc = cur.Open(txn, dbis.keys);
  if (rc != 0) return LmdbError("opening cursor", rc);
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST)) {
    if (k.mv_size != 8 || LoadU64(k.mv_data) >= indexed_size) break;
    if ((rc = mdb_cursor_del(cur.get(), 0)) != 0) return LmdbError("deleting merged keys", rc);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError("reading recorded keys", rc);
  return Status::OK();
}

// MigrateFormat2 converts, in |txn|, the format-2 layout into format 3:
// the hash chunks of `hashes` (key u8 group || u64be chunk, value exactly
// the chunk's filled hashes) move to `tree` (key u64be creation leaf, value
// 16 slots, zero-padded), written in key order with MDB_APPEND; the full
// bundles' entries move from `entries` into `bundles`. `hashes` is dropped.
// Every chunk's length is checked against the stored size first.
Status MigrateFormat2(MDB_txn* txn, const Dbis& dbis) {
  LEDGER_ASSIGN_OR_RETURN(auto size_value, GetValue(txn, dbis.meta, "size"));
  uint64_t size = 0;
  if (size_value) {
    if (size_value->size() != 8) return Status::Corruption("meta size has a bad length");
    size = LoadU64(size_value->data());
  }
  MDB_dbi old = 0;
  int rc = mdb_dbi_open(txn, "hashes", 0, &old);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError("opening the format-2 hashes", rc);
  if (rc == 0) {
    struct Move {
      uint64_t key;
      int group;
      uint64_t chunk;
    };
    std::vector<Move> moves;
    {
      Cursor cur;
      if ((rc = cur.Open(txn, old)) != 0) return LmdbError("opening cursor", rc);
      MDB_val k, v;
      for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
        if (k.mv_size != 9 || static_cast<const uint8_t*>(k.mv_data)[0] >= kGroups)
          return Status::Corruption("format-2 hash chunk has a bad key");
        int group = static_cast<const uint8_t*>(k.mv_data)[0];
        uint64_t chunk = LoadU64(static_cast<const char*>(k.mv_data) + 1);
        std::optional<uint64_t> leaf = ChunkCreationLeaf(group, chunk);
        if (!leaf || v.mv_size != ChunkFill(group, chunk, size) * 32)
          return Status::Corruption("format-2 hash chunk (" + std::to_string(group) + ", " + std::to_string(chunk) +
                                    ") does not match the stored size");
        moves.push_back(Move{*leaf, group, chunk});
      }
      if (rc != MDB_NOTFOUND) return LmdbError("reading the format-2 hashes", rc);
    }
    std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) { return a.key < b.key; });
    std::string value;
    for (const Move& m : moves) {
      std::string okey = ChunkKeyV2(m.group, m.chunk), nkey = IndexKey(m.key);
      MDB_val k = Val(okey), v;
      if ((rc = mdb_get(txn, old, &k, &v)) != 0) return LmdbError("reading the format-2 hashes", rc);
      value.assign(kChunkBytes, '\0');
      std::memcpy(&value[0], v.mv_data, v.mv_size);
      MDB_val nk = Val(nkey), nv = Val(value);
      if ((rc = mdb_put(txn, dbis.tree, &nk, &nv, MDB_APPEND)) != 0) return LmdbError("writing hashes", rc);
    }
    if ((rc = mdb_drop(txn, old, 1)) != 0) return LmdbError("dropping the format-2 hashes", rc);
  }
  // Entries of full bundles become bundles; the rest (the partial bundle,
  // and anything beyond the size for the start-up check to find) stays.
  const uint64_t full = size / kBundleWidth;
  std::vector<std::pair<std::string, std::string>> rest;
  {
    Cursor cur;
    if ((rc = cur.Open(txn, dbis.entries)) != 0) return LmdbError("opening cursor", rc);
    MDB_val k, v;
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
    std::string bundle;
    for (uint64_t b = 0; b < full; b++) {
      bundle.clear();
      for (uint64_t j = 0; j < kBundleWidth; j++) {
        if (rc != 0 || k.mv_size != 8 || LoadU64(k.mv_data) != b * kBundleWidth + j || v.mv_size == 0 || v.mv_size > kMaxEntrySize)
          return rc != 0 && rc != MDB_NOTFOUND ? LmdbError("reading entries", rc)
                                               : Status::Corruption("format-2 entries are not contiguous from 0 to the size");
        bundle.push_back(static_cast<char>(v.mv_size >> 8));
        bundle.push_back(static_cast<char>(v.mv_size & 0xff));
        bundle.append(static_cast<const char*>(v.mv_data), v.mv_size);
        rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
      }
      std::string key = IndexKey(b);
      MDB_val bk = Val(key), bv = Val(bundle);
      int prc = mdb_put(txn, dbis.bundles, &bk, &bv, MDB_APPEND);
      if (prc != 0) return LmdbError("writing entry bundle", prc);
    }
    for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT))
      rest.emplace_back(std::string(View(k)), std::string(View(v)));
    if (rc != MDB_NOTFOUND) return LmdbError("reading entries", rc);
  }
  if (full > 0) {
    if ((rc = mdb_drop(txn, dbis.entries, 0)) != 0) return LmdbError("emptying entries", rc);
    for (auto& [key, value] : rest) {
      MDB_val k = Val(key), v = Val(value);
      if ((rc = mdb_put(txn, dbis.entries, &k, &v, MDB_APPEND)) != 0) return LmdbError("writing entries", rc);
    }
  }
  return Status::OK();
}

// SnapshotReader is a LogReader over one LMDB read transaction.
class SnapshotReader final : public LogReader {
 public:
  SnapshotReader(Txn txn, Dbis dbis, std::shared_ptr<const PendingLeaves> pending,
                 std::shared_ptr<const FrozenLeaves> frozen)
      : txn_(std::move(txn)), dbis_(dbis), pending_(std::move(pending)), frozen_(std::move(frozen)) {
    lookup_ = [this](int g, uint64_t c) { return chunks_.Get(txn_.get(), dbis_.tree, g, c, size_); };
  }

  Status Load() {
    LEDGER_ASSIGN_OR_RETURN(auto size, GetValue(txn_.get(), dbis_.meta, "size"));
    if (!size) {
      size_ = 0;
      root_ = EmptyTreeRoot();
      return Status::OK();
    }
    if (size->size() != 8) return Status::Corruption("meta size has a bad length");
    size_ = LoadU64(size->data());
    LEDGER_ASSIGN_OR_RETURN(auto root, GetValue(txn_.get(), dbis_.meta, "root"));
    if (!root || root->size() != 32) return Status::Corruption("meta root missing or malformed");
    std::memcpy(root_.data(), root->data(), 32);
    LEDGER_ASSIGN_OR_RETURN(auto cp, GetValue(txn_.get(), dbis_.meta, "checkpoint"));
    if (cp) checkpoint_ = *cp;
    return Status::OK();
  }

  uint64_t size() const override { return size_; }
  Hash root() const override { return root_; }
  const std::string& checkpoint() const override { return checkpoint_; }

  Status ReadHashes(const std::vector<NodeId>& ids, std::vector<Hash>* out) const override {
    return ReadNodes(ids, out, lookup_);
  }

  StatusOr<ByteView> GetEntry(uint64_t index) const override { return ReadEntry(txn_.get(), dbis_, index, size_); }

  StatusOr<std::vector<ByteView>> GetEntries(uint64_t start, uint64_t count) const override {
    if (start > size_ || count > size_ - start) return Status::NotFound("entries beyond the tree size");
    std::vector<ByteView> out;
    out.reserve(count);
    const uint64_t end = start + count, sealed = size_ / kBundleWidth * kBundleWidth;
    uint64_t i = start;
    // Entries of full bundles: one read per bundle.
    std::vector<ByteView> bundle;
    while (i < end && i < sealed) {
      std::string key = IndexKey(i / kBundleWidth);
      MDB_val k = Val(key), v;
      int rc = mdb_get(txn_.get(), dbis_.bundles, &k, &v);
      if (rc == MDB_NOTFOUND) return Status::Corruption("entry bundle " + std::to_string(i / kBundleWidth) + " missing from store");
      if (rc != 0) return LmdbError("reading entries", rc);
      LEDGER_RETURN_IF_ERROR(ParseBundle(View(v), &bundle));
      for (uint64_t j = i % kBundleWidth; j < kBundleWidth && i < end; j++, i++) out.push_back(bundle[j]);
    }
    if (i == end) return out;
    // The rest: entries of the partial bundle, one item each.
    Cursor cur;
    int rc = cur.Open(txn_.get(), dbis_.entries);
    if (rc != 0) return LmdbError("opening cursor", rc);
    std::string key = IndexKey(i);
    MDB_val k = Val(key), v;
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_KEY);
    for (; i < end; i++) {
      if (rc != 0) return rc == MDB_NOTFOUND ? Status::Corruption("entries missing from store") : LmdbError("reading entries", rc);
      if (k.mv_size != 8 || LoadU64(k.mv_data) != i) return Status::Corruption("entries not contiguous");
      out.push_back(View(v));
      if (i + 1 < end) rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
    }
    return out;
  }

  StatusOr<ByteView> GetEntryBundle(uint64_t n) const override {
    if (n >= size_ / kBundleWidth) return Status::NotFound("entry bundle beyond the tree size");
    std::string key = IndexKey(n);
    MDB_val k = Val(key), v;
    int rc = mdb_get(txn_.get(), dbis_.bundles, &k, &v);
    if (rc == MDB_NOTFOUND) return Status::Corruption("entry bundle " + std::to_string(n) + " missing from store");
    if (rc != 0) return LmdbError("reading entries", rc);
    return View(v);
  }

  StatusOr<uint64_t> FindLeaf(const Hash& leaf_hash) const override {
    return FindLeafIn(dbis_, leaf_hash, size_, lookup_, pending_.get(), frozen_.get(), txn_.get(), &runs_);
  }

  StatusOr<std::vector<uint64_t>> FindKey(const Hash& key) const override {
    return KeyCandidatesIn(dbis_, key, size_, pending_.get(), frozen_.get(), txn_.get(), &runs_);
  }

  StatusOr<std::optional<Bytes>> GetState(ByteView key) const override {
    return GetValue(txn_.get(), dbis_.state, key);
  }

  Status ForEachState(ByteView prefix, const std::function<void(ByteView, ByteView)>& fn) const override {
    return ScanState(prefix, [&fn](ByteView key, ByteView value) {
      fn(key, value);
      return true;
    });
  }

  Status ScanState(ByteView prefix, const std::function<bool(ByteView, ByteView)>& fn) const override {
    Cursor cur;
    int rc = cur.Open(txn_.get(), dbis_.state);
    if (rc != 0) return LmdbError("opening cursor", rc);
    MDB_val k = Val(prefix), v;
    rc = prefix.empty() ? mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST) : mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
      ByteView key = View(k);
      if (key.substr(0, prefix.size()) != prefix || !fn(key, View(v))) break;
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError("reading state", rc);
    return Status::OK();
  }

 private:
  Txn txn_;
  Dbis dbis_;
  std::shared_ptr<const PendingLeaves> pending_;
  std::shared_ptr<const FrozenLeaves> frozen_;
  mutable std::optional<std::vector<RunProbe>> runs_;  // the leaf-index directory, once read
  mutable ChunkCursor chunks_;  // declared after txn_: closed before it ends
  ChunkLookup lookup_;
  uint64_t size_ = 0;
  Hash root_{};
  std::string checkpoint_;
};

}  // namespace

struct Store::Impl {
  StoreOptions options;
  std::unique_ptr<MDB_env, EnvCloser> env;
  Dbis dbis;
  std::atomic<bool> writer_active{false};

  mutable std::mutex mu;  // guards the committed in-memory state below
  CompactRange range;
  Partials partials;
  std::string origin;
  std::shared_ptr<PendingLeaves> pending;  // made by Open, sized for the merge threshold
  // The leaf-index merge in progress (the writer's) and its frozen leaves.
  std::optional<LeafMerge> merge;
  std::shared_ptr<const FrozenLeaves> frozen;
  // Memory kept for the next freeze (see WriteBatch::Commit); made here and
  // only ever shared read-only.
  std::shared_ptr<PendingLeaves> spare_pending;
  std::shared_ptr<FrozenLeaves> spare_frozen;
  uint64_t indexed_size = 0;  // leaves [0, indexed_size) are in the on-disk leaf index (leafruns)

  StatusOr<Txn> Begin(unsigned flags) const {
    MDB_txn* t = nullptr;
    int rc = mdb_txn_begin(env.get(), nullptr, flags, &t);
    if (rc != 0) return LmdbError("beginning transaction", rc);
    return Txn(t);
  }
};

struct WriteBatch::Impl {
  Store::Impl* store = nullptr;
  Txn txn;
  CompactRange range;
  Partials partials;
  std::map<std::pair<int, uint64_t>, Bytes> completed;  // chunks filled in this batch
  std::vector<bool> dirty = std::vector<bool>(kGroups, false);
  std::unordered_map<std::string, uint64_t> batch_leaves;  // leaf hash -> index, this batch
  std::vector<std::pair<uint64_t, uint64_t>> batch_prefixes;  // (prefix, index), this batch
  std::vector<std::pair<Hash, uint64_t>> batch_keys;           // (key, index) recorded by RecordKey, this batch
  std::shared_ptr<PendingLeaves> pending;
  std::shared_ptr<const FrozenLeaves> frozen;
  // Lookups in the on-disk leaf index go through a read transaction of the
  // state the batch started from (the batch's own leaves are in
  // batch_leaves), so that filter chunks stay in place between lookups.
  Txn lookup_txn;
  std::optional<std::vector<RunProbe>> runs;  // the leaf-index directory, once read
  uint64_t indexed_size = 0;
  uint64_t start_size = 0;  // tree size when the batch began
  std::string origin;
  bool failed = false;
  bool finished = false;
  ChunkLookup lookup;

  StatusOr<ByteView> Chunk(int group, uint64_t chunk) {
    const PartialChunk& p = partials[group];
    if (p.chunk == chunk && !p.hashes.empty()) return ByteView(p.hashes);
    auto it = completed.find({group, chunk});
    if (it != completed.end()) return ByteView(it->second);
    return GetChunk(txn.get(), store->dbis.tree, group, chunk, range.size());
  }

  Status failure;  // the first failure, reported again by Commit

  Status Fail(Status s) {
    if (!failed) failure = s;
    failed = true;
    return s;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("store directory not set");
  if (mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::IOError("cannot create " + options.dir + ": " + std::strerror(errno));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->pending = std::make_shared<PendingLeaves>(options.leaf_index_merge_threshold);
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError("creating LMDB environment", rc);
  impl->env.reset(env);
  if ((rc = mdb_env_set_mapsize(env, options.map_size)) != 0) return LmdbError("setting map size", rc);
  if ((rc = mdb_env_set_maxdbs(env, 16)) != 0) return LmdbError("setting max dbs", rc);
  if ((rc = mdb_env_set_maxreaders(env, options.max_readers)) != 0) return LmdbError("setting max readers", rc);
  // MDB_NOTLS: read transactions are not tied to threads (HTTP workers).
  unsigned flags = MDB_NOTLS | (options.durable ? 0 : MDB_NOSYNC);
  if ((rc = mdb_env_open(env, options.dir.c_str(), flags, 0600)) != 0)
    return LmdbError(("opening LMDB in " + options.dir).c_str(), rc);

  {
    LEDGER_ASSIGN_OR_RETURN(Txn txn, impl->Begin(0));
    auto open = [&](const char* name, unsigned f, MDB_dbi* dbi) {
      return mdb_dbi_open(txn.get(), name, MDB_CREATE | f, dbi);
    };
    if ((rc = open("entries", 0, &impl->dbis.entries)) != 0 || (rc = open("bundles", 0, &impl->dbis.bundles)) != 0 ||
        (rc = open("tree", 0, &impl->dbis.tree)) != 0 || (rc = open("leafruns", 0, &impl->dbis.leafruns)) != 0 ||
        (rc = open("leafbloom", MDB_INTEGERKEY, &impl->dbis.leafbloom)) != 0 ||
        (rc = open("meta", 0, &impl->dbis.meta)) != 0 || (rc = open("state", 0, &impl->dbis.state)) != 0 ||
        (rc = open("keys", 0, &impl->dbis.keys)) != 0)
      return LmdbError("opening databases", rc);
    LEDGER_ASSIGN_OR_RETURN(auto format, GetValue(txn.get(), impl->dbis.meta, "format"));
    // Older formats migrate in this one transaction: 1 -> 2 -> 3 -> 4 -> 5.
    if (format && *format == "1") {
      LEDGER_RETURN_IF_ERROR(MigrateFormat1(txn.get(), impl->dbis, impl->options.leaf_index_merge_threshold));
      format = "2";
    }
    if (format && *format == "2") {
      LEDGER_RETURN_IF_ERROR(MigrateFormat2(txn.get(), impl->dbis));
      format = "3";
    }
    // Format 4 adds `keys` (created above, empty: format 3 recorded no
    // keys); the number keeps builds that know nothing of recorded keys,
    // or of the subject lists' c/ keys (SPEC.md §10), from opening it.
    // Format 5 moves the subject tree out of `state` (into DIR/subjects,
    // moved by ledgerd's SubjectIndexer on start); the number keeps builds
    // that would look for it in `state` from opening it.
    if (format && (*format == "3" || *format == "4")) {
      format.reset();
    } else if (format && *format != kFormatVersion) {
      return Status::FailedPrecondition("store format " + *format + " is not supported by this build (it reads formats 1 to 5)");
    }
    if (!format) {  // new store, or migrated from format 1 to 4
      std::string key = "format";
      MDB_val k = Val(key), v = Val(kFormatVersion);
      if ((rc = mdb_put(txn.get(), impl->dbis.meta, &k, &v, 0)) != 0) return LmdbError("writing format", rc);
    }
    if ((rc = txn.Commit()) != 0) return LmdbError("committing database creation", rc);
  }

  // Start-up check: everything derived from the stored hashes must agree.
  std::unique_ptr<Store> store(new Store(std::move(impl)));
  Impl& im = *store->impl_;
  LEDGER_ASSIGN_OR_RETURN(auto reader, store->Read());
  uint64_t size = reader->size();
  if (size > 0) {
    auto range = CompactRange::FromReader(size, *reader);
    if (!range.ok()) return Status::Corruption("start-up check: cannot load the tree frontier: " + range.status().ToString());
    if (range->Root() != reader->root())
      return Status::Corruption("start-up check: root recomputed from stored hashes differs from the stored root at size " +
                                std::to_string(size));
    im.range = std::move(*range);
    auto last = reader->GetEntry(size - 1);
    if (!last.ok()) return Status::Corruption("start-up check: " + last.status().message());
    std::vector<Hash> leaf;
    LEDGER_RETURN_IF_ERROR(reader->ReadHashes({NodeId{0, size - 1}}, &leaf));
    if (HashLeaf(*last) != leaf[0]) return Status::Corruption("start-up check: last entry does not match its stored leaf hash");
    // The stored entries must be exactly [0, size): bundles 0 .. size/256-1,
    // and in `entries` the partial bundle's entries, nothing else.
    LEDGER_ASSIGN_OR_RETURN(Txn txn, im.Begin(MDB_RDONLY));
    const uint64_t full = size / kBundleWidth, tail = size % kBundleWidth;
    {
      Cursor cur;
      if ((rc = cur.Open(txn.get(), im.dbis.bundles)) != 0) return LmdbError("opening cursor", rc);
      MDB_val k, v;
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_LAST);
      if (full == 0 ? rc != MDB_NOTFOUND : (rc != 0 || k.mv_size != 8 || LoadU64(k.mv_data) != full - 1))
        return Status::Corruption("start-up check: stored entry bundles do not end at bundle size/256-1");
    }
    {
      MDB_stat st;
      if ((rc = mdb_stat(txn.get(), im.dbis.entries, &st)) != 0) return LmdbError("reading database statistics", rc);
      Cursor cur;
      if ((rc = cur.Open(txn.get(), im.dbis.entries)) != 0) return LmdbError("opening cursor", rc);
      MDB_val k, v, k2, v2;
      bool ok = st.ms_entries == tail;
      if (ok && tail > 0) {
        ok = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST) == 0 && k.mv_size == 8 && LoadU64(k.mv_data) == full * kBundleWidth &&
             mdb_cursor_get(cur.get(), &k2, &v2, MDB_LAST) == 0 && k2.mv_size == 8 && LoadU64(k2.mv_data) == size - 1;
      }
      if (!ok) return Status::Corruption("start-up check: stored entries do not end at index size-1");
    }
    // Load each group's partial chunk.
    for (int g = 0; g < kGroups; g++) {
      uint64_t count = size >> (g * kGroupHeight);
      PartialChunk& p = im.partials[g];
      p.chunk = count / kChunkWidth;
      uint64_t fill = count % kChunkWidth;
      if (fill == 0) continue;
      auto chunk = GetChunk(txn.get(), im.dbis.tree, g, p.chunk, size);
      if (!chunk.ok() || chunk->size() != fill * 32)
        return Status::Corruption("start-up check: partial hash chunk of group " + std::to_string(g) + " is missing or has the wrong length");
      p.hashes = Bytes(*chunk);
    }
    if (reader->checkpoint().empty()) return Status::Corruption("start-up check: no checkpoint stored for a non-empty log");
  }
  LEDGER_ASSIGN_OR_RETURN(Txn txn, im.Begin(MDB_RDONLY));
  LEDGER_ASSIGN_OR_RETURN(auto origin, GetValue(txn.get(), im.dbis.meta, "origin"));
  if (origin) im.origin = *origin;
  // Leaves not yet merged into the LMDB leaf index: re-index them from
  // their stored level-0 hashes (at most the merge threshold of them).
  LEDGER_ASSIGN_OR_RETURN(auto indexed, GetValue(txn.get(), im.dbis.meta, "indexed_size"));
  if (indexed) {
    if (indexed->size() != 8 || LoadU64(indexed->data()) > size) return Status::Corruption("start-up check: meta indexed_size is malformed");
    im.indexed_size = LoadU64(indexed->data());
  }
  for (uint64_t i = im.indexed_size; i < size;) {
    LEDGER_ASSIGN_OR_RETURN(ByteView chunk, GetChunk(txn.get(), im.dbis.tree, 0, i / kChunkWidth, size));
    for (uint64_t j = i % kChunkWidth; j * 32 < chunk.size() && i < size; j++, i++)
      im.pending->Add(LoadU64(chunk.data() + j * 32), i);
    if (i % kChunkWidth != 0 && i < size) return Status::Corruption("start-up check: level-0 hash chunk too short");
  }
  // And the keys recorded for them (WriteBatch::RecordKey): `keys` holds
  // exactly those of entries not yet merged.
  {
    Cursor cur;
    int rc = cur.Open(txn.get(), im.dbis.keys);
    if (rc != 0) return LmdbError("opening cursor", rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      if (k.mv_size != 8 || v.mv_size != 32) return Status::Corruption("start-up check: a recorded key is malformed");
      const uint64_t index = LoadU64(k.mv_data);
      if (index < im.indexed_size || index >= size)
        return Status::Corruption("start-up check: a recorded key's entry " + std::to_string(index) +
                                  " is not among the entries not yet merged into the leaf index");
      im.pending->Add(LoadU64(v.mv_data), index);
    }
    if (rc != MDB_NOTFOUND) return LmdbError("reading recorded keys", rc);
  }
  return store;
}

StatusOr<std::unique_ptr<LogReader>> Store::Read() const {
  // The snapshot and the pending generation are taken together (a merge
  // commits, then swaps the generation under mu): a snapshot from before a
  // merge keeps the old generation, which still holds the merged leaves.
  std::shared_ptr<const PendingLeaves> pending;
  std::shared_ptr<const FrozenLeaves> frozen;
  Txn txn;
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    LEDGER_ASSIGN_OR_RETURN(txn, impl_->Begin(MDB_RDONLY));
    pending = impl_->pending;
    frozen = impl_->frozen;
  }
  auto reader = std::make_unique<SnapshotReader>(std::move(txn), impl_->dbis, std::move(pending), std::move(frozen));
  LEDGER_RETURN_IF_ERROR(reader->Load());
  return std::unique_ptr<LogReader>(std::move(reader));
}

uint64_t Store::size() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->range.size();
}

Hash Store::root() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->range.Root();
}

std::string Store::origin() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->origin;
}

uint64_t Store::DiskBytes() const {
  struct stat st;
  std::string path = impl_->options.dir + "/data.mdb";
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

StatusOr<StoreStats> Store::Stats() const {
  StoreStats out;
  out.file_bytes = DiskBytes();
  LEDGER_ASSIGN_OR_RETURN(Txn txn, impl_->Begin(MDB_RDONLY));
  MDB_envinfo info;
  MDB_stat st;
  int rc = mdb_env_info(impl_->env.get(), &info);
  if (rc == 0) rc = mdb_env_stat(impl_->env.get(), &st);
  if (rc != 0) return LmdbError("reading environment statistics", rc);
  out.page_size = st.ms_psize;
  out.used_pages = info.me_last_pgno + 1;
  const Dbis& d = impl_->dbis;
  std::pair<const char*, MDB_dbi> dbs[] = {
      {"entries", d.entries}, {"bundles", d.bundles}, {"tree", d.tree}, {"leafruns", d.leafruns}, {"leafbloom", d.leafbloom},
      {"meta", d.meta},       {"state", d.state},   {"keys", d.keys}};
  for (const auto& [name, dbi] : dbs) {
    if ((rc = mdb_stat(txn.get(), dbi, &st)) != 0) return LmdbError("reading database statistics", rc);
    out.dbs.push_back(StoreDbStats{name, st.ms_entries, st.ms_branch_pages, st.ms_leaf_pages, st.ms_overflow_pages,
                                   st.ms_depth});
  }
  LEDGER_ASSIGN_OR_RETURN(auto runs, LoadRuns(txn.get(), d.meta));
  out.leaf_index_runs = runs.size();
  std::lock_guard<std::mutex> l(impl_->mu);
  out.pending_leaves = impl_->pending->size();
  out.merging_leaves = impl_->frozen ? impl_->frozen->pairs.size() : 0;
  return out;
}

StatusOr<std::unique_ptr<WriteBatch>> Store::BeginWrite() {
  bool expected = false;
  if (!impl_->writer_active.compare_exchange_strong(expected, true))
    return Status::FailedPrecondition("another write batch is in progress");
  auto bi = std::make_unique<WriteBatch::Impl>();
  bi->store = impl_.get();
  auto txn = impl_->Begin(0);
  if (!txn.ok()) {
    impl_->writer_active = false;
    return txn.status();
  }
  bi->txn = std::move(*txn);
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    bi->range = impl_->range;
    bi->partials = impl_->partials;
    bi->origin = impl_->origin;
    bi->pending = impl_->pending;
    bi->frozen = impl_->frozen;
    bi->indexed_size = impl_->indexed_size;
    bi->start_size = impl_->range.size();
  }
  WriteBatch::Impl* raw = bi.get();
  bi->lookup = [raw](int g, uint64_t c) { return raw->Chunk(g, c); };
  return std::unique_ptr<WriteBatch>(new WriteBatch(std::move(bi)));
}

WriteBatch::WriteBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WriteBatch::~WriteBatch() {
  impl_->lookup_txn.Reset();
  impl_->txn.Reset();
  impl_->store->writer_active = false;
}

uint64_t WriteBatch::size() const { return impl_->range.size(); }
Hash WriteBatch::root() const { return impl_->range.Root(); }

StatusOr<uint64_t> WriteBatch::FindLeaf(const Hash& leaf_hash) {
  Impl& b = *impl_;
  auto it = b.batch_leaves.find(std::string(HashView(leaf_hash)));
  if (it != b.batch_leaves.end()) return it->second;
  if (!b.lookup_txn.get()) {
    LEDGER_ASSIGN_OR_RETURN(b.lookup_txn, b.store->Begin(MDB_RDONLY));
  }
  return FindLeafIn(b.store->dbis, leaf_hash, b.range.size(), b.lookup, b.pending.get(), b.frozen.get(),
                    b.lookup_txn.get(), &b.runs);
}

Status WriteBatch::RecordKey(const Hash& key, uint64_t index) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  if (index < b.start_size || index >= b.range.size())
    return Status::InvalidArgument("a key can only be recorded for an entry appended in this batch");
  std::string k = IndexKey(index);
  MDB_val kv = Val(k), vv = Val(HashView(key));
  // Entries only grow and each has at most one key: always at the end.
  int rc = mdb_put(b.txn.get(), b.store->dbis.keys, &kv, &vv, MDB_APPEND);
  if (rc == MDB_KEYEXIST) return Status::InvalidArgument("keys are recorded at most once per entry, in index order");
  if (rc != 0) return b.Fail(LmdbError("recording a key", rc));
  b.batch_keys.emplace_back(key, index);
  return Status::OK();
}

StatusOr<std::vector<uint64_t>> WriteBatch::FindKey(const Hash& key) {
  Impl& b = *impl_;
  if (!b.lookup_txn.get()) {
    LEDGER_ASSIGN_OR_RETURN(b.lookup_txn, b.store->Begin(MDB_RDONLY));
  }
  LEDGER_ASSIGN_OR_RETURN(std::vector<uint64_t> out, KeyCandidatesIn(b.store->dbis, key, b.range.size(), b.pending.get(),
                                                                     b.frozen.get(), b.lookup_txn.get(), &b.runs));
  for (const auto& [k, index] : b.batch_keys)
    if (k == key) out.push_back(index);  // above every committed index
  return out;
}

StatusOr<Bytes> WriteBatch::GetEntry(uint64_t index) {
  Impl& b = *impl_;
  LEDGER_ASSIGN_OR_RETURN(ByteView entry, ReadEntry(b.txn.get(), b.store->dbis, index, b.range.size()));
  return Bytes(entry);
}

StatusOr<AppendedLeaf> WriteBatch::Append(ByteView entry) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  if (entry.empty()) return Status::InvalidArgument("entry is empty");
  if (entry.size() > kMaxEntrySize) return Status::InvalidArgument("entry exceeds 65535 bytes");
  Hash leaf_hash = HashLeaf(entry);
  auto found = FindLeaf(leaf_hash);
  if (found.ok()) return AppendedLeaf{*found, leaf_hash, true};
  if (!found.status().IsNotFound()) return b.Fail(found.status());
  return AppendNew(entry, leaf_hash);
}

StatusOr<AppendedLeaf> WriteBatch::AppendNew(ByteView entry, const Hash& leaf_hash) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  if (entry.empty()) return Status::InvalidArgument("entry is empty");
  if (entry.size() > kMaxEntrySize) return Status::InvalidArgument("entry exceeds 65535 bytes");
  AppendedLeaf out;
  out.leaf_hash = leaf_hash;
  out.index = b.range.size();
  std::string key = IndexKey(out.index);
  MDB_val k = Val(key), v = Val(entry);
  int rc = mdb_put(b.txn.get(), b.store->dbis.entries, &k, &v, MDB_APPEND);
  if (rc != 0) return b.Fail(LmdbError("writing entry", rc));
  if ((out.index + 1) % kBundleWidth == 0) {
    Status sealed = SealBundle(b.txn.get(), b.store->dbis, out.index / kBundleWidth);
    if (!sealed.ok()) return b.Fail(sealed);
  }
  b.batch_prefixes.emplace_back(PrefixOf(out.leaf_hash), out.index);
  b.batch_leaves.emplace(std::string(HashView(out.leaf_hash)), out.index);

  b.range.Append(out.leaf_hash, [&b](const NodeId& id, const Hash& h) {
    if (id.level % kGroupHeight != 0) return;
    int g = id.level / kGroupHeight;
    PartialChunk& p = b.partials[g];
    p.hashes.append(reinterpret_cast<const char*>(h.data()), 32);
    b.dirty[g] = true;
    if (p.hashes.size() == kChunkWidth * 32) {
      b.completed[{g, p.chunk}] = std::move(p.hashes);
      p.hashes.clear();
      p.chunk++;
    }
  });
  return out;
}

StatusOr<std::optional<Bytes>> WriteBatch::GetState(ByteView key) {
  return GetValue(impl_->txn.get(), impl_->store->dbis.state, key);
}

Status WriteBatch::PutState(ByteView key, ByteView value) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  if (key.empty() || key.size() > 511) return Status::InvalidArgument("state key must be 1..511 bytes");
  MDB_val k = Val(key), v = Val(value);
  int rc = mdb_put(b.txn.get(), b.store->dbis.state, &k, &v, 0);
  if (rc != 0) return b.Fail(LmdbError("writing state", rc));
  return Status::OK();
}

Status WriteBatch::DeleteState(ByteView key) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  // Same key rule as PutState/GetState; LMDB would reject an empty or
  // over-long key with MDB_BAD_VALSIZE, which would fail the whole batch.
  if (key.empty() || key.size() > 511) return Status::InvalidArgument("state key must be 1..511 bytes");
  MDB_val k = Val(key);
  int rc = mdb_del(b.txn.get(), b.store->dbis.state, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return b.Fail(LmdbError("deleting state", rc));
  return Status::OK();
}


Status WriteBatch::SetOrigin(const std::string& origin) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  if (!b.origin.empty() && b.origin != origin)
    return Status::FailedPrecondition("store belongs to origin \"" + b.origin + "\", not \"" + origin + "\"");
  Status s = PutMeta(b.txn.get(), b.store->dbis.meta, "origin", origin);
  if (!s.ok()) return b.Fail(s);
  b.origin = origin;
  return Status::OK();
}

Status WriteBatch::SetCheckpoint(const std::string& signed_note) {
  Impl& b = *impl_;
  if (b.failed || b.finished) return Status::FailedPrecondition("write batch already failed or finished");
  Status s = PutMeta(b.txn.get(), b.store->dbis.meta, "checkpoint", signed_note);
  if (!s.ok()) return b.Fail(s);
  return Status::OK();
}

Status WriteBatch::Commit() {
  Impl& b = *impl_;
  if (b.finished) return Status::FailedPrecondition("write batch already finished");
  b.finished = true;
  b.lookup_txn.Reset();
  b.runs.reset();
  if (b.failed) {
    // Keep the code (e.g. ResourceExhausted for a full map) so callers of
    // Commit see why, as documented.
    std::string msg = "write batch failed earlier; nothing was committed: " + b.failure.message();
    return b.failure.code() == Status::Code::kResourceExhausted ? Status::ResourceExhausted(msg)
         : b.failure.code() == Status::Code::kCorruption       ? Status::Corruption(msg)
         : b.failure.code() == Status::Code::kIOError          ? Status::IOError(msg)
                                                               : Status::FailedPrecondition(msg);
  }
  MDB_txn* txn = b.txn.get();
  // Chunks are stored at their full 16 slots from the start, so a growing
  // chunk is overwritten in place; new chunks have the largest keys (see
  // ChunkCreationLeaf) and are appended in key order into full pages.
  std::map<uint64_t, const Bytes*> writes;  // tree key -> the chunk's hashes
  for (auto& [gc, bytes] : b.completed) {
    std::optional<uint64_t> key = ChunkCreationLeaf(gc.first, gc.second);
    if (!key) return Status::ResourceExhausted("tree size out of range");
    writes[*key] = &bytes;
  }
  for (int g = 0; g < kGroups; g++) {
    if (!b.dirty[g] || b.partials[g].hashes.empty()) continue;
    std::optional<uint64_t> key = ChunkCreationLeaf(g, b.partials[g].chunk);
    if (!key) return Status::ResourceExhausted("tree size out of range");
    writes[*key] = &b.partials[g].hashes;
  }
  std::string value(kChunkBytes, '\0');
  for (const auto& [leaf, hashes] : writes) {
    // The one chunk per group that was partial when the batch began exists.
    bool exists = leaf < b.start_size;
    value.replace(0, hashes->size(), *hashes);
    std::fill(value.begin() + static_cast<std::ptrdiff_t>(hashes->size()), value.end(), '\0');
    std::string key = IndexKey(leaf);
    MDB_val k = Val(key), v = Val(value);
    int rc = mdb_put(txn, b.store->dbis.tree, &k, &v, exists ? 0 : MDB_APPEND);
    if (rc != 0) return LmdbError("writing hashes", rc);
  }
  // New leaves go to the in-memory index before the commit, so no snapshot
  // of the new size misses them; an entry left by a failed batch is
  // harmless (lookups confirm the hash). Once the threshold is pending and
  // no merge is running, they are frozen and a merge starts; a running
  // merge advances by a share of its pairs proportional to this batch's
  // leaves (see LeafMergeBudget), on a copy kept only if the txn commits.
  for (const auto& [prefix, index] : b.batch_prefixes) b.pending->Add(prefix, index);
  for (const auto& [key, index] : b.batch_keys) b.pending->Add(PrefixOf(key), index);
  const StoreOptions& opts = b.store->options;
  std::optional<LeafMerge> merge = b.store->merge;
  bool started = false, finished = false;
  // Memory for the next pending generation and the frozen leaves is
  // reused from the last freeze once no snapshot holds it, so that
  // ledgerd's memory stays flat instead of being freed and taken again at
  // every merge.
  std::shared_ptr<PendingLeaves> next_pending;
  if (!merge && b.pending->size() >= opts.leaf_index_merge_threshold) {
    std::shared_ptr<FrozenLeaves> frozen;
    {
      std::lock_guard<std::mutex> l(b.store->mu);
      if (b.store->spare_frozen.use_count() == 1) frozen = std::move(b.store->spare_frozen);
      if (b.store->spare_pending.use_count() == 1) next_pending = std::move(b.store->spare_pending);
    }
    if (!frozen) frozen = std::make_shared<FrozenLeaves>();
    if (next_pending) next_pending->Clear();
    else next_pending = std::make_shared<PendingLeaves>(opts.leaf_index_merge_threshold);
    frozen->pairs.clear();
    bool too_many = false;
    b.pending->ForEach([&](uint64_t prefix, uint64_t index) {
      if (index >= b.range.size()) return;  // stale: from a batch that failed
      if (index >= kMaxIndexedLeaf) too_many = true;
      frozen->pairs.push_back(LeafPair{Prefix48(prefix), index});
    });
    if (too_many) return Status::ResourceExhausted("leaf index holds at most 2^40 leaves");
    std::sort(frozen->pairs.begin(), frozen->pairs.end());
    frozen->Index();
    LEDGER_ASSIGN_OR_RETURN(std::vector<LeafRun> runs, LoadRuns(txn, b.store->dbis.meta));
    LEDGER_ASSIGN_OR_RETURN(LeafMerge started_merge,
                            LeafMerge::Start(txn, b.store->dbis, std::move(runs), std::move(frozen),
                                             opts.leaf_index_merge_threshold, b.range.size()));
    merge = std::move(started_merge);
    started = true;
  }
  if (merge) {
    LEDGER_RETURN_IF_ERROR(merge->Advance(txn, LeafMergeBudget(*merge, b.range.size(), opts)));
    if (merge->done()) {
      LEDGER_ASSIGN_OR_RETURN(std::vector<LeafRun> runs, merge->Finish(txn));
      LEDGER_RETURN_IF_ERROR(PutMeta(txn, b.store->dbis.meta, "leafruns", EncodeRuns(runs)));
      std::string indexed;
      AppendU64(&indexed, merge->indexed_size());
      LEDGER_RETURN_IF_ERROR(PutMeta(txn, b.store->dbis.meta, "indexed_size", indexed));
      LEDGER_RETURN_IF_ERROR(DropKeysBelow(txn, b.store->dbis, merge->indexed_size()));
      finished = true;
    }
  }
  std::string size;
  AppendU64(&size, b.range.size());
  Hash root = b.range.Root();
  LEDGER_RETURN_IF_ERROR(PutMeta(txn, b.store->dbis.meta, "size", size));
  LEDGER_RETURN_IF_ERROR(PutMeta(txn, b.store->dbis.meta, "root", HashView(root)));
  int rc = b.txn.Commit();
  if (rc != 0) return LmdbError("committing", rc);
  std::lock_guard<std::mutex> l(b.store->mu);
  // A snapshot taken between the commit and here has the old pending
  // generation, which holds every frozen leaf; one taken after has the
  // frozen leaves, or the published run.
  if (started) {
    b.store->spare_pending = std::move(b.store->pending);  // the frozen generation
    b.store->pending = std::move(next_pending);
    b.store->frozen = merge->incoming();
  }
  if (finished) {
    b.store->spare_frozen = std::const_pointer_cast<FrozenLeaves>(b.store->frozen);
    b.store->frozen.reset();
    b.store->indexed_size = merge->indexed_size();
    b.store->merge.reset();
  } else {
    b.store->merge = std::move(merge);
  }
  b.store->range = std::move(b.range);
  b.store->partials = std::move(b.partials);
  b.store->origin = b.origin;
  return Status::OK();
}

}  // namespace ledger
