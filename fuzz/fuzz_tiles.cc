// Fuzz target: C2SP tlog-tiles paths and entry bundles (ledger/tiles.h), as
// ledgerd's GET /tile/... and the verifier's tile and bundle readers see them.
// Properties: an accepted path formats back to exactly the input; an
// accepted bundle re-encodes to exactly the input; a tile read for an
// accepted path has width*32 bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ledger/tiles.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  static const fuzz::MemTree tree = fuzz::TestTree(300);

  auto id = ledger::ParseTilePath(in);
  if (id.ok()) {
    FUZZ_CHECK(ledger::FormatTilePath(*id) == in, "ParseTilePath accepted a non-canonical path");
    FUZZ_CHECK(id->width >= 1 && id->width <= 256, "tile width out of range");
    FUZZ_CHECK(id->level <= ledger::kMaxTileLevel, "tile level out of range");
    FUZZ_CHECK(!id->entries || id->level == 0, "entry bundle with a level");
    if (!id->entries) {
      auto tile = ledger::ReadTile(*id, tree.size(), tree);
      if (tile.ok()) FUZZ_CHECK(tile->size() == size_t{id->width} * 32, "tile of the wrong length");
    }
  }

  auto bundle = ledger::ParseEntryBundle(in);
  if (bundle.ok()) {
    FUZZ_CHECK(bundle->size() <= ledger::kTileWidth, "bundle with more than 256 entries");
    auto again = ledger::EncodeEntryBundle(*bundle);
    FUZZ_CHECK(again.ok() && *again == in, "ParseEntryBundle accepted bytes that do not re-encode to themselves");
  }
  return 0;
}
