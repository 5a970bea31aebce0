#include "ledger/tiles.h"

#include <cassert>
#include <cstring>
#include <string>

namespace ledger {

namespace {

constexpr int kMaxIndexGroups = 7;  // UINT64_MAX has 20 digits

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// ParseSmallDecimal parses 1..3 digits without leading zeros (but "0").
bool ParseSmallDecimal(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  *out = v;
  return true;
}

bool ParseGroup(std::string_view s, uint32_t* out) {
  if (s.size() != 3 || !IsDigit(s[0]) || !IsDigit(s[1]) || !IsDigit(s[2])) return false;
  *out = static_cast<uint32_t>((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
  return true;
}

// NextSegment splits off the text before the next '/' (or the rest).
std::string_view NextSegment(std::string_view* rest, bool* had_slash) {
  size_t slash = rest->find('/');
  std::string_view seg = rest->substr(0, slash);
  *had_slash = slash != std::string_view::npos;
  rest->remove_prefix(*had_slash ? slash + 1 : rest->size());
  return seg;
}

Status BadPath(std::string_view path, const char* why) {
  return Status::InvalidArgument("bad tile path \"" + std::string(path.substr(0, 128)) + "\": " + why);
}

}  // namespace

std::string FormatTileIndex(uint64_t n) {
  char groups[kMaxIndexGroups][3];
  int count = 0;
  do {
    uint64_t g = n % 1000;
    n /= 1000;
    groups[count][0] = static_cast<char>('0' + g / 100);
    groups[count][1] = static_cast<char>('0' + g / 10 % 10);
    groups[count][2] = static_cast<char>('0' + g % 10);
    count++;
  } while (n != 0);
  std::string out;
  for (int i = count - 1; i >= 0; i--) {
    if (i > 0) out.push_back('x');
    out.append(groups[i], 3);
    if (i > 0) out.push_back('/');
  }
  return out;
}

std::string FormatTilePath(const TileId& id) {
  // Widths outside 1..256 are caller bugs; they are formatted verbatim and
  // ParseTilePath rejects the result.
  std::string out = "tile/";
  out += id.entries ? std::string("entries") : std::to_string(id.level);
  out += '/';
  out += FormatTileIndex(id.index);
  if (id.width != kTileWidth) out += ".p/" + std::to_string(id.width);
  return out;
}

StatusOr<TileId> ParseTilePath(std::string_view path) {
  std::string_view rest = path;
  bool slash = false;
  TileId id;
  if (NextSegment(&rest, &slash) != "tile" || !slash) return BadPath(path, "must start with tile/");

  std::string_view seg = NextSegment(&rest, &slash);
  if (!slash) return BadPath(path, "missing index");
  if (seg == "entries") {
    id.entries = true;
    id.level = 0;
  } else {
    uint32_t level = 0;
    if (!ParseSmallDecimal(seg, &level) || level > kMaxTileLevel) {
      return BadPath(path, "level must be 0..63 without leading zeros");
    }
    id.level = static_cast<uint8_t>(level);
  }

  // Index groups: "xDDD/"* then "DDD", optionally followed by ".p/<W>".
  uint64_t index = 0;
  int groups = 0;
  bool partial = false;
  for (;;) {
    seg = NextSegment(&rest, &slash);
    bool more = !seg.empty() && seg[0] == 'x';
    std::string_view digits = more ? seg.substr(1) : seg;
    if (!more && digits.size() == 5 && digits.substr(3) == ".p") {
      partial = true;
      digits = digits.substr(0, 3);
    }
    uint32_t g = 0;
    if (!ParseGroup(digits, &g)) return BadPath(path, "index groups must be 3 digits, all but the last x-prefixed");
    // Canonical form: no all-zero leading groups ("x000/001" is 1).
    if (groups == 0 && more && g == 0) return BadPath(path, "index has a leading zero group");
    if (++groups > kMaxIndexGroups) return BadPath(path, "index too large");
    if (index > (UINT64_MAX - g) / 1000) return BadPath(path, "index overflows 64 bits");
    index = index * 1000 + g;
    if (!more) break;
    if (!slash) return BadPath(path, "index ends with an x-prefixed group");
  }
  id.index = index;

  if (partial) {
    if (!slash) return BadPath(path, "missing partial width");
    seg = rest;  // the width is the final segment
    uint32_t w = 0;
    if (seg.find('/') != std::string_view::npos || !ParseSmallDecimal(seg, &w) || w == 0 ||
        w >= kTileWidth) {
      return BadPath(path, "partial width must be 1..255 without leading zeros");
    }
    id.width = w;
  } else {
    if (slash) return BadPath(path, "trailing data after the index");
    id.width = kTileWidth;
  }
  return id;
}

uint32_t TileWidthForSize(uint8_t level, uint64_t index, uint64_t size) {
  unsigned shift = kTileHeight * static_cast<unsigned>(level);
  if (shift >= 64) return 0;  // such nodes need >= 2^64 leaves
  uint64_t nodes = size >> shift;  // complete nodes at tree level 8*level
  uint64_t full = nodes / kTileWidth;
  if (index < full) return kTileWidth;
  if (index == full) return static_cast<uint32_t>(nodes % kTileWidth);
  return 0;
}

std::vector<NodeId> TileNodes(const TileId& id) {
  std::vector<NodeId> ids;
  unsigned level = kTileHeight * static_cast<unsigned>(id.level);
  // Tiles beyond a 2^64-leaf tree have no addressable nodes.
  if (level >= 64 || id.width > kTileWidth || id.index > (UINT64_MAX >> kTileHeight)) return ids;
  ids.reserve(id.width);
  for (uint64_t i = 0; i < id.width; i++) {
    ids.push_back(NodeId{static_cast<uint8_t>(level), id.index * kTileWidth + i});
  }
  return ids;
}

// Partial tiles: tlog-tiles requires logs to serve the partial tile of every
// tree size for which a checkpoint was produced, and lets clients fetch the
// full tile once it exists. A partial tile of width W is a prefix of the
// immutable tile, fixed once W nodes are complete, so we serve any
// W <= the current width (W < 256), including widths of older checkpoints
// that a lagging client may still ask for, and never delete them. A full
// tile is served only once all 256 nodes are complete. Anything wider than
// what exists at |size| is NotFound, so nothing beyond the signed tree leaks.
StatusOr<Bytes> ReadTile(const TileId& id, uint64_t size, const HashReader& reader) {
  if (id.entries) return Status::InvalidArgument("ReadTile serves hash tiles, not entry bundles");
  if (id.level > kMaxTileLevel) return Status::InvalidArgument("tile level above 63");
  if (id.width == 0 || id.width > kTileWidth) return Status::InvalidArgument("tile width must be 1..256");
  uint32_t have = TileWidthForSize(id.level, id.index, size);
  if (id.width > have) {
    return Status::NotFound("tile " + FormatTilePath(id) + " does not exist at tree size " +
                            std::to_string(size));
  }
  std::vector<NodeId> ids = TileNodes(id);
  std::vector<Hash> hashes;
  LEDGER_RETURN_IF_ERROR(reader.ReadHashes(ids, &hashes));
  if (hashes.size() != ids.size()) return Status::Internal("hash reader returned the wrong number of hashes");
  // One copy (Hash is 32 contiguous bytes): appending hash by hash was ~8 %
  // of a level-0 tile request's instructions (BENCHMARKS.md, figure c).
  static_assert(sizeof(Hash) == 32, "Hash is 32 bytes without padding");
  Bytes out(hashes.size() * 32, '\0');
  if (!hashes.empty()) std::memcpy(out.data(), hashes.data(), out.size());
  return out;
}

StatusOr<Bytes> EncodeEntryBundle(const std::vector<ByteView>& entries) {
  // More than a tile's worth is not a bundle; reject it here rather than
  // produce something ParseEntryBundle refuses.
  if (entries.size() > kTileWidth) {
    return Status::InvalidArgument("entry bundle holds at most 256 entries, got " + std::to_string(entries.size()));
  }
  size_t total = 0;
  for (size_t i = 0; i < entries.size(); i++) {
    if (entries[i].size() > kMaxEntrySize) {
      return Status::InvalidArgument("entry " + std::to_string(i) + " is " + std::to_string(entries[i].size()) +
                                     " bytes, over the 65535-byte bundle limit");
    }
    total += 2 + entries[i].size();
  }
  Bytes out;
  out.reserve(total);
  for (ByteView e : entries) AppendBundleEntry(&out, e);
  return out;
}

void AppendBundleEntry(Bytes* bundle, ByteView entry) {
  // Precondition; in release builds an oversized entry is dropped rather than
  // written with a truncated length that would misframe every later entry.
  assert(entry.size() <= kMaxEntrySize);
  if (entry.size() > kMaxEntrySize) return;
  AppendU16(bundle, static_cast<uint16_t>(entry.size()));
  bundle->append(entry.data(), entry.size());
}

StatusOr<std::vector<ByteView>> ParseEntryBundle(ByteView bundle) {
  std::vector<ByteView> entries;
  ByteReader r(bundle);
  while (!r.empty()) {
    if (entries.size() == kTileWidth) return Status::InvalidArgument("entry bundle has more than 256 entries");
    uint16_t len = 0;
    if (!r.ReadU16(&len)) return Status::InvalidArgument("entry bundle truncated in a length prefix");
    ByteView e;
    if (!r.ReadBytes(len, &e)) {
      return Status::InvalidArgument("entry bundle truncated: entry " + std::to_string(entries.size()) +
                                     " declares " + std::to_string(len) + " bytes, " +
                                     std::to_string(r.remaining()) + " remain");
    }
    entries.push_back(e);
  }
  return entries;
}

}  // namespace ledger
