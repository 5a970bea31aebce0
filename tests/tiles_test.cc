#include "ledger/tiles.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

#include "ledger/merkle.h"
#include "test_util.h"

using namespace ledger;
using json = nlohmann::json;

namespace {

using ledger_test::MemoryReader;

const json& LoadVectors() {
  static const json j = [] {
    json j = json::parse(ledger_test::ReadFileOrDie(ledger_test::VectorPath("tlog.json")), nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
  }();
  return j;
}

std::vector<Bytes> LeafData() {
  std::vector<Bytes> out;
  for (const auto& hex : LoadVectors()["leaves_hex"]) {
    auto d = HexDecode(hex.get<std::string>());
    REQUIRE(d.ok());
    out.push_back(*d);
  }
  return out;
}

std::vector<Hash> LeafHashes(const std::vector<Bytes>& data) {
  std::vector<Hash> out;
  for (const Bytes& d : data) out.push_back(HashLeaf(d));
  return out;
}

TileId Tile(uint8_t level, uint64_t index, uint32_t width, bool entries = false) {
  TileId id;
  id.entries = entries;
  id.level = level;
  id.index = index;
  id.width = width;
  return id;
}

}  // namespace

TEST_CASE("tile paths match the Go tlog vectors") {
  const json& cases = LoadVectors()["tile_paths"];
  REQUIRE(cases.size() >= 7);
  for (const auto& c : cases) {
    TileId id = Tile(c["level"].get<uint8_t>(), c["n"].get<uint64_t>(), c["width"].get<uint32_t>());
    std::string path = c["path"].get<std::string>();
    INFO(path);
    CHECK(FormatTilePath(id) == path);
    auto parsed = ParseTilePath(path);
    REQUIRE(parsed.ok());
    CHECK(*parsed == id);
  }
}

TEST_CASE("tile index formatting") {
  CHECK(FormatTileIndex(0) == "000");
  CHECK(FormatTileIndex(7) == "007");
  CHECK(FormatTileIndex(999) == "999");
  CHECK(FormatTileIndex(1000) == "x001/000");
  CHECK(FormatTileIndex(1234067) == "x001/x234/067");
  CHECK(FormatTileIndex(UINT64_MAX) == "x018/x446/x744/x073/x709/x551/615");
  CHECK(FormatTilePath(Tile(0, 5, 7, true)) == "tile/entries/005.p/7");
  CHECK(FormatTilePath(Tile(0, 1000, 256, true)) == "tile/entries/x001/000");
  CHECK(FormatTilePath(Tile(63, 0, 255)) == "tile/63/000.p/255");
}

TEST_CASE("tile paths round-trip") {
  std::vector<TileId> ids = {
      Tile(0, 0, 256),          Tile(0, 0, 1),           Tile(1, 999, 255),
      Tile(2, 1000, 256),       Tile(63, 1234567, 128),  Tile(0, UINT64_MAX, 256),
      Tile(0, 0, 256, true),    Tile(0, 3, 232, true),   Tile(0, 1000000, 1, true),
      Tile(9, 999999999, 256),  Tile(0, UINT64_MAX, 3, true),
  };
  for (const TileId& id : ids) {
    std::string path = FormatTilePath(id);
    INFO(path);
    auto parsed = ParseTilePath(path);
    REQUIRE(parsed.ok());
    CHECK(*parsed == id);
  }
  for (uint64_t n = 0; n < 3000; n += 7) {
    auto parsed = ParseTilePath("tile/0/" + FormatTileIndex(n));
    REQUIRE(parsed.ok());
    CHECK(parsed->index == n);
  }
}

TEST_CASE("malformed tile paths are rejected") {
  const char* bad[] = {
      "",
      "tile",
      "tile/",
      "tile/0",
      "tile/0/",
      "/tile/0/000",
      "tiles/0/000",
      "Tile/0/000",
      "tile//000",
      "tile/0//000",
      "tile/00/000",         // leading zero in L
      "tile/01/000",
      "tile/64/000",         // L > 63
      "tile/100/000",
      "tile/1000/000",
      "tile/-1/000",
      "tile/+1/000",
      "tile/ 1/000",
      "tile/a/000",
      "tile/0/0",            // N groups are exactly 3 digits
      "tile/0/00",
      "tile/0/0000",
      "tile/0/1",
      "tile/0/00a",
      "tile/0/-01",
      "tile/0/+01",
      "tile/0/ 01",
      "tile/0/x001",         // last group must not be x-prefixed
      "tile/0/x001/",
      "tile/0/x001/x234",
      "tile/0/001/002",      // non-final group without x
      "tile/0/X001/000",
      "tile/0/x01/000",
      "tile/0/x0001/000",
      "tile/0/xx001/000",
      "tile/0/x000/001",     // non-canonical: 1 is "001"
      "tile/0/x000/x001/000",
      "tile/0/x000/000",
      "tile/0/x018/x446/x744/x073/x709/x551/616",  // 2^64
      "tile/0/x099/x999/x999/x999/x999/x999/999",
      "tile/0/x001/x000/x000/x000/x000/x000/x000/000",  // 8 groups
      "tile/0/000/",         // trailing junk
      "tile/0/000x",
      "tile/0/000 ",
      "tile/0/000/extra",
      "tile/0/000.p",        // partial suffix
      "tile/0/000.p/",
      "tile/0/000.p/0",
      "tile/0/000.p/00",
      "tile/0/000.p/01",
      "tile/0/000.p/256",
      "tile/0/000.p/999",
      "tile/0/000.p/1000",
      "tile/0/000.p/-1",
      "tile/0/000.p/1/",
      "tile/0/000.p/1/2",
      "tile/0/000.p/1x",
      "tile/0/000.p/ 1",
      "tile/0/000.P/1",
      "tile/0/000.q/1",
      "tile/0/000p/1",
      "tile/0/000..p/1",
      "tile/0/x001.p/1",
      "tile/0/x001.p/000",
      "tile/entries",
      "tile/entries/",
      "tile/entries/0",
      "tile/entries/x000/001",
      "tile/entries/000.p/0",
      "tile/entries/000.p/256",
      "tile/entry/000",
      "tile/entries/0/000",
      "tile/8/0/000",        // old Go sumdb layout with a height element
      "tile/0/000\n",
  };
  for (const char* path : bad) {
    INFO("\"" << path << "\"");
    auto parsed = ParseTilePath(path);
    CHECK(parsed.status().IsInvalidArgument());
  }
  // An embedded NUL is not a digit.
  CHECK(ParseTilePath(std::string("tile/0/0\0" "0", 10)).status().IsInvalidArgument());
  CHECK(ParseTilePath(std::string("tile/0/000\0", 11)).status().IsInvalidArgument());
  // The largest index and the extreme widths are accepted.
  CHECK(ParseTilePath("tile/0/x018/x446/x744/x073/x709/x551/615").ok());
  CHECK(ParseTilePath("tile/63/000.p/255").ok());
  CHECK(ParseTilePath("tile/entries/000.p/1").ok());
}

TEST_CASE("tile widths for a tree size") {
  // The tlog-tiles example: size 70000.
  CHECK(TileWidthForSize(0, 0, 70000) == 256);
  CHECK(TileWidthForSize(0, 272, 70000) == 256);
  CHECK(TileWidthForSize(0, 273, 70000) == 112);
  CHECK(TileWidthForSize(0, 274, 70000) == 0);
  CHECK(TileWidthForSize(1, 0, 70000) == 256);
  CHECK(TileWidthForSize(1, 1, 70000) == 17);
  CHECK(TileWidthForSize(1, 2, 70000) == 0);
  CHECK(TileWidthForSize(2, 0, 70000) == 1);
  CHECK(TileWidthForSize(3, 0, 70000) == 0);
  // Size 256: one full level-0 tile and a level-1 tile of width 1.
  CHECK(TileWidthForSize(0, 0, 256) == 256);
  CHECK(TileWidthForSize(0, 1, 256) == 0);
  CHECK(TileWidthForSize(1, 0, 256) == 1);
  CHECK(TileWidthForSize(0, 0, 0) == 0);
  CHECK(TileWidthForSize(0, 0, 1) == 1);
  CHECK(TileWidthForSize(0, 3, 1000) == 232);
  CHECK(TileWidthForSize(1, 0, 1000) == 3);
  CHECK(TileWidthForSize(7, 0, UINT64_MAX) == 255);
  CHECK(TileWidthForSize(7, 1, UINT64_MAX) == 0);
  CHECK(TileWidthForSize(6, 255, UINT64_MAX) == 255);
  CHECK(TileWidthForSize(6, 254, UINT64_MAX) == 256);
  CHECK(TileWidthForSize(8, 0, UINT64_MAX) == 0);
  CHECK(TileWidthForSize(63, 0, UINT64_MAX) == 0);
  CHECK(TileWidthForSize(0, UINT64_MAX, UINT64_MAX) == 0);
}

TEST_CASE("tile nodes") {
  auto ids = TileNodes(Tile(1, 2, 3));
  REQUIRE(ids.size() == 3);
  CHECK(ids[0] == NodeId{8, 512});
  CHECK(ids[2] == NodeId{8, 514});
  CHECK(TileNodes(Tile(0, 0, 256)).size() == 256);
  CHECK(TileNodes(Tile(0, 0, 256)).back() == NodeId{0, 255});
  // Tiles that need 2^64 or more leaves have no addressable nodes.
  CHECK(TileNodes(Tile(8, 0, 1)).empty());
  CHECK(TileNodes(Tile(0, UINT64_MAX, 1)).empty());
}

TEST_CASE("tiles for size 1000 match the Go tlog vectors") {
  std::vector<Hash> leaves = LeafHashes(LeafData());
  REQUIRE(leaves.size() == 1000);
  MemoryReader reader(leaves);
  const json& tiles = LoadVectors()["tiles_for_size_1000"];
  REQUIRE(tiles.size() == 5);
  for (const auto& item : tiles.items()) {
    INFO(item.key());
    auto id = ParseTilePath(item.key());
    REQUIRE(id.ok());
    CHECK(id->width == TileWidthForSize(id->level, id->index, 1000));
    reader.calls = 0;
    auto body = ReadTile(*id, 1000, reader);
    REQUIRE(body.ok());
    CHECK(reader.calls == 1);
    CHECK(HexEncode(*body) == item.value().get<std::string>());
  }
}

TEST_CASE("ReadTile serves what exists at the size and nothing beyond") {
  std::vector<Hash> leaves = LeafHashes(LeafData());
  MemoryReader reader(leaves);
  auto full = ReadTile(Tile(0, 0, 256), 1000, reader);
  REQUIRE(full.ok());
  REQUIRE(full->size() == 256 * 32);

  SECTION("partial tiles of earlier sizes are prefixes of the later tile") {
    for (uint32_t w : {1u, 100u, 255u}) {
      auto part = ReadTile(Tile(0, 0, w), 1000, reader);
      REQUIRE(part.ok());
      CHECK(*part == full->substr(0, w * 32));
    }
    auto p3 = ReadTile(Tile(0, 3, 232), 1000, reader);
    REQUIRE(p3.ok());
    auto p3old = ReadTile(Tile(0, 3, 10), 1000, reader);
    REQUIRE(p3old.ok());
    CHECK(*p3old == p3->substr(0, 320));
    auto l1 = ReadTile(Tile(1, 0, 2), 1000, reader);
    REQUIRE(l1.ok());
    CHECK(l1->size() == 64);
  }
  SECTION("tiles wider than at the size are NotFound") {
    CHECK(ReadTile(Tile(0, 3, 233), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(0, 3, 256), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(0, 4, 1), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(1, 0, 4), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(1, 0, 256), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(2, 0, 1), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(0, 0, 1), 0, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(0, 0, 256), 255, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(63, 0, 1), 1000, reader).status().IsNotFound());
    CHECK(ReadTile(Tile(0, UINT64_MAX, 1), 1000, reader).status().IsNotFound());
  }
  SECTION("a tile is the same at every size where it exists") {
    auto at1000 = ReadTile(Tile(0, 2, 256), 1000, reader);
    auto at768 = ReadTile(Tile(0, 2, 256), 768, reader);
    REQUIRE(at1000.ok());
    REQUIRE(at768.ok());
    CHECK(*at1000 == *at768);
  }
  SECTION("invalid ids") {
    CHECK(ReadTile(Tile(0, 0, 256, true), 1000, reader).status().IsInvalidArgument());
    CHECK(ReadTile(Tile(0, 0, 0), 1000, reader).status().IsInvalidArgument());
    CHECK(ReadTile(Tile(0, 0, 257), 1000, reader).status().IsInvalidArgument());
    CHECK(ReadTile(Tile(64, 0, 1), 1000, reader).status().IsInvalidArgument());
  }
}

TEST_CASE("entry bundle 768 matches the Go vector") {
  std::vector<Bytes> data = LeafData();
  const json& j = LoadVectors();
  std::string path = j["entry_bundle_768_path"].get<std::string>();
  auto want = HexDecode(j["entry_bundle_768_hex"].get<std::string>());
  REQUIRE(want.ok());

  auto id = ParseTilePath(path);
  REQUIRE(id.ok());
  CHECK(id->entries);
  CHECK(id->index == 3);
  CHECK(id->width == TileWidthForSize(0, 3, 1000));
  CHECK(FormatTilePath(*id) == path);

  std::vector<ByteView> entries;
  for (uint64_t i = id->index * 256; i < id->index * 256 + id->width; i++) entries.push_back(data[i]);
  auto bundle = EncodeEntryBundle(entries);
  REQUIRE(bundle.ok());
  CHECK(*bundle == *want);

  Bytes appended;
  for (ByteView e : entries) AppendBundleEntry(&appended, e);
  CHECK(appended == *want);

  auto parsed = ParseEntryBundle(*want);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == entries.size());
  for (size_t i = 0; i < entries.size(); i++) CHECK((*parsed)[i] == entries[i]);
}

TEST_CASE("entry bundles: limits and truncation") {
  SECTION("empty entries and the empty bundle") {
    auto b = EncodeEntryBundle({ByteView(), ByteView("x")});
    REQUIRE(b.ok());
    CHECK(*b == Bytes("\x00\x00\x00\x01x", 5));
    auto p = ParseEntryBundle(ByteView());
    REQUIRE(p.ok());
    CHECK(p->empty());
  }
  SECTION("entry size limit") {
    Bytes max(kMaxEntrySize, 'a');
    Bytes over(kMaxEntrySize + 1, 'a');
    auto ok = EncodeEntryBundle({max});
    REQUIRE(ok.ok());
    CHECK(ok->size() == kMaxEntrySize + 2);
    CHECK(ok->substr(0, 2) == "\xff\xff");
    auto parsed = ParseEntryBundle(*ok);
    REQUIRE(parsed.ok());
    CHECK((*parsed)[0].size() == kMaxEntrySize);
    CHECK(EncodeEntryBundle({ByteView("a"), over}).status().IsInvalidArgument());
  }
  SECTION("at most 256 entries") {
    std::vector<ByteView> many(256, ByteView("e"));
    auto b = EncodeEntryBundle(many);
    REQUIRE(b.ok());
    auto p = ParseEntryBundle(*b);
    REQUIRE(p.ok());
    CHECK(p->size() == 256);
    Bytes more = *b;
    AppendBundleEntry(&more, "e");
    CHECK(ParseEntryBundle(more).status().IsInvalidArgument());
    many.push_back("e");
    CHECK(EncodeEntryBundle(many).status().IsInvalidArgument());
    // 257 empty entries are also too many.
    CHECK(ParseEntryBundle(Bytes(257 * 2, '\0')).status().IsInvalidArgument());
  }
  SECTION("every truncation is rejected or ends on an entry boundary") {
    auto b = EncodeEntryBundle({ByteView("abc"), ByteView(), ByteView("hello")});
    REQUIRE(b.ok());
    // Entry boundaries: 0, 5, 7, 14.
    for (size_t n = 0; n < b->size(); n++) {
      INFO("prefix " << n);
      auto p = ParseEntryBundle(ByteView(*b).substr(0, n));
      if (n == 0 || n == 5 || n == 7) {
        REQUIRE(p.ok());
        CHECK(p->size() == (n == 0 ? 0u : n == 5 ? 1u : 2u));
      } else {
        CHECK(p.status().IsInvalidArgument());
      }
    }
    CHECK(ParseEntryBundle(Bytes("\x00", 1)).status().IsInvalidArgument());
    CHECK(ParseEntryBundle(Bytes("\xff\xff" "abc", 5)).status().IsInvalidArgument());
  }
}
