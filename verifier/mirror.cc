// mirror: copies a log into a directory in C2SP tlog-tiles layout, so that
// audits run offline (--log DIR) and any static web server can serve the
// copy. Nothing is written into place before it verifies: the checkpoint's
// signature, the root recomputed from the entries, every hash tile
// recomputed from the entries (and compared with the log's), and, when the
// directory already holds a mirror, the old checkpoint's root as a prefix
// of the new tree. Files are staged in DIR/.staging-<pid>, each fsynced,
// renamed into place once everything checks, and the checkpoint is written
// last (atomically), so the mirror's checkpoint never names missing data.
// Full tiles and bundles are immutable: existing ones are read locally and
// not fetched or written again.
//
// Thread-safety: the command runs on the main thread; StreamBundles'
// workers only fetch and hash, the tiles are built and staged in order.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>
#include <system_error>

#include "commands.h"
#include "fetcher.h"
#include "ledger/merkle.h"
#include "ledger/tiles.h"
#include "log_reader.h"

namespace verifier {
namespace {

using ledger::Bytes;
using ledger::Hash;
using ledger::Status;
namespace fs = std::filesystem;

std::string B64(const Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

bool IsFullTilePath(const std::string& path) { return path.rfind("tile/", 0) == 0 && path.find(".p/") == std::string::npos; }

// LocalFirstFetcher reads full (immutable) tiles and bundles from the
// existing mirror and everything else from the log.
class LocalFirstFetcher : public Fetcher {
 public:
  LocalFirstFetcher(Fetcher* local, Fetcher* remote) : local_(local), remote_(remote) {}
  ledger::StatusOr<Bytes> Get(const std::string& path) override {
    if (local_ && IsFullTilePath(path)) {
      auto b = local_->Get(path);
      if (b.ok() || !b.status().IsNotFound()) return b;
    }
    return remote_->Get(path);
  }
  std::string Describe(const std::string& path) const override { return remote_->Describe(path); }
  bool is_directory() const override { return remote_->is_directory(); }

 private:
  Fetcher* local_;
  Fetcher* remote_;
};

// Staging collects verified-to-be files under DIR/.staging-<pid> and moves
// them into place on Commit.
class Staging {
 public:
  explicit Staging(std::string out) : out_(std::move(out)), dir_(out_ + "/.staging-" + std::to_string(::getpid())) {}
  ~Staging() { Discard(); }

  Status Put(const std::string& path, ledger::ByteView data) {
    std::string file = dir_ + "/" + path;
    LEDGER_RETURN_IF_ERROR(MakeDirs(file.substr(0, file.rfind('/'))));
    // Durable before the rename; the directories are synced once at Commit.
    LEDGER_RETURN_IF_ERROR(WriteFileAtomic(file, data));
    paths_.push_back(path);
    return Status::OK();
  }

  Status Commit() {
    std::set<std::string> dirs;
    for (const std::string& path : paths_) {
      std::string target = out_ + "/" + path;
      std::string parent = target.substr(0, target.rfind('/'));
      LEDGER_RETURN_IF_ERROR(MakeDirs(parent));
      if (::rename((dir_ + "/" + path).c_str(), target.c_str()) != 0)
        return Status::IOError("cannot move " + path + " into " + out_ + ": " + std::strerror(errno));
      dirs.insert(parent);
    }
    for (const std::string& d : dirs) LEDGER_RETURN_IF_ERROR(FsyncDirectory(d));
    paths_.clear();
    return Status::OK();
  }

  void Discard() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  size_t count() const { return paths_.size(); }

 private:
  std::string out_;
  std::string dir_;
  std::vector<std::string> paths_;
};

constexpr char kMirrorHelp[] = R"(Usage: ledger-verify mirror --log URL|DIR --log-key VKEY --out DIR
                            [--connections N] [--checkpoint FILE]
                            [--witness WKEY ... [--quorum K]] [--json]

Copies the log into DIR in C2SP tlog-tiles layout (DIR/checkpoint,
DIR/tile/<L>/<N>[.p/<W>], DIR/tile/entries/<N>[.p/<W>]), verifying as it
goes: the checkpoint's signature (and, with --witness, its cosignatures by
K distinct listed witnesses; the mirrored checkpoint keeps its cosignature
lines, so audits of the mirror can require them too), the root recomputed
from every entry, and every hash tile recomputed from the entries and
compared with the log's.
Files are written atomically and only once everything verified; the
checkpoint is written last. Re-running updates the mirror: full tiles and
bundles are immutable, so the ones already there are read locally, not
fetched again, and the old checkpoint must be a prefix of the new tree.
Audit the copy offline with --log DIR, or serve DIR with any static web
server (it is a complete read-only tlog-tiles log).

Options:
  --log URL|DIR        the log to copy
  --log-key VKEY       the log's verifier key, or @FILE
  --out DIR            the mirror directory (created if missing)
  --connections N      concurrent bundle fetches [4]
  --checkpoint FILE    mirror up to this signed checkpoint [the log's latest]
)" LEDGER_VERIFY_WITNESS_HELP R"(                       (the mirror's previous checkpoint, verified when it
                       was written, needs only the log's signature)
  --json               {"checkpoint": {...}, "witnesses"?: {...}, "out", "written",
                        "kept", "verified"}
  --help               show this help
Exit status: 0 mirrored and verified, 1 the log does not verify (nothing is
updated), 2 usage or I/O error.
)";

int RunMirror(const Args& args) {
  auto key = LoadLogKey(args.Get("--log-key"));
  if (!key.ok()) return ExitForStatus(key.status());
  auto witnesses = LoadWitnessPolicy(args);
  if (!witnesses.ok()) return ExitForStatus(witnesses.status());
  bool as_json = args.Has("--json");
  int connections = 4;
  if (args.Has("--connections")) {
    auto n = ParseCount("--connections", args.Get("--connections"), 1, 64);
    if (!n.ok()) return UsageError(n.status().message());
    connections = static_cast<int>(*n);
  }
  std::string out = args.Get("--out");
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty()) return UsageError("--out must name a directory");
  auto remote = Fetcher::Open(args.Get("--log"));
  if (!remote.ok()) return UsageError(remote.status().message());
  {
    std::error_code ec;
    if ((*remote)->is_directory() && fs::equivalent(args.Get("--log"), out, ec))
      return UsageError("--out is the mirror being read");
  }
  Status made = MakeDirs(out);
  if (!made.ok()) return IoError(made.message());
  auto local = Fetcher::Open(out);
  if (!local.ok()) return IoError(local.status().message());

  // |cosigned| is listed for a checkpoint refused for the witness quorum.
  const std::vector<ledger::WitnessCosignature>* quorum_failure = nullptr;
  auto fail = [&](const std::string& why) {
    if (as_json) {
      ordered_json j;
      j["out"] = out;
      j["verified"] = false;
      j["error"] = why;
      if (quorum_failure) j["witnesses"] = WitnessesJson(*witnesses, *quorum_failure);
      std::cout << DumpJson(j) << std::endl;
    } else {
      std::cout << "NOT VERIFIED: " << why << "\n";
      if (quorum_failure) std::cout << WitnessesText(*witnesses, *quorum_failure, "  ");
      std::cout << "The mirror in " << out << " was not updated.\n";
    }
    return kExitFailed;
  };

  ledger::StatusOr<SignedCheckpoint> cp = Status::Internal("unset");
  std::vector<ledger::WitnessCosignature> cosigned;
  if (args.Has("--checkpoint")) {
    auto note = ReadWholeFile(args.Get("--checkpoint"));
    if (!note.ok()) return IoError("--checkpoint: " + note.status().message());
    cp = OpenSignedCheckpoint(*note, *key, *witnesses, &cosigned);
  } else {
    cp = FetchCheckpoint(**remote, *key, *witnesses, &cosigned);
  }
  if (!cp.ok()) {
    if (!IsVerificationFailure(cp.status())) return IoError(cp.status().message());
    if (IsQuorumFailure(cp.status())) quorum_failure = &cosigned;
    return fail("the checkpoint does not verify: " + cp.status().message());
  }
  const ledger::Checkpoint& target = cp->body;

  // The mirror's own checkpoint, if any, must be a prefix of the new tree.
  // It was verified when it was written (perhaps under another witness
  // policy); it only anchors the prefix check, so the log's signature is
  // enough here.
  std::optional<SignedCheckpoint> previous;
  auto old_note = (*local)->Get("checkpoint");
  if (old_note.ok()) {
    auto old = OpenSignedCheckpoint(*old_note, *key);
    if (!old.ok()) return IoError(out + "/checkpoint is not a checkpoint of this log: " + old.status().message());
    previous = *old;
    if (previous->body.size > target.size)
      return fail("the log's checkpoint (size " + std::to_string(target.size) + ") is smaller than the mirror's (size " +
                  std::to_string(previous->body.size) + "): the log rolled back or forked");
  } else if (!old_note.status().IsNotFound()) {
    return IoError(old_note.status().message());
  }

  LocalFirstFetcher source(local->get(), remote->get());
  Staging staging(out);
  size_t kept = 0;
  ledger::CompactRange range;
  // pending[L] holds the level-8L hashes of the tile being filled at tile
  // level L; a tile is written when full, or at the end as a partial tile.
  std::vector<Bytes> pending(8);
  std::vector<uint64_t> pending_index(8, 0);
  std::string failure;

  auto file_exists = [&](const std::string& path) { return ::access((out + "/" + path).c_str(), F_OK) == 0; };
  // EmitTile compares a tile computed from the entries with the log's and
  // stages it.
  auto emit_tile = [&](uint8_t level, uint64_t index, const Bytes& computed) -> Status {
    uint32_t width = static_cast<uint32_t>(computed.size() / 32);
    ledger::TileId id;
    id.level = level;
    id.index = index;
    id.width = width;
    std::string path = ledger::FormatTilePath(id);
    if (width == ledger::kTileWidth && file_exists(path)) {
      auto have = (*local)->Get(path);
      if (have.ok() && *have == computed) {
        kept++;
        return Status::OK();
      }
    }
    auto served = FetchHashTile(**remote, level, index, width);
    if (!served.ok()) {
      if (IsVerificationFailure(served.status())) {
        failure = served.status().message();
        return Status::Corruption(failure);
      }
      return served.status();
    }
    if (*served != computed) {
      failure = "the log's tile " + path + " does not match the hashes of its entries";
      return Status::Corruption(failure);
    }
    return staging.Put(path, computed);
  };

  StreamOptions options;
  options.fetch_threads = connections;
  options.work_threads = 2;
  options.parse_entries = false;
  ProgressBar progress("mirror", target.size, true);
  Status st = StreamBundles(source, 0, target.size, options, [&](BundleChunk& chunk) -> Status {
    if (!chunk.status.ok()) {
      if (IsVerificationFailure(chunk.status)) failure = chunk.status.message();
      return chunk.status;
    }
    ledger::TileId bid;
    bid.entries = true;
    bid.index = chunk.bundle;
    bid.width = chunk.width;
    std::string bpath = ledger::FormatTilePath(bid);
    if (chunk.width == ledger::kTileWidth && file_exists(bpath)) kept++;
    else LEDGER_RETURN_IF_ERROR(staging.Put(bpath, chunk.raw));
    for (size_t k = 0; k < chunk.leaf_hashes.size(); k++) {
      Status tile_status;
      range.Append(chunk.leaf_hashes[k], [&](const ledger::NodeId& id, const Hash& h) {
        if (id.level % ledger::kTileHeight != 0 || !tile_status.ok()) return;
        size_t L = id.level / ledger::kTileHeight;
        if (pending[L].empty()) pending_index[L] = id.index / ledger::kTileWidth;
        pending[L].append(ledger::HashView(h));
        if (pending[L].size() == ledger::kTileWidth * 32) {
          tile_status = emit_tile(static_cast<uint8_t>(L), pending_index[L], pending[L]);
          pending[L].clear();
        }
      });
      LEDGER_RETURN_IF_ERROR(tile_status);
      if (previous && range.size() == previous->body.size && range.Root() != previous->body.root) {
        failure = "the log's first " + std::to_string(previous->body.size) +
                  " entries no longer hash to the root of the mirror's checkpoint: the log forked";
        return Status::Corruption(failure);
      }
    }
    progress.Update(range.size());
    return Status::OK();
  });
  progress.Finish();
  if (!st.ok()) {
    if (!failure.empty()) return fail(failure);
    return IoError(st.message());
  }
  for (size_t L = 0; L < pending.size(); L++) {
    if (pending[L].empty()) continue;
    Status t = emit_tile(static_cast<uint8_t>(L), pending_index[L], pending[L]);
    if (!t.ok()) return failure.empty() ? IoError(t.message()) : fail(failure);
  }
  if (range.Root() != target.root)
    return fail("the log's entries hash to " + B64(range.Root()) + ", but the checkpoint signs " + B64(target.root));

  size_t written = staging.count();
  Status committed = staging.Commit();
  if (committed.ok()) committed = WriteFileAtomic(out + "/checkpoint", cp->note);
  if (!committed.ok()) return IoError(committed.message());
  if (as_json) {
    ordered_json j;
    j["checkpoint"] = CheckpointJson(target);
    if (witnesses->active()) j["witnesses"] = WitnessesJson(*witnesses, cp->cosignatures);
    j["out"] = out;
    j["written"] = written;
    j["kept"] = kept;
    j["verified"] = true;
    std::cout << DumpJson(j) << std::endl;
  } else {
    std::cout << "mirrored and verified: " << target.origin << " at size " << target.size << " into " << out << "\n"
              << "  root      " << B64(target.root) << " (recomputed from every entry)\n";
    if (witnesses->active()) std::cout << WitnessesText(*witnesses, cp->cosignatures, "  ");
    std::cout
              << "  written   " << written << " tiles and bundles\n"
              << "  kept      " << kept << " immutable full tiles and bundles already there\n";
    if (previous) std::cout << "  extends   the mirror's previous checkpoint of size " << previous->body.size << "\n";
  }
  return kExitVerified;
}

}  // namespace

const Command kMirrorCommand = {
    "mirror", "copy the log into a directory (C2SP tlog-tiles), verifying it", kMirrorHelp,
    {{"--log", true},
     {"--log-key", true},
     {"--out", true},
     {"--connections", true},
     {"--checkpoint", true},
     kWitnessFlag,
     kQuorumFlag,
     {"--json", false}},
    {"--log", "--log-key", "--out"}, RunMirror,
};

}  // namespace verifier
