#include "request_ids.h"

#include <sodium.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "ledger/record.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::ByteView;
using ledger::Status;

constexpr uint64_t kMaxIndex = (uint64_t{1} << 40) - 1;
constexpr size_t kCachedResolutions = 1024;

bool IsRequestKey(ByteView key) { return key.size() >= 2 && key[0] == 'r' && key[1] == '/'; }

}  // namespace

// --- The spill file ------------------------------------------------------------

namespace {

constexpr size_t kRecordBytes = 16;      // fp, index: native u64 each (a private file)
constexpr size_t kBlockRecords = 256;    // one pread per run and lookup
constexpr size_t kMaxRuns = 8;
constexpr size_t kIoBufferRecords = 8192;  // 128 KiB of records per read or write

Status IoFailure(const std::string& what) {
  return Status::IOError("audit request-id spill file: " + what + ": " + std::strerror(errno));
}

Status PWriteAll(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return IoFailure("write");
    p += w, n -= static_cast<size_t>(w), off += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

Status PReadAll(int fd, char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return IoFailure("read");
    if (r == 0) {
      errno = EIO;
      return IoFailure("read (short file)");
    }
    p += r, n -= static_cast<size_t>(r), off += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

// OpenSpillFile creates an unlinked temporary file in |dir|.
ledger::StatusOr<int> OpenSpillFile(const std::string& dir) {
  std::string d = dir;
  if (d.empty()) {
    const char* t = std::getenv("TMPDIR");
    d = t && *t ? t : "/tmp";
  }
  std::string path = d + "/ledger-verify-ids.XXXXXX";
  std::vector<char> buf(path.begin(), path.end());
  buf.push_back('\0');
  int fd = ::mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return IoFailure("cannot create one in " + d);
  ::unlink(buf.data());
  return fd;
}

struct Record {
  uint64_t fp;
  uint64_t index;
};

}  // namespace

struct RequestIdSet::Spill {
  struct Run {
    uint64_t offset = 0;  // bytes
    uint64_t count = 0;   // records
    uint64_t last = 0;    // the largest fingerprint
    std::vector<uint64_t> fences;  // fences[b]: fingerprint of record b * kBlockRecords
  };
  int fd = -1;
  uint64_t end = 0;
  std::vector<Run> runs;
  uint64_t records = 0;
  // A one-hash Bloom filter over every spilled fingerprint, of a fixed size
  // (an eighth of the budget): most absent ids (the usual question) need no
  // read; its false positives grow with the spilled ids, its size does not.
  std::vector<uint64_t> filter;
  uint64_t filter_mask = 0;  // bits - 1

  void InitFilter(uint64_t budget) {
    uint64_t bits = 4096;
    while (bits * 2 / 8 <= budget / 8 && bits < (uint64_t{1} << 36)) bits *= 2;
    filter.assign(bits / 64, 0);
    filter_mask = bits - 1;
  }
  uint64_t FilterBit(uint64_t fp) const { return ledger::Mix64(fp ^ 0x9e3779b97f4a7c15ULL) & filter_mask; }
  void FilterAdd(uint64_t fp) {
    uint64_t b = FilterBit(fp);
    filter[b / 64] |= uint64_t{1} << (b % 64);
  }
  bool FilterMaybe(uint64_t fp) const {
    uint64_t b = FilterBit(fp);
    return (filter[b / 64] >> (b % 64)) & 1;
  }

  ~Spill() {
    if (fd >= 0) ::close(fd);
  }

  // RunWriter appends one sorted run at the end of |fd|.
  struct RunWriter {
    int fd;
    Run run;
    std::vector<Record> buf;
    Status st;
    RunWriter(int f, uint64_t offset) : fd(f) { run.offset = offset; buf.reserve(kIoBufferRecords); }
    void Add(uint64_t fp, uint64_t index) {
      if (run.count % kBlockRecords == 0) run.fences.push_back(fp);
      run.last = fp;
      run.count++;
      buf.push_back(Record{fp, index});
      if (buf.size() == kIoBufferRecords) Flush();
    }
    void Flush() {
      if (st.ok() && !buf.empty())
        st = PWriteAll(fd, reinterpret_cast<const char*>(buf.data()), buf.size() * kRecordBytes,
                       run.offset + (run.count - buf.size()) * kRecordBytes);
      buf.clear();
    }
  };

  // Scan calls |fn| on every record of |run| in order (buffered reads);
  // stops early if fn returns false.
  Status Scan(const Run& run, const std::function<bool(const Record&)>& fn) const {
    std::vector<Record> buf;
    for (uint64_t at = 0; at < run.count;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kIoBufferRecords, run.count - at));
      buf.resize(n);
      LEDGER_RETURN_IF_ERROR(
          PReadAll(fd, reinterpret_cast<char*>(buf.data()), n * kRecordBytes, run.offset + at * kRecordBytes));
      for (const Record& r : buf)
        if (!fn(r)) return Status::OK();
      at += n;
    }
    return Status::OK();
  }

  // Locate calls |fn| on each record of |run| whose fingerprint is |fp|,
  // with its position; one block read in general.
  Status Locate(const Run& run, uint64_t fp, const std::function<Status(const Record&, uint64_t pos)>& fn) const {
    if (run.count == 0 || fp < run.fences[0] || fp > run.last) return Status::OK();
    size_t b = static_cast<size_t>(std::lower_bound(run.fences.begin(), run.fences.end(), fp) - run.fences.begin());
    if (b > 0) b--;  // the block before the first one starting at >= fp may end with fp
    Record block[kBlockRecords];
    for (; b < run.fences.size(); b++) {
      if (run.fences[b] > fp) break;
      uint64_t first = uint64_t{b} * kBlockRecords;
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBlockRecords, run.count - first));
      LEDGER_RETURN_IF_ERROR(
          PReadAll(fd, reinterpret_cast<char*>(block), n * kRecordBytes, run.offset + first * kRecordBytes));
      const Record* hit = std::lower_bound(block, block + n, fp, [](const Record& r, uint64_t v) { return r.fp < v; });
      for (; hit != block + n && hit->fp == fp; ++hit)
        LEDGER_RETURN_IF_ERROR(fn(*hit, first + static_cast<uint64_t>(hit - block)));
      if (hit != block + n) break;  // a larger fingerprint ends the matches
    }
    return Status::OK();
  }

  // MergeRuns rewrites every run into one, in a new file (the old one's
  // space goes back when it is closed).
  Status MergeRuns(const std::string& dir) {
    LEDGER_ASSIGN_OR_RETURN(int out_fd, OpenSpillFile(dir));
    struct Cursor {
      const Run* run;
      uint64_t at = 0;  // records consumed
      std::vector<Record> buf;
      size_t pos = 0;
    };
    const size_t per_run = 1024;  // 16 KiB of read buffer a run
    std::vector<Cursor> cursors;
    for (const Run& r : runs) cursors.push_back(Cursor{&r, 0, {}, 0});
    auto refill = [&](Cursor& c) -> Status {
      size_t n = static_cast<size_t>(std::min<uint64_t>(per_run, c.run->count - c.at));
      c.buf.resize(n);
      c.pos = 0;
      if (n == 0) return Status::OK();
      Status st = PReadAll(fd, reinterpret_cast<char*>(c.buf.data()), n * kRecordBytes,
                           c.run->offset + c.at * kRecordBytes);
      c.at += n;
      return st;
    };
    Status st;
    for (Cursor& c : cursors)
      if (st.ok()) st = refill(c);
    RunWriter w(out_fd, 0);
    while (st.ok()) {
      Cursor* best = nullptr;
      for (Cursor& c : cursors)
        if (c.pos < c.buf.size() && (!best || c.buf[c.pos].fp < best->buf[best->pos].fp)) best = &c;
      if (!best) break;
      const Record& r = best->buf[best->pos++];
      w.Add(r.fp, r.index);
      if (best->pos == best->buf.size()) st = refill(*best);
    }
    w.Flush();
    if (st.ok()) st = w.st;
    if (!st.ok()) {
      ::close(out_fd);
      return st;
    }
    ::close(fd);
    fd = out_fd;
    end = w.run.count * kRecordBytes;
    runs.clear();
    runs.push_back(std::move(w.run));
    return Status::OK();
  }
};

RequestIdSet::RequestIdSet(unsigned fingerprint_bits, const Bytes& key, uint64_t memory_budget, std::string spill_dir)
    : bits_(fingerprint_bits == 0 || fingerprint_bits > 64 ? 64 : fingerprint_bits),
      key_(key),
      budget_(memory_budget),
      spill_dir_(std::move(spill_dir)),
      shards_(256) {
  if (key_.size() != crypto_shorthash_KEYBYTES) {
    key_.assign(crypto_shorthash_KEYBYTES, '\0');
    if (sodium_init() < 0) std::memset(key_.data(), 0x5a, key_.size());  // never: sodium_init only fails without entropy
    else randombytes_buf(key_.data(), key_.size());
  }
}

RequestIdSet::~RequestIdSet() = default;
RequestIdSet::RequestIdSet(RequestIdSet&&) noexcept = default;
RequestIdSet& RequestIdSet::operator=(RequestIdSet&&) noexcept = default;

uint64_t RequestIdSet::Fingerprint(ByteView state_key) const {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, reinterpret_cast<const unsigned char*>(state_key.data()), state_key.size(),
                   reinterpret_cast<const unsigned char*>(key_.data()));
  uint64_t fp;
  std::memcpy(&fp, out, sizeof fp);
  return bits_ == 64 ? fp : (fp & ((uint64_t{1} << bits_) - 1));
}

Status RequestIdSet::Find(uint64_t fp, std::vector<uint64_t>* out) const {
  uint64_t stored = Stored(fp);
  const Shard& s = ShardOf(fp);
  if (!s.fps.empty()) {
    size_t mask = s.fps.size() - 1;
    for (size_t i = ledger::Mix64(stored) & mask; s.fps[i] != 0; i = (i + 1) & mask)
      if (s.fps[i] == stored) out->push_back(uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32));
  }
  if (!spill_ || !spill_->FilterMaybe(stored)) return Status::OK();
  for (const Spill::Run& run : spill_->runs)
    LEDGER_RETURN_IF_ERROR(spill_->Locate(run, stored, [&](const Record& r, uint64_t) {
      out->push_back(r.index);
      return Status::OK();
    }));
  return Status::OK();
}

void RequestIdSet::Put(Shard& s, uint64_t stored, uint64_t index) {
  size_t mask = s.fps.size() - 1;
  size_t i = ledger::Mix64(stored) & mask;
  while (s.fps[i] != 0) i = (i + 1) & mask;
  s.fps[i] = stored;
  s.lo[i] = static_cast<uint32_t>(index);
  s.hi[i] = static_cast<uint8_t>(index >> 32);
  s.used++;
}

void RequestIdSet::Grow(Shard& s) {
  Shard old = std::move(s);
  size_t cap = old.fps.empty() ? 64 : old.fps.size() * 2;
  s = Shard();
  s.fps.assign(cap, 0);
  s.lo.assign(cap, 0);
  s.hi.assign(cap, 0);
  for (size_t i = 0; i < old.fps.size(); i++)
    if (old.fps[i] != 0) Put(s, old.fps[i], uint64_t{old.lo[i]} | (uint64_t{old.hi[i]} << 32));
}

Status RequestIdSet::SpillTables() {
  if (!spill_) {
    LEDGER_ASSIGN_OR_RETURN(int fd, OpenSpillFile(spill_dir_));
    spill_ = std::make_unique<Spill>();
    spill_->fd = fd;
    spill_->InitFilter(budget_);
  }
  // Shards hold disjoint, increasing ranges of fingerprints (by top byte),
  // so sorting shard by shard writes one sorted run with a shard's worth of
  // scratch memory.
  Spill::RunWriter w(spill_->fd, spill_->end);
  std::vector<Record> scratch;
  uint64_t n = 0;
  for (Shard& s : shards_) {
    scratch.clear();
    for (size_t i = 0; i < s.fps.size(); i++)
      if (s.fps[i] != 0) scratch.push_back(Record{s.fps[i], uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32)});
    std::sort(scratch.begin(), scratch.end(),
              [](const Record& a, const Record& b) { return a.fp < b.fp || (a.fp == b.fp && a.index < b.index); });
    for (const Record& r : scratch) {
      w.Add(r.fp, r.index);
      spill_->FilterAdd(r.fp);
    }
    n += scratch.size();
  }
  w.Flush();
  LEDGER_RETURN_IF_ERROR(w.st);
  if (n == 0) return Status::OK();
  spill_->end += n * kRecordBytes;
  spill_->records += n;
  spill_->runs.push_back(std::move(w.run));
  // Emptied, not freed: the next ids reuse the memory.
  for (Shard& s : shards_) {
    std::fill(s.fps.begin(), s.fps.end(), 0);
    s.used = 0;
  }
  if (spill_->runs.size() > kMaxRuns) LEDGER_RETURN_IF_ERROR(spill_->MergeRuns(spill_dir_));
  return Status::OK();
}

Status RequestIdSet::Insert(uint64_t fp, uint64_t index) {
  if (index > kMaxIndex) return Status::InvalidArgument("the audit records request ids of entries below 2^40 only");
  Shard* s = &ShardOf(fp);
  // At most 3/4 full: an absent fingerprint (the usual question) is found
  // absent after a few probes.
  if (4 * (s->used + 1) > 3 * s->fps.size()) {
    size_t cap = s->fps.empty() ? 64 : s->fps.size() * 2;
    // The tables get 7/8 of the budget, the spill filter the rest.
    if (table_bytes_ - ShardBytes(s->fps.size()) + ShardBytes(cap) > budget_ - budget_ / 8 && size_ > spilled()) {
      // Over the budget: the tables go to the spill file, and this shard
      // has room again unless it never had any.
      LEDGER_RETURN_IF_ERROR(SpillTables());
      s = &ShardOf(fp);
    }
    if (4 * (s->used + 1) > 3 * s->fps.size()) {
      table_bytes_ -= ShardBytes(s->fps.size());
      Grow(*s);
      table_bytes_ += ShardBytes(s->fps.size());
    }
  }
  Put(*s, Stored(fp), index);
  size_++;
  return Status::OK();
}

Status RequestIdSet::Replace(uint64_t fp, uint64_t from, uint64_t to) {
  if (to > kMaxIndex) return Status::InvalidArgument("the audit records request ids of entries below 2^40 only");
  uint64_t stored = Stored(fp);
  Shard& s = ShardOf(fp);
  if (!s.fps.empty()) {
    size_t mask = s.fps.size() - 1;
    for (size_t i = ledger::Mix64(stored) & mask; s.fps[i] != 0; i = (i + 1) & mask) {
      if (s.fps[i] == stored && (uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32)) == from) {
        s.lo[i] = static_cast<uint32_t>(to);
        s.hi[i] = static_cast<uint8_t>(to >> 32);
        return Status::OK();
      }
    }
  }
  if (!spill_ || !spill_->FilterMaybe(stored)) return Status::OK();
  bool done = false;
  for (const Spill::Run& run : spill_->runs) {
    LEDGER_RETURN_IF_ERROR(spill_->Locate(run, stored, [&](const Record& r, uint64_t pos) {
      if (done || r.index != from) return Status::OK();
      done = true;
      // The fingerprint is unchanged, so the run stays sorted.
      return PWriteAll(spill_->fd, reinterpret_cast<const char*>(&to), sizeof to,
                       run.offset + pos * kRecordBytes + offsetof(Record, index));
    }));
    if (done) break;
  }
  return Status::OK();
}

uint64_t RequestIdSet::memory_bytes() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) n += s.fps.capacity() * 8 + s.lo.capacity() * 4 + s.hi.capacity();
  if (spill_) {
    n += spill_->filter.capacity() * 8;
    for (const Spill::Run& r : spill_->runs) n += r.fences.capacity() * 8;
  }
  return n;
}

uint64_t RequestIdSet::spilled() const { return spill_ ? spill_->records : 0; }
size_t RequestIdSet::runs() const { return spill_ ? spill_->runs.size() : 0; }

Status RequestIdSet::ForEach(const std::function<void(uint64_t, uint64_t)>& fn) const {
  for (const Shard& s : shards_)
    for (size_t i = 0; i < s.fps.size(); i++)
      if (s.fps[i] != 0) fn(s.fps[i], uint64_t{s.lo[i]} | (uint64_t{s.hi[i]} << 32));
  if (!spill_) return Status::OK();
  for (const Spill::Run& run : spill_->runs)
    LEDGER_RETURN_IF_ERROR(spill_->Scan(run, [&](const Record& r) {
      fn(r.fp, r.index);
      return true;
    }));
  return Status::OK();
}

// --- AuditStateStore ----------------------------------------------------------

ledger::StatusOr<std::optional<AuditStateStore::ResolvedRequest>> AuditStateStore::Resolve(uint64_t index) {
  auto it = cache_.find(index);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  if (!resolve_) return Status::Internal("the audit cannot read entry " + std::to_string(index) + " again: no entry source");
  resolutions_++;
  LEDGER_ASSIGN_OR_RETURN(std::optional<ResolvedRequest> r, resolve_(index));
  if (cache_.size() >= kCachedResolutions) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(index);
  cache_.emplace(index, std::make_pair(r, lru_.begin()));
  return r;
}

ledger::StatusOr<std::optional<Bytes>> AuditStateStore::Get(ByteView key) {
  if (!IsRequestKey(key)) return others_.Get(key);
  std::vector<uint64_t> candidates;
  LEDGER_RETURN_IF_ERROR(ids_.Find(ids_.Fingerprint(key), &candidates));
  for (uint64_t index : candidates) {
    LEDGER_ASSIGN_OR_RETURN(auto r, Resolve(index));
    if (r && r->key == key) return std::optional<Bytes>(Bytes(r->value));
  }
  return std::optional<Bytes>();
}

Status AuditStateStore::Put(ByteView key, ByteView value) {
  if (!IsRequestKey(key)) return others_.Put(key, value);
  // The rules' value is "<index> <payload hash>", the entry's own: only the
  // index is kept, the rest is what that entry says.
  auto sp = value.find(' ');
  auto index = ledger::ParseUint64(value.substr(0, sp));
  if (sp == ByteView::npos || !index.ok()) return Status::Corruption("request id state value is malformed");
  uint64_t fp = ids_.Fingerprint(key);
  std::vector<uint64_t> candidates;
  LEDGER_RETURN_IF_ERROR(ids_.Find(fp, &candidates));
  for (uint64_t old : candidates) {
    LEDGER_ASSIGN_OR_RETURN(auto r, Resolve(old));
    if (r && r->key == key) return ids_.Replace(fp, old, *index);
  }
  return ids_.Insert(fp, *index);
}

Status AuditStateStore::Delete(ByteView key) {
  if (!IsRequestKey(key)) return others_.Delete(key);
  return Status::Internal("the audit never deletes request ids");
}

ledger::StatusOr<bool> AuditStateStore::MaybeSeen(ByteView request_key, uint64_t* fp) const {
  *fp = ids_.Fingerprint(request_key);
  std::vector<uint64_t> candidates;
  LEDGER_RETURN_IF_ERROR(ids_.Find(*fp, &candidates));
  return !candidates.empty();
}

Status AuditStateStore::RecordNew(uint64_t fp, uint64_t index) { return ids_.Insert(fp, index); }

std::string RequestKeyOf(const std::string& accessor, const std::string& request_id) {
  return "r/" + accessor + "/" + request_id;
}

std::optional<AuditStateStore::ResolvedRequest> ResolvedRequestOf(ByteView entry, uint64_t index) {
  auto e = ledger::ParseEntry(entry);
  if (!e.ok() || e->kind != ledger::EntryKind::kAccess) return std::nullopt;
  AuditStateStore::ResolvedRequest r;
  r.key = RequestKeyOf(e->access().accessor, e->access().request_id);
  r.value = std::to_string(index) + " " + ledger::HexEncode(ledger::HashView(ledger::Sha256(e->envelope.payload)));
  return r;
}

}  // namespace verifier
