// Reading a C2SP tlog-tiles log through a Fetcher, trusting nothing it
// serves: signed checkpoints (verified with the log key), hash tiles and
// entry bundles (with the C2SP fallback from a partial to the full tile), a
// HashReader over tiles so that proofs are computed by the verifier itself,
// and a concurrent, ordered stream of entry bundles for replaying the log.
//
// Thread-safety: the free functions are safe to call from several threads
// on one Fetcher. TileHashReader is safe to share (its tile cache is behind
// a mutex). StreamBundles runs its own threads and calls |consume| on the
// calling thread only, in log order.
#ifndef LEDGER_VERIFIER_LOG_READER_H_
#define LEDGER_VERIFIER_LOG_READER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "fetcher.h"
#include "ledger/bytes.h"
#include "ledger/cosignature.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/record.h"
#include "ledger/status.h"

namespace verifier {

// SignedCheckpoint is a checkpoint whose signature verified: the note text
// verbatim (evidence anyone can re-check, cosignature lines included) and
// its parsed body; with a witness policy, the distinct listed witnesses
// whose cosignature verified (in listing order, latest timestamp each).
struct SignedCheckpoint {
  std::string note;
  ledger::Checkpoint body;
  std::vector<ledger::WitnessCosignature> cosignatures;
};

// OpenSignedCheckpoint verifies |note| with the log key and, when |witnesses|
// is active, with ledger::OpenWitnessedCheckpoint: every line of a listed
// witness must be a valid cosignature, and at least witnesses.quorum
// distinct listed witnesses must have cosigned. PermissionDenied (a missing
// or bad signature or cosignature, another log's key, or a quorum not met)
// and InvalidArgument (malformed) are verification failures. A quorum
// failure says how many valid cosignatures were found of how many required
// and which witnesses cosigned; if |cosigned| is not null it receives the
// witnesses whose cosignature verified whenever the log's signature and
// every listed witness's line did (so also when the quorum is not met).
ledger::StatusOr<SignedCheckpoint> OpenSignedCheckpoint(const std::string& note, const ledger::NoteVerifier& log_key,
                                                        const WitnessPolicy& witnesses = WitnessPolicy(),
                                                        std::vector<ledger::WitnessCosignature>* cosigned = nullptr);

// FetchCheckpoint fetches "checkpoint" and verifies it (as
// OpenSignedCheckpoint). A fetch failure keeps its code (NotFound,
// Unavailable, IOError); a verification failure is returned as
// PermissionDenied or InvalidArgument, prefixed with where it came from.
ledger::StatusOr<SignedCheckpoint> FetchCheckpoint(Fetcher& fetcher, const ledger::NoteVerifier& log_key,
                                                   const WitnessPolicy& witnesses = WitnessPolicy(),
                                                   std::vector<ledger::WitnessCosignature>* cosigned = nullptr);

// IsQuorumFailure tells a checkpoint refused only for too few cosignatures
// (its message starts "witness quorum not met").
bool IsQuorumFailure(const ledger::Status& s);

// WitnessesJson describes the witness check of a checkpoint for the --json
// reports: {"quorum": K, "listed": N (distinct), "valid": n,
// "cosigned": [{"witness": "<vkey>", "timestamp": T}],
// "not_cosigned": ["<vkey>", ...]}, both lists sorted by key (so the order
// of the --witness flags does not change a report).
ordered_json WitnessesJson(const WitnessPolicy& policy, const std::vector<ledger::WitnessCosignature>& cosigned);
// WitnessesText is the same for the human reports, one indented line per
// witness: "  <indent>cosigned      <vkey> (time T)" / "not cosigned".
std::string WitnessesText(const WitnessPolicy& policy, const std::vector<ledger::WitnessCosignature>& cosigned,
                          const std::string& indent);

// IsVerificationFailure tells a failed check (exit 1) from a failed fetch
// or read (exit 2).
bool IsVerificationFailure(const ledger::Status& s);

// FetchHashTile returns the width*32 bytes of hash tile (level, index) of
// width |width|, falling back to the full tile when the partial one is gone.
// Corruption if the log serves a tile of the wrong length.
ledger::StatusOr<ledger::Bytes> FetchHashTile(Fetcher& fetcher, uint8_t level, uint64_t index, uint32_t width);

// FetchEntryBundle returns entry bundle |index| holding exactly |width|
// entries (the full bundle is trimmed when the partial one is gone).
// Corruption if the bundle does not parse or holds fewer entries.
ledger::StatusOr<ledger::Bytes> FetchEntryBundle(Fetcher& fetcher, uint64_t index, uint32_t width);

// TileHashReader serves the hashes of complete subtrees of the tree of
// |tree_size| from the log's tiles: node (l, i) is read from tile level
// l/8, hashing up inside the tile for levels that are not multiples of 8;
// the right edge comes from partial tiles. Tiles are cached (bounded).
class TileHashReader : public ledger::HashReader {
 public:
  TileHashReader(Fetcher* fetcher, uint64_t tree_size) : fetcher_(fetcher), tree_size_(tree_size) {}
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<ledger::Hash>* out) const override;
  uint64_t tree_size() const { return tree_size_; }

 private:
  ledger::StatusOr<std::shared_ptr<const ledger::Bytes>> Tile(uint8_t level, uint64_t index) const;

  Fetcher* fetcher_;
  uint64_t tree_size_;
  mutable std::mutex mu_;
  mutable std::map<std::pair<uint8_t, uint64_t>, std::shared_ptr<const ledger::Bytes>> cache_;
};

// EntryAt returns the bytes of entry |index| of the tree of |tree_size|.
ledger::StatusOr<ledger::Bytes> EntryAt(Fetcher& fetcher, uint64_t index, uint64_t tree_size);

// BundleChunk is one entry bundle of a stream, fetched and pre-processed by
// the worker threads. The chunk never moves once created, so the views stay
// valid until it is destroyed.
struct BundleChunk {
  uint64_t bundle = 0;       // N of tile/entries/N
  uint32_t width = 0;        // entries in the bundle at the stream's tree size
  ledger::Status status;     // fetch failure, or a bundle that does not parse
  ledger::Bytes raw;         // the bundle bytes, exactly |width| entries
  uint64_t first_index = 0;  // index of entries[0]
  // Entries from the stream's start on (the first bundle of an incremental
  // replay starts mid-bundle), their leaf hashes and, when parsing was
  // asked for, each entry parsed with its signature verified.
  std::vector<ledger::ByteView> entries;
  std::vector<ledger::Hash> leaf_hashes;
  std::vector<ledger::StatusOr<ledger::ParsedEntry>> parsed;
};

struct StreamOptions {
  int fetch_threads = 4;  // concurrent bundle fetches (connections)
  int work_threads = 2;   // threads hashing, parsing and verifying entries
  bool parse_entries = true;
};

// StreamBundles delivers the entries [start, end) of the tree of size |end|
// bundle by bundle, in log order, to |consume| on the calling thread.
// Bundles are fetched and verified concurrently with a bounded window, so
// memory does not grow with the log. Stops at the first non-OK status of
// |consume| and returns it; a chunk's fetch or parse failure is handed to
// |consume| in its status (which decides whether it is fatal).
ledger::Status StreamBundles(Fetcher& fetcher, uint64_t start, uint64_t end, const StreamOptions& options,
                             const std::function<ledger::Status(BundleChunk&)>& consume);

// ViolationRuleOf returns the rule name that starts a refusal message
// ("undisclosed use: ..." -> "undisclosed use").
std::string ViolationRuleOf(const std::string& message);

}  // namespace verifier

#endif  // LEDGER_VERIFIER_LOG_READER_H_
