// C2SP tlog-tiles: tile coordinates, path formatting and strict parsing, tile
// contents for a tree size, and entry bundles. Pure.
//
// A tile at level L, index N holds up to 256 hashes of tree level 8*L:
// the nodes (8L, N*256 + i). A partial tile of width W holds the first W.
// Entry bundle N holds entries [N*256, N*256 + W) each prefixed by a
// big-endian uint16 length.
//
// Thread-safety: pure functions.
#ifndef LEDGER_TILES_H_
#define LEDGER_TILES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/status.h"

namespace ledger {

constexpr int kTileHeight = 8;
constexpr uint64_t kTileWidth = 256;
constexpr int kMaxTileLevel = 63;
constexpr size_t kMaxEntrySize = 65535;

struct TileId {
  bool entries = false;  // true for tile/entries/...
  uint8_t level = 0;     // 0..63; 0 for entries
  uint64_t index = 0;    // N
  uint32_t width = 256;  // 1..256; 256 means full (no .p/ suffix)
  bool operator==(const TileId& o) const {
    return entries == o.entries && level == o.level && index == o.index && width == o.width;
  }
};

// FormatTilePath returns "tile/<L>/<N>[.p/<W>]" or "tile/entries/<N>[.p/<W>]",
// with N in 3-digit groups each but the last prefixed with "x".
std::string FormatTilePath(const TileId& id);
// FormatTileIndex returns the N part of a path ("x001/x234/067").
std::string FormatTileIndex(uint64_t n);

// ParseTilePath parses a path (without leading '/'), strictly: no leading
// zeros beyond the 3-digit groups, every non-final group "x" + 3 digits,
// final group 3 digits, W in 1..255 written without leading zeros, L in
// 0..63 without leading zeros. InvalidArgument otherwise.
StatusOr<TileId> ParseTilePath(std::string_view path);

// TileWidthForSize returns the width (0..256) of tile (level, index) in a tree
// of |size| leaves: 256 if full, 0 if it does not exist yet.
uint32_t TileWidthForSize(uint8_t level, uint64_t index, uint64_t size);

// TileNodes returns the node ids whose hashes make up a hash tile.
std::vector<NodeId> TileNodes(const TileId& id);

// ReadTile returns the bytes of hash tile |id| (width*32 bytes) read
// through |reader|. NotFound if the tile is not complete at |size| with
// that width (callers serve only tiles that exist at the tree size). A
// partial width W is served whenever W <= the tile's width at |size|, so
// partial tiles of earlier checkpoints stay available; InvalidArgument for
// entry-bundle ids or widths outside 1..256.
StatusOr<Bytes> ReadTile(const TileId& id, uint64_t size, const HashReader& reader);

// EncodeEntryBundle appends each entry with a big-endian uint16 length.
// InvalidArgument if any entry exceeds 65535 bytes or there are more than 256.
StatusOr<Bytes> EncodeEntryBundle(const std::vector<ByteView>& entries);
// AppendBundleEntry appends one length-prefixed entry (must be <= 65535).
void AppendBundleEntry(Bytes* bundle, ByteView entry);
// ParseEntryBundle splits a bundle into entries (views into |bundle|).
// InvalidArgument on a truncated length or entry, or more than 256 entries.
StatusOr<std::vector<ByteView>> ParseEntryBundle(ByteView bundle);

}  // namespace ledger

#endif  // LEDGER_TILES_H_
