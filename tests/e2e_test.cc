// End-to-end tests: run the ledgerd binary and check everything it serves
// over HTTP with the library's verification functions (never the server's
// word): receipts, checkpoints, consistency, tiles and bundles, the /v1
// proofs, deduplication, restart, and the error statuses of SPEC.md §6.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <vector>

#include "ledger/bytes.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/tiles.h"
#include "ledger/tlog_proof.h"
#include "ledgerd_process.h"

namespace {

using json = nlohmann::json;
using ledger::Hash;
using ledger_test::DecodeHash;
using ledger_test::DecodeHashes;
using ledger_test::EntriesBody;
using ledger_test::LedgerdProcess;
using ledger_test::MakeClient;
using ledger_test::NaiveRoot;
using ledger_test::QueryEscape;
using ledger_test::TempDir;

uint64_t TestSeed() {
  if (const char* s = std::getenv("LEDGER_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

std::string B64(const Hash& h) { return ledger::Base64Encode(ledger::HashView(h)); }

// These tests are about the plain transparency log: any bytes are entries.
const std::vector<std::string> kOpaque = {"--entries", "opaque"};

std::vector<std::string> Args(std::vector<std::string> extra) {
  extra.insert(extra.begin(), kOpaque.begin(), kOpaque.end());
  return extra;
}

// EntryGen makes unique random entries.
class EntryGen {
 public:
  explicit EntryGen(uint64_t seed) : rng_(seed) {}
  std::string Make(size_t len) {
    while (true) {
      std::string e(len, '\0');
      for (auto& c : e) c = static_cast<char>(rng_() & 0xff);
      if (seen_.insert(e).second) return e;
    }
  }
  // Next returns an entry of 2 or more bytes, mostly short.
  std::string Next() {
    uint64_t r = rng_() % 100;
    size_t len = r < 10 ? 2 + rng_() % 7 : r < 95 ? 9 + rng_() % 300 : 300 + rng_() % 4000;
    return Make(len);
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::set<std::string> seen_;
};

// Posted is the outcome of one POST /v1/entries, recorded without
// assertions so worker threads can fill it in.
struct Posted {
  std::vector<std::string> entries;
  std::string query;
  bool ok = false;  // got an HTTP response
  int status = 0;
  std::string body;
  std::string error;
};

Posted PostEntries(httplib::Client& cli, std::vector<std::string> entries, const std::string& query = "",
                   const std::string& content_type = "application/json") {
  Posted p;
  p.entries = std::move(entries);
  p.query = query;
  auto res = cli.Post(("/v1/entries" + query).c_str(), EntriesBody(p.entries), content_type.c_str());
  if (res) {
    p.ok = true;
    p.status = res->status;
    p.body = res->body;
  } else {
    p.error = httplib::to_string(res.error());
  }
  return p;
}

struct AppendResult {
  std::string checkpoint_text;
  ledger::Checkpoint checkpoint;
  std::vector<uint64_t> indices;
  std::vector<bool> duplicate;
};

// CheckAppend verifies a POST /v1/entries response: the checkpoint is
// signed by the log key and every receipt proves its entry's leaf hash
// into it.
AppendResult CheckAppend(const Posted& p, const ledger::NoteVerifier& vkey) {
  INFO("POST /v1/entries" << p.query << " with " << p.entries.size() << " entries: " << p.error << " " << p.body.substr(0, 300));
  REQUIRE(p.ok);
  REQUIRE(p.status == 200);
  json j = json::parse(p.body, nullptr, false);
  REQUIRE(j.is_object());
  REQUIRE(j.contains("checkpoint"));
  REQUIRE(j["checkpoint"].is_string());
  AppendResult out;
  out.checkpoint_text = j["checkpoint"].get<std::string>();
  auto cp = ledger::OpenCheckpoint(out.checkpoint_text, vkey);
  INFO(cp.status().ToString());
  REQUIRE(cp.ok());
  out.checkpoint = *cp;
  REQUIRE(j["receipts"].is_array());
  REQUIRE(j["receipts"].size() == p.entries.size());
  for (size_t i = 0; i < p.entries.size(); i++) {
    const json& r = j["receipts"][i];
    INFO("receipt " << i << ": " << r.dump());
    REQUIRE(r.is_object());
    REQUIRE(r["index"].is_number_unsigned());
    uint64_t index = r["index"].get<uint64_t>();
    Hash leaf;
    REQUIRE(DecodeHash(r["leaf_hash"], &leaf));
    CHECK(leaf == ledger::HashLeaf(p.entries[i]));
    std::vector<Hash> proof;
    REQUIRE(DecodeHashes(r["inclusion"], &proof));
    CHECK(index < cp->size);
    ledger::Status s = ledger::VerifyInclusion(ledger::HashLeaf(p.entries[i]), index, cp->size, proof, cp->root);
    INFO(s.ToString());
    CHECK(s.ok());
    bool dup = r.contains("duplicate") && r["duplicate"] == true;
    if (r.contains("duplicate")) CHECK(r["duplicate"] == true);
    if (r.contains("tlog_proof")) {
      REQUIRE(r["tlog_proof"].is_string());
      auto tp = ledger::ParseTlogProof(r["tlog_proof"].get<std::string>());
      INFO(tp.status().ToString());
      REQUIRE(tp.ok());
      CHECK(tp->index == index);
      CHECK(tp->inclusion == proof);
      CHECK(tp->checkpoint == out.checkpoint_text);
      if (!tp->extra.empty()) CHECK(tp->extra == p.entries[i]);
    } else {
      CHECK(p.query.find("proof=tlog") == std::string::npos);
    }
    out.indices.push_back(index);
    out.duplicate.push_back(dup);
  }
  return out;
}

ledger::Checkpoint GetCheckpoint(httplib::Client& cli, const ledger::NoteVerifier& vkey, std::string* text = nullptr) {
  auto res = cli.Get("/checkpoint");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  CHECK(res->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
  auto cp = ledger::OpenCheckpoint(res->body, vkey);
  INFO(res->body << "\n" << cp.status().ToString());
  REQUIRE(cp.ok());
  if (text) *text = res->body;
  return *cp;
}

json GetJson(httplib::Client& cli, const std::string& path, int want_status = 200) {
  auto res = cli.Get(path.c_str());
  INFO("GET " << path);
  REQUIRE(res);
  INFO(res->body.substr(0, 300));
  REQUIRE(res->status == want_status);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  json j = json::parse(res->body, nullptr, false);
  REQUIRE(!j.is_discarded());
  return j;
}

// TileReader serves node hashes from fetched tiles the way a tile client
// does: nodes at levels 8L come from tile (L, N); others are hashed from
// their children.
class TileReader : public ledger::HashReader {
 public:
  explicit TileReader(const std::map<std::pair<int, uint64_t>, std::string>* tiles) : tiles_(tiles) {}
  ledger::Status ReadHashes(const std::vector<ledger::NodeId>& ids, std::vector<Hash>* out) const override {
    out->resize(ids.size());
    for (size_t i = 0; i < ids.size(); i++) {
      if (!Node(ids[i].level, ids[i].index, &(*out)[i])) return ledger::Status::NotFound("node not in tiles");
    }
    return ledger::Status::OK();
  }

 private:
  bool Node(int level, uint64_t index, Hash* out) const {
    if (level % ledger::kTileHeight == 0) {
      auto it = tiles_->find({level / ledger::kTileHeight, index / ledger::kTileWidth});
      size_t off = (index % ledger::kTileWidth) * 32;
      if (it != tiles_->end() && off + 32 <= it->second.size()) {
        std::copy(it->second.begin() + off, it->second.begin() + off + 32, out->begin());
        return true;
      }
      if (level == 0) return false;
    }
    Hash l, r;
    if (!Node(level - 1, 2 * index, &l) || !Node(level - 1, 2 * index + 1, &r)) return false;
    *out = ledger::HashChildren(l, r);
    return true;
  }
  const std::map<std::pair<int, uint64_t>, std::string>* tiles_;
};

// CheckTiles fetches every hash tile and entry bundle of a tree of |size|
// and rebuilds the log from them: the bundles give back |entries|, level-0
// tiles hold their leaf hashes, higher tiles the subtree roots, and the
// root from the tiles is |root|.
void CheckTiles(httplib::Client& cli, const std::vector<std::string>& entries, uint64_t size, const Hash& root) {
  REQUIRE(entries.size() == size);
  std::vector<Hash> leaves;
  for (const auto& e : entries) leaves.push_back(ledger::HashLeaf(e));

  // Entry bundles.
  std::vector<std::string> rebuilt;
  for (uint64_t n = 0;; n++) {
    uint32_t w = ledger::TileWidthForSize(0, n, size);
    if (w == 0) break;
    ledger::TileId id;
    id.entries = true;
    id.index = n;
    id.width = w;
    std::string path = ledger::FormatTilePath(id);
    auto parsed = ledger::ParseTilePath(path);
    REQUIRE(parsed.ok());
    CHECK(*parsed == id);
    auto res = cli.Get(("/" + path).c_str());
    INFO("GET /" << path);
    REQUIRE(res);
    REQUIRE(res->status == 200);
    CHECK(res->get_header_value("Content-Type") == "application/octet-stream");
    auto bundle = ledger::ParseEntryBundle(res->body);
    INFO(bundle.status().ToString());
    REQUIRE(bundle.ok());
    REQUIRE(bundle->size() == w);
    for (auto e : *bundle) rebuilt.emplace_back(e);
    // Every narrower partial bundle is served too, as a prefix.
    if (w < ledger::kTileWidth) {
      for (uint32_t pw = 1; pw < w; pw++) {
        id.width = pw;
        auto pr = cli.Get(("/" + ledger::FormatTilePath(id)).c_str());
        INFO("GET /" << ledger::FormatTilePath(id));
        REQUIRE(pr);
        REQUIRE(pr->status == 200);
        auto pb = ledger::ParseEntryBundle(pr->body);
        REQUIRE(pb.ok());
        REQUIRE(pb->size() == pw);
        CHECK(res->body.compare(0, pr->body.size(), pr->body) == 0);
      }
    }
  }
  REQUIRE(rebuilt.size() == entries.size());
  for (size_t i = 0; i < entries.size(); i++) {
    INFO("entry " << i);
    CHECK(rebuilt[i] == entries[i]);
  }

  // Hash tiles.
  std::map<std::pair<int, uint64_t>, std::string> tiles;
  for (int level = 0; level <= ledger::kMaxTileLevel; level++) {
    if (ledger::TileWidthForSize(static_cast<uint8_t>(level), 0, size) == 0) break;
    for (uint64_t n = 0;; n++) {
      uint32_t w = ledger::TileWidthForSize(static_cast<uint8_t>(level), n, size);
      if (w == 0) break;
      ledger::TileId id;
      id.level = static_cast<uint8_t>(level);
      id.index = n;
      id.width = w;
      std::string path = ledger::FormatTilePath(id);
      auto parsed = ledger::ParseTilePath(path);
      REQUIRE(parsed.ok());
      CHECK(*parsed == id);
      auto res = cli.Get(("/" + path).c_str());
      INFO("GET /" << path);
      REQUIRE(res);
      REQUIRE(res->status == 200);
      REQUIRE(res->body.size() == size_t{w} * 32);
      // Each hash is the root of its complete subtree over the leaves.
      uint64_t span = uint64_t{1} << (ledger::kTileHeight * level);
      for (uint32_t i = 0; i < w; i++) {
        uint64_t node = n * ledger::kTileWidth + i;
        Hash want = NaiveRoot(leaves, node * span, (node + 1) * span);
        INFO("node " << i);
        CHECK(res->body.compare(size_t{i} * 32, 32, std::string(ledger::HashView(want))) == 0);
      }
      if (w < ledger::kTileWidth) {
        for (uint32_t pw = 1; pw < w; pw++) {
          id.width = pw;
          auto pr = cli.Get(("/" + ledger::FormatTilePath(id)).c_str());
          INFO("GET /" << ledger::FormatTilePath(id));
          REQUIRE(pr);
          REQUIRE(pr->status == 200);
          CHECK(pr->body == res->body.substr(0, size_t{pw} * 32));
        }
      }
      tiles[{level, n}] = res->body;
    }
  }
  // The root from level-0 tile hashes alone, and through the tile reader.
  std::vector<Hash> level0;
  for (uint64_t n = 0; tiles.count({0, n}); n++) {
    const std::string& t = tiles[{0, n}];
    for (size_t off = 0; off < t.size(); off += 32) {
      Hash h;
      std::copy(t.begin() + off, t.begin() + off + 32, h.begin());
      level0.push_back(h);
    }
  }
  REQUIRE(level0.size() == size);
  CHECK(level0 == leaves);
  CHECK(NaiveRoot(level0, 0, size) == root);
  TileReader reader(&tiles);
  auto tree_root = ledger::TreeRoot(size, reader);
  INFO(tree_root.status().ToString());
  REQUIRE(tree_root.ok());
  CHECK(*tree_root == root);
}

// CheckEntries fetches every entry by index.
void CheckEntries(httplib::Client& cli, const std::vector<std::string>& entries) {
  for (size_t i = 0; i < entries.size(); i++) {
    json j = GetJson(cli, "/v1/entries/" + std::to_string(i));
    INFO("entry " << i << ": " << j.dump().substr(0, 200));
    CHECK(j["index"] == i);
    Hash leaf;
    REQUIRE(DecodeHash(j["leaf_hash"], &leaf));
    CHECK(leaf == ledger::HashLeaf(entries[i]));
    REQUIRE(j["entry"].is_string());
    auto raw = ledger::Base64Decode(j["entry"].get<std::string>());
    REQUIRE(raw.ok());
    CHECK(*raw == entries[i]);
  }
}

// CheckProofs checks /v1/proof/inclusion, by-hash and tlog-proof for every
// entry against roots computed locally from the entries.
void CheckProofs(httplib::Client& cli, const ledger::NoteVerifier& vkey, const std::vector<std::string>& entries,
                 const ledger::Checkpoint& latest, std::mt19937_64& rng) {
  const uint64_t size = entries.size();
  REQUIRE(latest.size == size);
  std::vector<Hash> leaves;
  for (const auto& e : entries) leaves.push_back(ledger::HashLeaf(e));
  std::map<uint64_t, Hash> roots;  // size -> root, computed from the leaves
  auto root_of = [&](uint64_t s) {
    auto it = roots.find(s);
    if (it == roots.end()) it = roots.emplace(s, NaiveRoot(leaves, 0, s)).first;
    return it->second;
  };
  CHECK(root_of(size) == latest.root);

  for (uint64_t i = 0; i < size; i++) {
    INFO("index " << i);
    // Inclusion at the current size (default) and at a random size > i.
    {
      json j = GetJson(cli, "/v1/proof/inclusion?index=" + std::to_string(i));
      CHECK(j["index"] == i);
      CHECK(j["size"] == size);
      std::vector<Hash> proof;
      REQUIRE(DecodeHashes(j["hashes"], &proof));
      ledger::Status s = ledger::VerifyInclusion(leaves[i], i, size, proof, latest.root);
      INFO(s.ToString());
      CHECK(s.ok());
    }
    uint64_t at = i + 1 + rng() % (size - i);
    {
      json j = GetJson(cli, "/v1/proof/inclusion?index=" + std::to_string(i) + "&size=" + std::to_string(at));
      CHECK(j["size"] == at);
      std::vector<Hash> proof;
      REQUIRE(DecodeHashes(j["hashes"], &proof));
      ledger::Status s = ledger::VerifyInclusion(leaves[i], i, at, proof, root_of(at));
      INFO("size " << at << ": " << s.ToString());
      CHECK(s.ok());
    }
    // By hash, at the current size and at |at|.
    for (uint64_t sz : {size, at}) {
      std::string path = "/v1/proof/by-hash?hash=" + QueryEscape(B64(leaves[i]));
      if (sz != size || i % 2) path += "&size=" + std::to_string(sz);
      json j = GetJson(cli, path);
      CHECK(j["index"] == i);
      CHECK(j["size"] == sz);
      std::vector<Hash> proof;
      REQUIRE(DecodeHashes(j["hashes"], &proof));
      ledger::Status s = ledger::VerifyInclusion(leaves[i], i, sz, proof, root_of(sz));
      INFO("by-hash size " << sz << ": " << s.ToString());
      CHECK(s.ok());
    }
    // The text receipt, against the latest checkpoint.
    {
      auto res = cli.Get(("/v1/proof/tlog-proof?index=" + std::to_string(i)).c_str());
      REQUIRE(res);
      REQUIRE(res->status == 200);
      CHECK(res->get_header_value("Content-Type").rfind("text/plain", 0) == 0);
      auto tp = ledger::ParseTlogProof(res->body);
      INFO(res->body << "\n" << tp.status().ToString());
      REQUIRE(tp.ok());
      CHECK(ledger::FormatTlogProof(*tp) == res->body);
      CHECK(tp->index == i);
      // The entry itself rides on the "extra" line (SPEC.md §6).
      CHECK(tp->extra == entries[i]);
      auto cp = ledger::OpenCheckpoint(tp->checkpoint, vkey);
      REQUIRE(cp.ok());
      CHECK(cp->size == size);
      CHECK(cp->root == latest.root);
      ledger::Status s = ledger::VerifyInclusion(leaves[i], i, cp->size, tp->inclusion, cp->root);
      INFO(s.ToString());
      CHECK(s.ok());
    }
  }
}

// CheckConsistency proves every checkpoint in |cps| (size -> root) consistent
// with |latest| using server proofs and the library verifier.
void CheckConsistency(httplib::Client& cli, const std::map<uint64_t, Hash>& cps, const ledger::Checkpoint& latest) {
  for (const auto& [from, from_root] : cps) {
    INFO("from " << from << " to " << latest.size);
    REQUIRE(from <= latest.size);
    std::string path = "/v1/proof/consistency?from=" + std::to_string(from);
    if (from % 2) path += "&to=" + std::to_string(latest.size);
    json j = GetJson(cli, path);
    CHECK(j["from"] == from);
    CHECK(j["to"] == latest.size);
    std::vector<Hash> proof;
    REQUIRE(DecodeHashes(j["hashes"], &proof));
    ledger::Status s = ledger::VerifyConsistency(from, latest.size, proof, from_root, latest.root);
    INFO(s.ToString());
    CHECK(s.ok());
    if (from == 0 || from == latest.size) CHECK(proof.empty());
  }
}

// ExpectError checks an error response: the status, and a JSON body
// {"error": "<non-empty reason>"}.
void ExpectError(const httplib::Result& res, int status, const std::string& what) {
  INFO(what);
  REQUIRE(res);
  INFO("status " << res->status << " body " << res->body.substr(0, 300));
  CHECK(res->status == status);
  CHECK(res->get_header_value("Content-Type") == "application/json");
  json j = json::parse(res->body, nullptr, false);
  bool has_error = j.is_object() && j.contains("error") && j["error"].is_string() &&
                   !j["error"].get<std::string>().empty();
  CHECK(has_error);
}

struct Req {
  std::string method;
  std::string path;
  std::string body;
  std::string content_type;
};

httplib::Result Send(httplib::Client& cli, const Req& r) {
  const std::string& p = r.path;
  if (r.method == "GET") return cli.Get(p.c_str());
  if (r.method == "POST") return cli.Post(p.c_str(), r.body, r.content_type.c_str());
  if (r.method == "PUT") return cli.Put(p.c_str(), r.body, r.content_type.c_str());
  if (r.method == "PATCH") return cli.Patch(p.c_str(), r.body, r.content_type.c_str());
  if (r.method == "DELETE") return cli.Delete(p.c_str());
  if (r.method == "OPTIONS") return cli.Options(p.c_str());
  FAIL("unknown method " << r.method);
  return httplib::Result(nullptr, httplib::Error::Unknown);
}

}  // namespace

TEST_CASE("ledgerd: append, receipts, checkpoints, tiles, proofs, dedup and restart", "[e2e]") {
  const uint64_t seed = TestSeed();
  CAPTURE(seed);
  EntryGen gen(seed);
  std::mt19937_64& rng = gen.rng();

  TempDir tmp;
  LedgerdProcess server(tmp.path() + "/data");
  server.Start(kOpaque);
  INFO("ledgerd log:\n" << server.Log());
  auto vk = ledger::NoteVerifier::Parse(server.vkey());
  INFO(server.vkey() << ": " << vk.status().ToString());
  REQUIRE(vk.ok());
  const ledger::NoteVerifier vkey = *vk;
  auto cli = MakeClient(server.port());

  // A new log: size 0, the empty root.
  std::string first_text;
  ledger::Checkpoint first = GetCheckpoint(*cli, vkey, &first_text);
  CHECK(first.size == 0);
  CHECK(first.root == ledger::EmptyTreeRoot());
  CHECK(first.origin == vkey.name());
  CHECK(GetJson(*cli, "/healthz") == json{{"status", "ok"}, {"size", 0}});

  // Plan ~700 entries in batches of 1..100: a first part appended one
  // request at a time, the rest by 4 threads at once.
  std::vector<std::vector<std::string>> batches;
  batches.push_back({gen.Make(1), gen.Make(ledger::kMaxEntrySize), gen.Next()});
  batches.push_back({gen.Next()});
  size_t planned = 4;
  while (planned < 700) {
    size_t n = std::min<size_t>(1 + rng() % 100, 700 - planned);
    if (batches.size() % 5 == 0) n = 1 + rng() % 3;
    std::vector<std::string> b;
    for (size_t i = 0; i < n; i++) b.push_back(gen.Next());
    planned += n;
    batches.push_back(std::move(b));
  }
  const size_t sequential = std::min<size_t>(batches.size(), 6);

  std::vector<Posted> posted(batches.size());
  for (size_t i = 0; i < sequential; i++) {
    std::string query = i == 2 ? "?proof=tlog" : "";
    std::string ctype = i == 3 ? "application/json; charset=utf-8" : "application/json";
    posted[i] = PostEntries(*cli, batches[i], query, ctype);
    CheckAppend(posted[i], vkey);
  }
  {
    std::atomic<size_t> next{sequential};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
      threads.emplace_back([&, t] {
        auto c = MakeClient(server.port());
        for (size_t i; (i = next.fetch_add(1)) < batches.size();)
          posted[i] = PostEntries(*c, batches[i], t == 0 && i % 3 == 0 ? "?proof=tlog" : "");
      });
    }
    for (auto& t : threads) t.join();
  }

  // Every receipt verifies; the indices are exactly 0..N-1.
  const uint64_t n_entries = planned;
  std::vector<std::string> entries(n_entries);
  std::vector<bool> seen(n_entries, false);
  std::map<uint64_t, Hash> checkpoints;  // size -> root of every returned checkpoint
  checkpoints[0] = first.root;
  for (size_t b = 0; b < posted.size(); b++) {
    INFO("batch " << b);
    AppendResult ar = CheckAppend(posted[b], vkey);
    auto it = checkpoints.emplace(ar.checkpoint.size, ar.checkpoint.root).first;
    CHECK(it->second == ar.checkpoint.root);  // one root per size
    for (size_t i = 0; i < ar.indices.size(); i++) {
      CHECK_FALSE(ar.duplicate[i]);
      REQUIRE(ar.indices[i] < n_entries);
      REQUIRE_FALSE(seen[ar.indices[i]]);
      seen[ar.indices[i]] = true;
      entries[ar.indices[i]] = posted[b].entries[i];
    }
    // Entries of one request are appended in order and contiguously.
    for (size_t i = 1; i < ar.indices.size(); i++) CHECK(ar.indices[i] == ar.indices[i - 1] + 1);
  }
  REQUIRE(std::count(seen.begin(), seen.end(), true) == static_cast<long>(n_entries));

  // Deduplication: known entries get their original index back, a new
  // entry given twice in one request is appended once.
  {
    std::string fresh = gen.Next();
    uint64_t big_index = 0;
    while (entries[big_index].size() != ledger::kMaxEntrySize) big_index++;
    Posted p = PostEntries(*cli, {entries[5], fresh, entries[big_index], fresh, entries[n_entries - 1]});
    AppendResult ar = CheckAppend(p, vkey);
    REQUIRE(ar.indices.size() == 5);
    CHECK(ar.indices[0] == 5);
    CHECK(ar.duplicate[0]);
    CHECK(ar.indices[1] == n_entries);
    CHECK_FALSE(ar.duplicate[1]);
    CHECK(ar.indices[2] == big_index);
    CHECK(ar.duplicate[2]);
    CHECK(ar.indices[3] == n_entries);
    CHECK(ar.duplicate[3]);
    CHECK(ar.indices[4] == n_entries - 1);
    CHECK(ar.duplicate[4]);
    CHECK(ar.checkpoint.size == n_entries + 1);
    checkpoints.emplace(ar.checkpoint.size, ar.checkpoint.root);
    entries.push_back(fresh);
    // Only duplicates: nothing is appended.
    Posted again = PostEntries(*cli, {entries[0], fresh});
    AppendResult ar2 = CheckAppend(again, vkey);
    CHECK(ar2.indices == std::vector<uint64_t>{0, n_entries});
    CHECK(ar2.duplicate == std::vector<bool>{true, true});
    CHECK(ar2.checkpoint.size == n_entries + 1);
    CHECK(ar2.checkpoint.root == ar.checkpoint.root);
  }
  const uint64_t size = entries.size();

  // The latest checkpoint covers everything and every returned checkpoint
  // is a prefix of it.
  std::string latest_text;
  ledger::Checkpoint latest = GetCheckpoint(*cli, vkey, &latest_text);
  REQUIRE(latest.size == size);
  CHECK(GetJson(*cli, "/healthz") == json{{"status", "ok"}, {"size", size}});
  {
    std::vector<Hash> leaves;
    for (const auto& e : entries) leaves.push_back(ledger::HashLeaf(e));
    for (const auto& [s, root] : checkpoints) {
      INFO("checkpoint size " << s);
      CHECK(NaiveRoot(leaves, 0, s) == root);
    }
  }
  CheckConsistency(*cli, checkpoints, latest);
  CheckTiles(*cli, entries, size, latest.root);
  CheckEntries(*cli, entries);
  CheckProofs(*cli, vkey, entries, latest, rng);
  {
    auto res = cli->Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body.find("ledger_tree_size " + std::to_string(size)) != std::string::npos);
  }

  // Restart: a clean stop, then the same log, key and checkpoint.
  cli.reset();
  int status = server.Stop();
  INFO("ledgerd log:\n" << server.Log());
  CHECK(status == 0);
  CHECK(server.Log().find("stopped at tree size " + std::to_string(size)) != std::string::npos);
  const std::string vkey_before = server.vkey();
  server.Start(kOpaque);
  CHECK(server.vkey() == vkey_before);
  cli = MakeClient(server.port());
  std::string restarted_text;
  ledger::Checkpoint restarted = GetCheckpoint(*cli, vkey, &restarted_text);
  CHECK(restarted_text == latest_text);
  CHECK(restarted.size == size);
  CHECK(restarted.root == latest.root);
  CheckConsistency(*cli, checkpoints, restarted);
  CheckTiles(*cli, entries, size, restarted.root);
  CheckEntries(*cli, entries);
  {
    // Dedup survives the restart; new appends continue at the end.
    Posted p = PostEntries(*cli, {entries[42]});
    AppendResult ar = CheckAppend(p, vkey);
    CHECK(ar.indices[0] == 42);
    CHECK(ar.duplicate[0]);
    std::string more = gen.Next();
    Posted p2 = PostEntries(*cli, {more});
    AppendResult ar2 = CheckAppend(p2, vkey);
    CHECK(ar2.indices[0] == size);
    CHECK(ar2.checkpoint.size == size + 1);
    entries.push_back(more);
    checkpoints.emplace(size, latest.root);
    ledger::Checkpoint now = GetCheckpoint(*cli, vkey);
    CHECK(now.size == size + 1);
    CheckConsistency(*cli, checkpoints, now);
  }
  cli.reset();
  CHECK(server.Stop() == 0);
}

TEST_CASE("ledgerd: error statuses, JSON error bodies, nothing written", "[e2e]") {
  const uint64_t seed = TestSeed();
  CAPTURE(seed);
  EntryGen gen(seed);

  TempDir tmp;
  LedgerdProcess server(tmp.path() + "/data");
  server.Start(kOpaque);
  INFO("ledgerd log:\n" << server.Log());
  auto vk = ledger::NoteVerifier::Parse(server.vkey());
  REQUIRE(vk.ok());
  const ledger::NoteVerifier vkey = *vk;
  auto cli = MakeClient(server.port());

  // 300 entries: tile 0/000 full, 0/001.p/44, 1/000.p/1, bundles alike.
  std::vector<std::string> entries;
  for (int b = 0; b < 3; b++) {
    std::vector<std::string> batch;
    for (int i = 0; i < 100; i++) batch.push_back(gen.Next());
    AppendResult ar = CheckAppend(PostEntries(*cli, batch), vkey);
    CHECK(ar.indices.front() == entries.size());
    entries.insert(entries.end(), batch.begin(), batch.end());
  }
  std::string before_text;
  ledger::Checkpoint before = GetCheckpoint(*cli, vkey, &before_text);
  REQUIRE(before.size == 300);
  const std::string known = QueryEscape(B64(ledger::HashLeaf(entries[200])));
  const std::string unknown = QueryEscape(B64(ledger::HashLeaf("not in the log")));
  const std::string fresh1 = gen.Next(), fresh2 = gen.Next(), fresh3 = gen.Next();
  const std::string fresh1_b64 = ledger::Base64Encode(fresh1);
  const std::string json_ct = "application/json";

  std::vector<std::pair<Req, int>> cases = {
      // POST /v1/entries bodies.
      {{"POST", "/v1/entries", R"({"entries":["!!!!"]})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":["YQ"]})", json_ct}, 400},        // unpadded
      {{"POST", "/v1/entries", R"({"entries":["YR=="]})", json_ct}, 400},      // non-zero pad bits
      {{"POST", "/v1/entries", R"({"entries":["YQ==\n"]})", json_ct}, 400},    // trailing newline
      {{"POST", "/v1/entries", R"({"entries":["YW Jj"]})", json_ct}, 400},     // whitespace
      {{"POST", "/v1/entries", R"({"entries":["YWJj_-=="]})", json_ct}, 400},  // URL alphabet
      {{"POST", "/v1/entries", R"({"entries":[""]})", json_ct}, 400},          // empty entry
      {{"POST", "/v1/entries", R"({"entries":[")" + fresh1_b64 + R"(","***"]})", json_ct}, 400},
      {{"POST", "/v1/entries", "not json", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":["YQ=="])", json_ct}, 400},  // truncated
      {{"POST", "/v1/entries", "", json_ct}, 400},
      {{"POST", "/v1/entries", "[]", json_ct}, 400},
      {{"POST", "/v1/entries", "{}", json_ct}, 400},
      {{"POST", "/v1/entries", "null", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":[]})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":"YQ=="})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":null})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":[1]})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":[["YQ=="]]})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"entries":["YQ=="],"extra":1})", json_ct}, 400},
      {{"POST", "/v1/entries", R"({"Entries":["YQ=="]})", json_ct}, 400},
      {{"POST", "/v1/entries?proof=json", R"({"entries":["YQ=="]})", json_ct}, 400},
      {{"POST", "/v1/entries?foo=1", R"({"entries":["YQ=="]})", json_ct}, 400},
      {{"POST", "/v1/entries", EntriesBody(std::vector<std::string>(1001, "x")), json_ct}, 400},
      // Too large entries, alone or beside valid ones.
      {{"POST", "/v1/entries", EntriesBody({std::string(ledger::kMaxEntrySize + 1, 'a')}), json_ct}, 413},
      {{"POST", "/v1/entries", EntriesBody({fresh2, std::string(100000, 'b')}), json_ct}, 413},
      // Content types.
      {{"POST", "/v1/entries", EntriesBody({fresh3}), "text/plain"}, 415},
      {{"POST", "/v1/entries", EntriesBody({fresh3}), "application/jsonx"}, 415},
      {{"POST", "/v1/entries", EntriesBody({fresh3}), "application/x-www-form-urlencoded"}, 415},
      {{"POST", "/v1/entries", EntriesBody({fresh3}), "text/json"}, 415},

      // Query numbers.
      {{"GET", "/v1/proof/inclusion", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?size=10", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=01", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=00", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=-1", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=%2B1", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1.0", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=0x1", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1e2", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=%201", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=18446744073709551616", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1&index=1", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1&size=01", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1&size=", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1&size=10&size=10", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=1&bogus=1", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=300", "", ""}, 400},  // index >= size (default 300)
      {{"GET", "/v1/proof/inclusion?index=5&size=5", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=0&size=0", "", ""}, 400},
      {{"GET", "/v1/proof/inclusion?index=0&size=301", "", ""}, 404},
      {{"GET", "/v1/proof/inclusion?index=0&size=18446744073709551615", "", ""}, 404},
      {{"GET", "/v1/proof/consistency", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?to=10", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?from=01", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?from=-1", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?from=1&from=1", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?from=1&to=02", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?from=5&to=4", "", ""}, 400},
      {{"GET", "/v1/proof/consistency?from=301", "", ""}, 400},  // from > to (default 300)
      {{"GET", "/v1/proof/consistency?from=1&to=301", "", ""}, 404},
      {{"GET", "/v1/proof/consistency?from=301&to=301", "", ""}, 404},
      {{"GET", "/v1/proof/by-hash", "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?size=10", "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?hash=notbase64", "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?hash=" + QueryEscape(ledger::Base64Encode(std::string(31, 'a'))), "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?hash=" + known + "&hash=" + known, "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?hash=" + known + "&size=0300", "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?hash=" + known + "&x=1", "", ""}, 400},
      {{"GET", "/v1/proof/by-hash?hash=" + unknown, "", ""}, 404},
      {{"GET", "/v1/proof/by-hash?hash=" + known + "&size=301", "", ""}, 404},
      {{"GET", "/v1/proof/by-hash?hash=" + known + "&size=200", "", ""}, 404},  // entry 200 not in size 200
      {{"GET", "/v1/proof/tlog-proof", "", ""}, 400},
      {{"GET", "/v1/proof/tlog-proof?index=01", "", ""}, 400},
      {{"GET", "/v1/proof/tlog-proof?index=-1", "", ""}, 400},
      {{"GET", "/v1/proof/tlog-proof?index=1&index=1", "", ""}, 400},
      {{"GET", "/v1/proof/tlog-proof?index=300", "", ""}, 404},
      {{"GET", "/checkpoint?x=1", "", ""}, 400},

      // Entries.
      {{"GET", "/v1/entries/300", "", ""}, 404},
      {{"GET", "/v1/entries/18446744073709551615", "", ""}, 404},
      {{"GET", "/v1/entries/01", "", ""}, 400},
      {{"GET", "/v1/entries/-1", "", ""}, 400},
      {{"GET", "/v1/entries/abc", "", ""}, 400},
      {{"GET", "/v1/entries/18446744073709551616", "", ""}, 400},

      // Tiles that do not exist at size 300, and malformed tile paths.
      {{"GET", "/tile/0/001", "", ""}, 404},
      {{"GET", "/tile/0/001.p/45", "", ""}, 404},
      {{"GET", "/tile/0/002", "", ""}, 404},
      {{"GET", "/tile/0/002.p/1", "", ""}, 404},
      {{"GET", "/tile/0/999", "", ""}, 404},
      {{"GET", "/tile/0/x001/000", "", ""}, 404},
      {{"GET", "/tile/1/000", "", ""}, 404},
      {{"GET", "/tile/1/000.p/2", "", ""}, 404},
      {{"GET", "/tile/2/000.p/1", "", ""}, 404},
      {{"GET", "/tile/63/000.p/1", "", ""}, 404},
      {{"GET", "/tile/entries/001", "", ""}, 404},
      {{"GET", "/tile/entries/001.p/45", "", ""}, 404},
      {{"GET", "/tile/entries/999", "", ""}, 404},
      {{"GET", "/tile/0/1", "", ""}, 400},
      {{"GET", "/tile/0/0000", "", ""}, 400},
      {{"GET", "/tile/0/000.p/0", "", ""}, 400},
      {{"GET", "/tile/0/000.p/256", "", ""}, 400},
      {{"GET", "/tile/0/001.p/044", "", ""}, 400},
      {{"GET", "/tile/0/x000/001", "", ""}, 400},
      {{"GET", "/tile/0/001/002", "", ""}, 400},
      {{"GET", "/tile/01/000", "", ""}, 400},
      {{"GET", "/tile/64/000", "", ""}, 400},
      {{"GET", "/tile/x/000", "", ""}, 400},
      {{"GET", "/tile/entries/x000", "", ""}, 400},
      {{"GET", "/tile/0/000?x=1", "", ""}, 400},

      // Unknown paths.
      {{"GET", "/index.html", "", ""}, 404},  // the customer page is at / only
      {{"GET", "/nope", "", ""}, 404},
      {{"GET", "/checkpoint/", "", ""}, 404},
      {{"GET", "/v1", "", ""}, 404},
      {{"GET", "/v1/proof", "", ""}, 404},
      {{"GET", "/v1/proof/unknown", "", ""}, 404},
      {{"GET", "/v1/entries/", "", ""}, 404},
      {{"GET", "/v1/entries/1/2", "", ""}, 404},
      {{"POST", "/nope", "{}", json_ct}, 404},
      {{"DELETE", "/nope", "", ""}, 404},

      // Wrong methods on known paths.
      {{"DELETE", "/checkpoint", "", ""}, 405},
      {{"POST", "/checkpoint", "", json_ct}, 405},
      {{"PUT", "/checkpoint", "x", "text/plain"}, 405},
      {{"GET", "/v1/entries", "", ""}, 405},
      {{"PUT", "/v1/entries", R"({"entries":["YQ=="]})", json_ct}, 405},
      {{"PATCH", "/v1/entries", R"({"entries":["YQ=="]})", json_ct}, 405},
      {{"DELETE", "/v1/entries", "", ""}, 405},
      {{"DELETE", "/v1/entries/0", "", ""}, 405},
      {{"POST", "/v1/entries/0", R"({"entries":["YQ=="]})", json_ct}, 405},
      {{"POST", "/v1/proof/inclusion?index=0", "", json_ct}, 405},
      {{"DELETE", "/tile/0/000", "", ""}, 405},
      {{"POST", "/healthz", "", json_ct}, 405},
      {{"PUT", "/metrics", "x", "text/plain"}, 405},
      {{"POST", "/", "{}", json_ct}, 405},
      {{"POST", "/v1/log", "{}", json_ct}, 405},
  };
  for (const auto& [req, status] : cases) {
    auto res = Send(*cli, req);
    ExpectError(res, status, req.method + " " + req.path + " " + req.content_type + " " + req.body.substr(0, 80));
    if (res && status == 405) {
      std::string allow = res->get_header_value("Allow");
      INFO(req.method << " " << req.path << " Allow: " << allow);
      CHECK(!allow.empty());
      CHECK(allow.find(req.method) == std::string::npos);
      CHECK(allow.find(req.path == "/v1/entries" ? "POST" : "GET") != std::string::npos);
    }
  }

  // The valid tiles beside those 404s are served.
  for (std::string path : {"/tile/0/000", "/tile/0/001.p/44", "/tile/0/001.p/1", "/tile/1/000.p/1",
                           "/tile/entries/000", "/tile/entries/001.p/44"}) {
    auto res = cli->Get(path.c_str());
    INFO(path);
    REQUIRE(res);
    CHECK(res->status == 200);
  }

  // Nothing was written: same checkpoint, and the valid entries of the
  // refused requests are not in the log.
  std::string after_text;
  ledger::Checkpoint after = GetCheckpoint(*cli, vkey, &after_text);
  CHECK(after_text == before_text);
  CHECK(after.size == 300);
  CHECK(after.root == before.root);
  CHECK(GetJson(*cli, "/healthz") == json{{"status", "ok"}, {"size", 300}});
  for (const auto& e : {fresh1, fresh2, fresh3, std::string("x"), std::string("a")}) {
    auto res = cli->Get(("/v1/proof/by-hash?hash=" + QueryEscape(B64(ledger::HashLeaf(e)))).c_str());
    ExpectError(res, 404, "by-hash of a refused entry");
  }
  cli.reset();
  CHECK(server.Stop() == 0);
}

TEST_CASE("ledgerd: --max-body and --max-entries", "[e2e]") {
  TempDir tmp;
  LedgerdProcess server(tmp.path() + "/data");
  server.Start(Args({"--max-body", "1024", "--max-entries", "3"}));
  INFO("ledgerd log:\n" << server.Log());
  auto vk = ledger::NoteVerifier::Parse(server.vkey());
  REQUIRE(vk.ok());
  auto cli = MakeClient(server.port());

  // Just under the limit is fine.
  std::string small(600, 's');
  std::string body = EntriesBody({small});
  REQUIRE(body.size() <= 1024);
  AppendResult ar = CheckAppend(PostEntries(*cli, {small}), *vk);
  CHECK(ar.indices[0] == 0);

  // Over --max-body: 413, for httplib's own limit check.
  for (size_t n : {1025, 2000, 100000}) {
    auto res = cli->Post("/v1/entries", EntriesBody({std::string(n, 'b')}), "application/json");
    ExpectError(res, 413, "body for a " + std::to_string(n) + "-byte entry");
    // A fresh connection in case the server closed this one.
    cli = MakeClient(server.port());
  }
  // Over --max-entries: 400.
  auto res = cli->Post("/v1/entries", EntriesBody({"1", "2", "3", "4"}), "application/json");
  ExpectError(res, 400, "4 entries with --max-entries 3");
  AppendResult ar3 = CheckAppend(PostEntries(*cli, {"1", "2", "3"}), *vk);
  CHECK(ar3.indices == std::vector<uint64_t>{1, 2, 3});

  ledger::Checkpoint cp = GetCheckpoint(*cli, *vk);
  CHECK(cp.size == 4);
  cli.reset();
  CHECK(server.Stop() == 0);
}

TEST_CASE("ledgerd: --help and bad flags", "[e2e]") {
  auto run = [](const std::string& args, std::string* out) {
    FILE* f = popen((std::string(LEDGERD_PATH) + " " + args + " 2>&1").c_str(), "r");
    REQUIRE(f != nullptr);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
    return pclose(f);
  };
  std::string out;
  int st = run("--help", &out);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(out.find("Usage: ledgerd") != std::string::npos);
  CHECK(out.find("--port-file") != std::string::npos);
  CHECK(out.find("--index-max-accesses") != std::string::npos);
  for (const char* bad : {"--bogus 1", "--listen nope", "--listen 127.0.0.1:99999", "--max-body 10", "--entries bogus", "stray",
                          "--index-max-accesses 0", "--index-max-accesses 65537", "--index-max-accesses x"}) {
    out.clear();
    st = run(bad, &out);
    INFO(bad << ": " << out);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 2);
  }
}
