#include "log_reader.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <thread>

#include "ledger/tiles.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::Hash;
using ledger::Status;

// Proofs touch at most two tiles per tile level; a thousand tiles (32 MiB at
// worst) keeps a report's worth of proofs from refetching.
constexpr size_t kMaxCachedTiles = 1024;

}  // namespace

namespace {

std::string WitnessName(const std::string& vkey) { return vkey.substr(0, vkey.find('+')); }

// QuorumMessage explains a checkpoint below quorum.
std::string QuorumMessage(const WitnessPolicy& policy, const std::vector<ledger::WitnessCosignature>& cosigned) {
  std::string names;
  for (const auto& c : cosigned) names += (names.empty() ? "" : ", ") + WitnessName(c.witness);
  return "witness quorum not met: " + std::to_string(cosigned.size()) + " valid cosignature" +
         (cosigned.size() == 1 ? "" : "s") + " from distinct listed witnesses, " + std::to_string(policy.quorum) +
         " required (of " + std::to_string(policy.distinct) + " listed; cosigned by: " +
         (names.empty() ? std::string("none") : names) + ")";
}

// Sorted: reports depend on the checkpoint and the policy, not on the order
// the witnesses were listed in.
std::vector<ledger::WitnessCosignature> SortedByKey(std::vector<ledger::WitnessCosignature> cosigned) {
  std::sort(cosigned.begin(), cosigned.end(),
            [](const ledger::WitnessCosignature& x, const ledger::WitnessCosignature& y) { return x.witness < y.witness; });
  return cosigned;
}

}  // namespace

ledger::StatusOr<SignedCheckpoint> OpenSignedCheckpoint(const std::string& note, const ledger::NoteVerifier& log_key,
                                                        const WitnessPolicy& witnesses,
                                                        std::vector<ledger::WitnessCosignature>* cosigned) {
  if (cosigned) cosigned->clear();
  if (!witnesses.active()) {
    auto cp = ledger::OpenCheckpoint(note, log_key);
    if (!cp.ok()) return cp.status();
    return SignedCheckpoint{note, std::move(cp).value(), {}};
  }
  std::vector<ledger::WitnessCosignature> found;
  auto cp = ledger::OpenWitnessedCheckpoint(note, log_key, witnesses.witnesses, witnesses.quorum, &found);
  if (cp.ok()) {
    if (cosigned) *cosigned = found;
    return SignedCheckpoint{note, std::move(cp).value(), std::move(found)};
  }
  if (cp.status().code() != Status::Code::kPermissionDenied) return cp.status();
  // Refused: for the log's signature or a listed witness's bad line (which
  // the same call without a quorum refuses too), or for the quorum alone;
  // in that case, say who did cosign.
  auto any = ledger::OpenWitnessedCheckpoint(note, log_key, witnesses.witnesses, 0, &found);
  if (!any.ok()) return any.status();
  if (cosigned) *cosigned = found;
  return Status::PermissionDenied(QuorumMessage(witnesses, found));
}

ledger::StatusOr<SignedCheckpoint> FetchCheckpoint(Fetcher& fetcher, const ledger::NoteVerifier& log_key,
                                                   const WitnessPolicy& witnesses,
                                                   std::vector<ledger::WitnessCosignature>* cosigned) {
  auto note = fetcher.Get("checkpoint");
  if (!note.ok()) return note.status();
  auto cp = OpenSignedCheckpoint(*note, log_key, witnesses, cosigned);
  if (!cp.ok()) {
    std::string where = "the checkpoint at " + fetcher.Describe("checkpoint") + ": ";
    if (cp.status().code() == Status::Code::kPermissionDenied) return Status::PermissionDenied(where + cp.status().message());
    return Status::InvalidArgument(where + cp.status().message());
  }
  return cp;
}

bool IsQuorumFailure(const Status& s) {
  return s.code() == Status::Code::kPermissionDenied && s.message().find("witness quorum not met") != std::string::npos;
}

ordered_json WitnessesJson(const WitnessPolicy& policy, const std::vector<ledger::WitnessCosignature>& unsorted) {
  const std::vector<ledger::WitnessCosignature> cosigned = SortedByKey(unsorted);
  ordered_json j;
  j["quorum"] = policy.quorum;
  j["listed"] = policy.distinct;
  j["valid"] = cosigned.size();
  ordered_json yes = ordered_json::array();
  for (const auto& c : cosigned) yes.push_back(ordered_json{{"witness", c.witness}, {"timestamp", c.timestamp}});
  j["cosigned"] = yes;
  ordered_json no = ordered_json::array();
  for (const std::string& k : policy.DistinctKeys()) {
    bool found = false;
    for (const auto& c : cosigned) found = found || c.witness == k;
    if (!found) no.push_back(k);
  }
  j["not_cosigned"] = no;
  return j;
}

std::string WitnessesText(const WitnessPolicy& policy, const std::vector<ledger::WitnessCosignature>& unsorted,
                          const std::string& indent) {
  const std::vector<ledger::WitnessCosignature> cosigned = SortedByKey(unsorted);
  std::string out = indent + "witnesses   " + std::to_string(cosigned.size()) + " of " + std::to_string(policy.distinct) +
                    " listed cosigned, quorum " + std::to_string(policy.quorum) + "\n";
  for (const auto& c : cosigned)
    out += indent + "  cosigned      " + c.witness + " (time " + std::to_string(c.timestamp) + ")\n";
  for (const std::string& k : policy.DistinctKeys()) {
    bool found = false;
    for (const auto& c : cosigned) found = found || c.witness == k;
    if (!found) out += indent + "  not cosigned  " + k + "\n";
  }
  return out;
}

bool IsVerificationFailure(const Status& s) {
  return s.code() == Status::Code::kPermissionDenied || s.code() == Status::Code::kInvalidArgument ||
         s.code() == Status::Code::kCorruption;
}

ledger::StatusOr<Bytes> FetchHashTile(Fetcher& fetcher, uint8_t level, uint64_t index, uint32_t width) {
  ledger::TileId id;
  id.level = level;
  id.index = index;
  id.width = width;
  std::string path = ledger::FormatTilePath(id);
  auto tile = fetcher.Get(path);
  if (!tile.ok() && tile.status().IsNotFound() && width < ledger::kTileWidth) {
    // C2SP tlog-tiles: a partial tile may be gone once the full tile exists.
    id.width = ledger::kTileWidth;
    path = ledger::FormatTilePath(id);
    tile = fetcher.Get(path);
  }
  if (!tile.ok()) return tile.status();
  size_t want = static_cast<size_t>(id.width) * 32;
  if (tile->size() != want)
    return Status::Corruption(fetcher.Describe(path) + " is " + std::to_string(tile->size()) + " bytes, not " +
                              std::to_string(want));
  tile->resize(static_cast<size_t>(width) * 32);
  return tile;
}

ledger::StatusOr<Bytes> FetchEntryBundle(Fetcher& fetcher, uint64_t index, uint32_t width) {
  ledger::TileId id;
  id.entries = true;
  id.index = index;
  id.width = width;
  std::string path = ledger::FormatTilePath(id);
  auto bundle = fetcher.Get(path);
  if (!bundle.ok() && bundle.status().IsNotFound() && width < ledger::kTileWidth) {
    id.width = ledger::kTileWidth;
    path = ledger::FormatTilePath(id);
    bundle = fetcher.Get(path);
  }
  if (!bundle.ok()) return bundle.status();
  auto entries = ledger::ParseEntryBundle(*bundle);
  if (!entries.ok())
    return Status::Corruption(fetcher.Describe(path) + " is not an entry bundle: " + entries.status().message());
  if (entries->size() != id.width)
    return Status::Corruption(fetcher.Describe(path) + " holds " + std::to_string(entries->size()) +
                              " entries, not " + std::to_string(id.width));
  // A full bundle fetched in place of a partial one is cut after the
  // width-th entry; a bundle is a plain concatenation, so that is a prefix.
  const ledger::ByteView& last = (*entries)[width - 1];
  size_t end = static_cast<size_t>(last.data() + last.size() - bundle->data());
  bundle->resize(end);
  return bundle;
}

ledger::Status TileHashReader::ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<Hash>* out) const {
  out->clear();
  out->reserve(ids.size());
  for (const ledger::NodeId& id : ids) {
    if (id.level >= 64) return Status::InvalidArgument("node level " + std::to_string(id.level) + " is out of range");
    uint8_t tile_level = static_cast<uint8_t>(id.level / ledger::kTileHeight);
    unsigned height = id.level % ledger::kTileHeight;
    // The node covers 2^height consecutive hashes of the tile's base level,
    // always inside one tile because 2^height divides the tile width.
    uint64_t first = id.index << height;
    uint64_t count = uint64_t{1} << height;
    uint64_t tile_index = first / ledger::kTileWidth;
    uint64_t offset = first % ledger::kTileWidth;
    if ((first >> height) != id.index) return Status::InvalidArgument("node index out of range");
    uint32_t width = ledger::TileWidthForSize(tile_level, tile_index, tree_size_);
    if (offset + count > width)
      return Status::NotFound("node (" + std::to_string(id.level) + ", " + std::to_string(id.index) +
                              ") is not complete in the tree of size " + std::to_string(tree_size_));
    LEDGER_ASSIGN_OR_RETURN(std::shared_ptr<const Bytes> tile, Tile(tile_level, tile_index));
    std::vector<Hash> level(count);
    for (uint64_t k = 0; k < count; k++) {
      const char* p = tile->data() + (offset + k) * 32;
      std::copy(p, p + 32, reinterpret_cast<char*>(level[k].data()));
    }
    while (level.size() > 1) {
      std::vector<Hash> up(level.size() / 2);
      for (size_t k = 0; k < up.size(); k++) up[k] = ledger::HashChildren(level[2 * k], level[2 * k + 1]);
      level.swap(up);
    }
    out->push_back(level[0]);
  }
  return Status::OK();
}

ledger::StatusOr<std::shared_ptr<const Bytes>> TileHashReader::Tile(uint8_t level, uint64_t index) const {
  auto key = std::make_pair(level, index);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  uint32_t width = ledger::TileWidthForSize(level, index, tree_size_);
  LEDGER_ASSIGN_OR_RETURN(Bytes tile, FetchHashTile(*fetcher_, level, index, width));
  auto shared = std::make_shared<const Bytes>(std::move(tile));
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= kMaxCachedTiles) cache_.clear();  // proofs are local; a cold restart is cheap
  cache_[key] = shared;
  return shared;
}

ledger::StatusOr<Bytes> EntryAt(Fetcher& fetcher, uint64_t index, uint64_t tree_size) {
  if (index >= tree_size)
    return Status::OutOfRange("entry " + std::to_string(index) + " is beyond the tree size " + std::to_string(tree_size));
  uint64_t bundle = index / ledger::kTileWidth;
  uint32_t width = ledger::TileWidthForSize(0, bundle, tree_size);
  LEDGER_ASSIGN_OR_RETURN(Bytes raw, FetchEntryBundle(fetcher, bundle, width));
  LEDGER_ASSIGN_OR_RETURN(auto entries, ledger::ParseEntryBundle(raw));
  return Bytes(entries[index % ledger::kTileWidth]);
}

namespace {

// PrepareChunk fetches a bundle and hashes (and parses) its entries; runs
// on the worker threads.
void FetchChunk(Fetcher& fetcher, uint64_t end, BundleChunk* chunk) {
  chunk->width = ledger::TileWidthForSize(0, chunk->bundle, end);
  auto raw = FetchEntryBundle(fetcher, chunk->bundle, chunk->width);
  if (!raw.ok()) {
    chunk->status = raw.status();
    return;
  }
  chunk->raw = std::move(raw).value();
}

void ProcessChunk(uint64_t start, bool parse, BundleChunk* chunk) {
  if (!chunk->status.ok()) return;
  auto all = ledger::ParseEntryBundle(chunk->raw);
  if (!all.ok()) {  // FetchEntryBundle checked it; keep the guard anyway
    chunk->status = Status::Corruption("entry bundle " + std::to_string(chunk->bundle) + ": " + all.status().message());
    return;
  }
  uint64_t base = chunk->bundle * ledger::kTileWidth;
  size_t skip = start > base ? static_cast<size_t>(start - base) : 0;
  chunk->first_index = base + skip;
  chunk->entries.assign(all->begin() + static_cast<std::ptrdiff_t>(std::min(skip, all->size())), all->end());
  chunk->leaf_hashes.reserve(chunk->entries.size());
  for (ledger::ByteView e : chunk->entries) chunk->leaf_hashes.push_back(ledger::HashLeaf(e));
  if (!parse) return;
  chunk->parsed.reserve(chunk->entries.size());
  for (ledger::ByteView e : chunk->entries) chunk->parsed.push_back(ledger::ParseEntry(e));
}

}  // namespace

ledger::Status StreamBundles(Fetcher& fetcher, uint64_t start, uint64_t end, const StreamOptions& options,
                             const std::function<ledger::Status(BundleChunk&)>& consume) {
  if (start >= end) return Status::OK();
  const uint64_t first = start / ledger::kTileWidth;
  const uint64_t last = (end - 1) / ledger::kTileWidth;
  const int fetch_threads = std::max(1, options.fetch_threads);
  const int work_threads = std::max(1, options.work_threads);
  // Enough bundles in flight to keep every thread busy, and no more: memory
  // stays at a few dozen bundles whatever the size of the log.
  const uint64_t window = static_cast<uint64_t>(2 * (fetch_threads + work_threads) + 2);

  // One condition variable per kind of waiter, so that an event wakes only
  // the threads it concerns: a notify_all on one shared variable woke all
  // six threads per event, and each needless wake-up is a futex call and a
  // context switch (a few microseconds on a VM).
  std::mutex mu;
  std::condition_variable fetch_cv;    // fetchers: a window slot, or stop
  std::condition_variable work_cv;     // workers: a fetched chunk, fetchers done, or stop
  std::condition_variable consume_cv;  // the calling thread: the next chunk is ready
  uint64_t next_fetch = first;
  uint64_t next_consume = first;
  int fetchers_running = fetch_threads;
  bool stop = false;
  std::deque<std::unique_ptr<BundleChunk>> fetched;
  std::map<uint64_t, std::unique_ptr<BundleChunk>> ready;

  auto fetch_loop = [&] {
    for (;;) {
      uint64_t n;
      {
        std::unique_lock<std::mutex> lock(mu);
        fetch_cv.wait(lock, [&] { return stop || next_fetch > last || next_fetch < next_consume + window; });
        if (stop || next_fetch > last) break;
        n = next_fetch++;
      }
      auto chunk = std::make_unique<BundleChunk>();
      chunk->bundle = n;
      FetchChunk(fetcher, end, chunk.get());
      std::lock_guard<std::mutex> lock(mu);
      fetched.push_back(std::move(chunk));
      work_cv.notify_one();
    }
    std::lock_guard<std::mutex> lock(mu);
    if (--fetchers_running == 0) work_cv.notify_all();
  };
  auto work_loop = [&] {
    for (;;) {
      std::unique_ptr<BundleChunk> chunk;
      {
        std::unique_lock<std::mutex> lock(mu);
        work_cv.wait(lock, [&] { return stop || !fetched.empty() || fetchers_running == 0; });
        if (stop || fetched.empty()) break;
        chunk = std::move(fetched.front());
        fetched.pop_front();
      }
      ProcessChunk(start, options.parse_entries, chunk.get());
      std::lock_guard<std::mutex> lock(mu);
      bool wanted = chunk->bundle == next_consume;
      ready[chunk->bundle] = std::move(chunk);
      if (wanted) consume_cv.notify_one();
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < fetch_threads; i++) threads.emplace_back(fetch_loop);
  for (int i = 0; i < work_threads; i++) threads.emplace_back(work_loop);

  Status result;
  for (uint64_t n = first; n <= last; n++) {
    std::unique_ptr<BundleChunk> chunk;
    {
      std::unique_lock<std::mutex> lock(mu);
      consume_cv.wait(lock, [&] { return ready.count(n) > 0; });
      chunk = std::move(ready[n]);
      ready.erase(n);
    }
    result = consume(*chunk);
    chunk.reset();
    std::lock_guard<std::mutex> lock(mu);
    next_consume = n + 1;
    if (!result.ok()) {
      stop = true;
      break;
    }
    // One more bundle fits in the window: one fetcher may start it.
    fetch_cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    fetch_cv.notify_all();
    work_cv.notify_all();
  }
  for (auto& t : threads) t.join();
  return result;
}

std::string ViolationRuleOf(const std::string& message) {
  auto colon = message.find(':');
  return colon == std::string::npos ? message : message.substr(0, colon);
}

}  // namespace verifier
